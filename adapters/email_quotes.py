"""Strip the quoted history and the signature from an e-mail reply, leaving what the sender wrote.

A small line-based stripper (no talon, no ML): it knows the shapes mail clients use.

- Hard cuts (top posting; everything below is history): Outlook's "-----Original Message-----",
  Yahoo's "----- Original Message -----", Chinese clients' "------------------ 原始邮件
  ------------------" (QQ) and "---- 回复的原邮件 ----" (NetEase), an Outlook/Hotmail header block
  ("From: ... / Sent: ... / To: ... / Subject: ...", also 发件人/发送时间 and ____ rules above it),
  the "-- " signature separator and "Sent from my iPhone" / "发自我的iPhone" lines.
- Quotes (interleaved or bottom posting keeps the text around them): lines starting with ">"
  and the attribution line that introduces them ("On <date>, <name> wrote:", its German,
  French, Spanish, Italian, Dutch, Portuguese, Scandinavian and Japanese forms, and
  "在 <date>，<name> 写道：" including the Traditional "寫道"), also when a client wrapped the
  attribution over two or three lines.
"""

from __future__ import annotations

import re

_SEPARATORS = re.compile(
    r"""^\s*(?:
        -{2,}\s*(?:original\s+message|forwarded\s+by.*|原始邮件|原始郵件|回复的原邮件|回覆的原郵件
            |原邮件|message\s+d'origine|ursprüngliche\s+nachricht|mensaje\s+original)\s*-{2,}
      | -{10,}\s*(?:原始邮件|原始郵件)\s*-{10,}
      | -{3,}\s*.{0,200}?\s(?:wrote|schrieb|写道|寫道)\s*[:：]?\s*-{3,}  # Lotus Notes 8+
      | -{3,}\s*(?:forwarded\s+message|转发的邮件|轉寄的郵件|转发邮件)\s*-{3,}
      | _{20,}
    )\s*$""",
    re.IGNORECASE | re.VERBOSE,
)

HISTORY_MARK = "-----Original Message-----"
"""What `email_parse.html_to_text` writes where an HTML reply's history starts (Outlook.com's
`<div id="divRplyFwdMsg">` / `<div id="appendonsend">`, Hotmail's `<hr id="stopSpelling">`):
one of the separators, so that the text is cut there."""

# Header lines of a quoted message as Outlook, Hotmail, Foxmail and QQ Mail write them.
# "\s*(?:\*\s*)?" rather than "\s*\*?\s*": two runs of \s* around an optional character split
# a run of spaces in quadratically many ways before failing ("from" + 20,000 spaces took 5 s).
_FROM_HEADER = re.compile(
    r"^\s*\*?(?:from|von|de|van|发件人|發件人|寄件者)\s*(?:\*\s*)?[:：]", re.IGNORECASE
)
_OTHER_HEADER = re.compile(
    r"^\s*\*?(?:sent|date|to|cc|subject|gesendet|an|betreff|envoyé|à|objet|enviado|para|asunto"
    r"|发送时间|發送時間|寄件日期|时间|時間|日期|收件人|抄送|主题|主旨|主題)\s*(?:\*\s*)?[:：]",
    re.IGNORECASE,
)

_ATTRIBUTION = re.compile(
    r"""^\s*(?:
        (?:on|am|le|el|il|op|em|den|på)\b.{0,200}?
            (?:wrote|schrieb|a\s+écrit|écrit|escribió|ha\s+scritto|scritto|schreef|escreveu|skrev)
            (?:\s*:?|\s.{0,200}:)  # the verb ends the line, or the name follows it (German)
      | (?:在|於|于).{0,200}?(?:写道|寫道)\s*[:：]?
      | .{0,200}?(?:のメッセージ|書きました)\s*[:：]?
      | .{0,200}?<[^<>\s]+@[^<>\s]+>\s*(?:wrote|schrieb|a\s+écrit|escribió|写道|寫道)\s*[:：]?
    )\s*$""",
    re.IGNORECASE | re.VERBOSE,
)

# A wrapped attribution must start like one; the other forms are only recognised on one line.
_ATTRIBUTION_START = re.compile(r"^\s*(?:(?:on|am|le|el|il|op|em|den|på)\b|在|於|于)", re.I)

# An attribution that is followed by no ">" quote (a client that quotes without marks, an HTML
# quote without <blockquote>) ends the new text only when it carries a date or a time: "On Mon,
# 2 Apr 2012 at 17:44, Bob wrote:", "在 2026年5月3日 10:00，张三 写道：".
_DATED = re.compile(r"\d{4}|\d{1,2}:\d{2}|\d\s*[年月日]")
# Lotus Notes: the author's hierarchical name ("Jane Doe/Court/Gov@Gov") and the date line
# above the To/cc/Subject block of a quoted message.
_LOTUS_NAME = re.compile(r"^\s*[^/@\s][^/@]{0,80}(?:/[^/@\s]{1,40}){1,5}@[\w.-]{1,60}\s*$")
_DATE_LINE = re.compile(r"^\s*\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}(?:\s+\d{1,2}:\d{2}.*)?\s*$")
_SENDER_HEADER = re.compile(
    r"^\s*\*?(?:from|von|de|van|发件人|發件人|寄件者|sent|date|gesendet|envoyé|enviado|发送时间"
    r"|發送時間|寄件日期|时间|時間|日期|sent\s+by)\s*(?:\*\s*)?[:：]",
    re.IGNORECASE,
)
_TARGET_HEADER = re.compile(
    r"^\s*\*?(?:to|cc|subject|an|betreff|à|objet|para|asunto|收件人|抄送|主题|主旨|主題)"
    r"\s*(?:\*\s*)?[:：]",
    re.IGNORECASE,
)

_SIGNATURE = re.compile(r"^--\s*$")
MAX_PATTERN_LINE = 1000
"""Longer lines are text: no separator, header or attribution line is that long, and some of
the patterns above backtrack in time quadratic in the line's length. Every pattern is matched
through `_matches`, which holds to it."""
_MOBILE = re.compile(
    r"^\s*(?:sent\s+from\s+my\s+\S.*|sent\s+from\s+(?:mail|outlook|yahoo\s+mail)\b.*|get\s+outlook"
    r"\s+for\s+\S+.*|发自我的\S.*|發自我的\S.*|来自我的\S.*|從我的\S+傳送)\s*$",
    re.IGNORECASE,
)


def strip_reply(text: str) -> str:
    """What the sender wrote in `text` (a text/plain body), without history or signature."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    lines = lines[: _cut_at(lines)]
    kept: list[str] = []
    index = 0
    while index < len(lines):
        span = _attribution_span(lines, index)
        if span:
            index += span
            continue
        if lines[index].lstrip().startswith(">"):
            index += 1
            continue
        kept.append(lines[index].rstrip())
        index += 1
    return _tidy(kept)


def _cut_at(lines: list[str]) -> int:
    """Index of the first line of the history or signature that ends the new text."""
    for index, line in enumerate(lines):
        if len(line) > MAX_PATTERN_LINE:
            continue
        if _matches(_SEPARATORS, line) or _matches(_MOBILE, line):
            return index
        if _matches(_SIGNATURE, line) and index > 0:
            return index
        if _is_header(line) and _header_block(lines, index):
            return _lotus_lead(lines, index)
        if _is_header(line) and _lotus_lead(lines, index) < index and _targets(lines, index) >= 2:
            return _lotus_lead(lines, index)
        if index > 0 and _lotus_attribution(lines, index):
            return index
        if index > 0 and _unquoted_attribution(lines, index):
            return index
    return len(lines)


def _matches(pattern: re.Pattern[str], line: str) -> bool:
    """`pattern` matches at the start of `line`; never for a line over `MAX_PATTERN_LINE`."""
    return len(line) <= MAX_PATTERN_LINE and pattern.match(line) is not None


def _is_header(line: str) -> bool:
    return _matches(_FROM_HEADER, line) or _matches(_OTHER_HEADER, line)


def _header_block(lines: list[str], start: int) -> bool:
    """Whether a header line opens a quoted message's header block: a From: line with 2+ more
    headers in the next lines, or (Hotmail: Date, Subject, From, To; Lotus Notes: To, cc,
    Subject) 3+ header lines among the first 6 that name a sender or a date and a recipient or
    a subject, or a sender line directly followed by the time it was sent (发件人 / 发送时间)."""
    window = [line for line in lines[start : start + 8] if line.strip()][:6]
    headers = [line for line in window if _is_header(line)]
    if _matches(_FROM_HEADER, lines[start]) and len(headers) >= 3:
        return True
    if (
        len(headers) >= 3
        and any(_matches(_SENDER_HEADER, line) for line in headers)
        and any(_matches(_TARGET_HEADER, line) for line in headers)
    ):
        return True
    return (
        len(window) >= 2
        and _matches(_FROM_HEADER, window[0])
        and _matches(_SENDER_HEADER, window[1])
        and not _matches(_FROM_HEADER, window[1])
    )


def _lotus_lead(lines: list[str], index: int) -> int:
    """Where a header block really starts: Lotus Notes puts the author's name and the date on
    the lines above it."""
    start = index
    for back in range(index - 1, max(-1, index - 4), -1):
        line = lines[back]
        if not line.strip():
            continue
        if _matches(_LOTUS_NAME, line) or _matches(_DATE_LINE, line) or _sent_by(line):
            start = back
            continue
        break
    return start


def _targets(lines: list[str], start: int) -> int:
    window = [line for line in lines[start : start + 8] if line.strip()][:6]
    return sum(1 for line in window if _matches(_TARGET_HEADER, line))


def _lotus_attribution(lines: list[str], index: int) -> bool:
    """Lotus Notes' name line ("Jane Doe/Court/Gov@Gov") directly followed by a date line: the
    attribution of its table-shaped header (To / cc / Subject without colons)."""
    if not _matches(_LOTUS_NAME, lines[index]):
        return False
    following = [line for line in lines[index + 1 : index + 3] if line.strip()]
    return bool(following) and _matches(_DATE_LINE, following[0])


def _sent_by(line: str) -> bool:
    return line.strip().lower().startswith("sent by:")


def _unquoted_attribution(lines: list[str], index: int) -> bool:
    """A dated one-line attribution ("On <date>, <name> wrote:") followed by text that is not
    a ">" quote: the history follows without marks."""
    line = lines[index]
    return (
        _matches(_ATTRIBUTION, line)
        and bool(_DATED.search(line))
        and not _quote_follows(lines, index + 1)
    )


def _attribution_span(lines: list[str], index: int) -> int:
    """How many lines (1-3) form an attribution starting at `index` that a quote follows."""
    for span in (1, 2, 3):
        chunk = lines[index : index + span]
        if len(chunk) < span or any(not line.strip() for line in chunk[1:]):
            return 0
        if len(chunk[-1]) > MAX_PATTERN_LINE:
            return 0
        if span > 1 and not _matches(_ATTRIBUTION_START, chunk[0]):
            return 0
        if _ATTRIBUTION.match(" ".join(line.strip() for line in chunk)) and _quote_follows(
            lines, index + span
        ):
            return span
    return 0


def _quote_follows(lines: list[str], index: int) -> bool:
    """A ">" line (after blank lines) follows, or nothing does: the attribution's quote."""
    for line in lines[index:]:
        if line.strip():
            return line.lstrip().startswith(">")
    return True


def _tidy(lines: list[str]) -> str:
    """Drop blank lines at both ends and squeeze runs of blank lines left by removed quotes."""
    out: list[str] = []
    for line in lines:
        if not line.strip():
            if out and out[-1]:
                out.append("")
            continue
        out.append(line)
    return "\n".join(out).strip()
