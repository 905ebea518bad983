"""The fixed texts civicdesk says besides FAQ answers, in each language it speaks."""

from __future__ import annotations

from bot.answering.smalltalk import SmallTalk

SMALLTALK_REPLIES: dict[SmallTalk, dict[str, str]] = {
    SmallTalk.EMPTY: {
        "zh": "您好，请直接输入您想咨询的问题。",
        "en": "Hello! Please type the question you would like to ask.",
    },
    SmallTalk.GREETING: {
        "zh": "您好！请问有什么可以帮您？请直接描述您的问题。",
        "en": "Hello! How can we help? Please describe your question.",
    },
    SmallTalk.THANKS: {
        "zh": "不客气，如还有其他问题欢迎随时咨询。",
        "en": "You're welcome. Ask any time if you have another question.",
    },
    SmallTalk.GOODBYE: {
        "zh": "再见，感谢您的咨询。",
        "en": "Goodbye, and thank you for your question.",
    },
}

INVITE_PRIVATE = {
    "zh": "此问题涉及个人信息，请通过私信联系我们，我们将为您解答。",
    "en": "This question involves personal details: please send us a private message "
    "and we will answer you there.",
}

TICKET_ACK = {
    "zh": "您的问题已转交工作人员处理，我们将尽快答复您。",
    "en": "Your question has been passed to our staff, who will answer you as soon as possible.",
}

TICKET_ACK_WITH_REF = {
    # {promise}: bot.tickets.hours.answer_promise, a clause that names the next working period when
    # the office is closed ("我们将于…开始办理，预计于…前答复").
    "zh": "您的问题已转交工作人员（编号 {ref}），{promise}。",
    "en": "Your question has been passed to our staff (ref. {ref}); {promise}.",
}

# Added to the acknowledgement where the platform limits how long a private reply may be sent
# and answers can go by e-mail instead (CIVICDESK_ANSWER_BY_EMAIL, bot.tickets.fallback).
TICKET_EMAIL_INVITE = {
    "zh": "如方便，可留下电子邮箱：若届时无法在此回复，我们将通过邮件答复。",
    "en": "You may leave an e-mail address: if we can no longer answer here, we will write to it.",
}


def pick(texts: dict[str, str], lang: str) -> str:
    """The text in `lang`, else Chinese, the institution's first language."""
    return texts.get(lang) or texts["zh"]
