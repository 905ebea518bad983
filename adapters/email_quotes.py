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
      | _{20,}
    )\s*$""",
    re.IGNORECASE | re.VERBOSE,
)

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

_SIGNATURE = re.compile(r"^--\s*$")
MAX_PATTERN_LINE = 1000
"""Longer lines are text: no separator, header or attribution line is that long, and some of
the patterns above backtrack in time quadratic in the line's length."""
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
        if _SEPARATORS.match(line) or _MOBILE.match(line):
            return index
        if _SIGNATURE.match(line) and index > 0:
            return index
        if _FROM_HEADER.match(line) and _header_block(lines, index):
            return index
    return len(lines)


def _header_block(lines: list[str], start: int) -> bool:
    """Whether a From: line opens a quoted message's header block (2+ headers in 6 lines)."""
    following = [line for line in lines[start + 1 : start + 7] if line.strip()]
    headers = [line for line in following[:5] if len(line) <= MAX_PATTERN_LINE]
    return sum(1 for line in headers if _OTHER_HEADER.match(line)) >= 2


def _attribution_span(lines: list[str], index: int) -> int:
    """How many lines (1-3) form an attribution starting at `index` that a quote follows."""
    for span in (1, 2, 3):
        chunk = lines[index : index + span]
        if len(chunk) < span or any(not line.strip() for line in chunk[1:]):
            return 0
        if len(chunk[-1]) > MAX_PATTERN_LINE:
            return 0
        if span > 1 and not _ATTRIBUTION_START.match(chunk[0]):
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
