"""Masking personal data in citizen text: phone numbers, Chinese resident ID numbers, e-mail
addresses and bank card numbers, for logs and reports.

`mask(text)` keeps a hint of each value, enough for a colleague to tell two apart and never
enough to use one: 138****5678, 1101**********1234, z***@example.com, **** **** **** 1234.

Numbers are found as runs of digits ("groups") joined by single separators (a space, a dash, the
")" after an area code), and a run of one or more whole groups is masked only when it is one of:

- a Chinese mobile number: 11 digits 1[3-9]..., written 13812345678, 138 1234 5678 or 138-12345678;
- a landline: 0 and a 2- or 3-digit area code (010, 021, 0755) and 7 or 8 digits (8 after 01x
  and 02x), written 010-12345678, (0755) 8765 4321 or 01012345678;
- an international number: "+" and 8 to 15 digits (+86 138 1234 5678, +44 20 7946 0958);
- a resident ID: 18 characters whose region (its first two digits), birth date and check digit
  (ISO 7064 MOD 11-2; X stands for 10) are valid, or an old 15-digit one with a valid region and
  birth date;
- a bank card: 13 to 19 digits that pass the Luhn check and start as card numbers do (3, 4, 5, 6
  or 9, or 2221-2720), in groups of at least 3 digits.

So order numbers (20260415000123), dates (2026-04-15), case numbers ((2026)京01民初123号) and
amounts (¥12,345.67, 1 380 元) stay as they are. Digits anywhere in Unicode (全角 １３８...) count.

Masking is idempotent, and shows no digit that was not shown before: a hint's digits are kept
only where no digit group is joined to the value, so that what is left can never be read
together with a neighbour as a new number.

`MaskingFilter` masks every log record a handler writes (the message with its arguments
formatted, the traceback, the stack); `install_log_masking()` puts one on each handler of a
logger (the root logger by default), as `civicdesk serve` and `civicdesk work` do.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

from bot.runtime.logflood import install_flood_filter

STAR = "*"

# Anchored at the start of a run of address characters, so that long runs are not rescanned.
_EMAIL = re.compile(
    r"(?<![\dA-Za-z._%+\-@])[\dA-Za-z._%+\-]+"  # the local part, from its first character
    r"@([A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,})"  # the domain, kept
)
_GROUP = re.compile(r"\d+")
# What may join two groups of one number: one space or dash (ASCII, full-width, ideographic),
# or the ")" closing an area code, with or without a space after it.
_JOIN = re.compile(r"[ \-\u3000\uff0d]|[)\uff09] ?")
_PLUS = "+\uff0b"
_CHECK_X = "Xx\uff38\uff58"
# Every value has at least 7 digits, none more than 2 characters apart: a quick way out.
_MAYBE_NUMBER = re.compile(r"\d(?:\D{0,2}\d){6}")
_LONGEST = 19  # digits of the longest value (a card)

# The first two digits of a resident ID: the province-level region.
_REGIONS = frozenset(
    {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46}
    | {50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83, 91}
)
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


@dataclass(frozen=True, slots=True)
class _Group:
    start: int
    end: int
    digits: str  # as ASCII digits


@dataclass(frozen=True, slots=True)
class _Found:
    """A value in groups[first..last]: keep `head` digits at the start and `tail` at the end."""

    head: int
    tail: int
    check_x: bool = False  # an 18-character ID whose last character is the X after the groups


def mask(text: str) -> str:
    """`text` with every phone number, resident ID, e-mail address and bank card number masked
    (see the module's description for what counts as one)."""
    # Numbers first: the e-mail pass then never has digits to keep (see _mask_email).
    if _MAYBE_NUMBER.search(text) is not None:
        text = _mask_numbers(text)
    if "@" in text:
        text = _EMAIL.sub(_mask_email, text)
    return text


def email_addresses(text: str) -> list[str]:
    """The e-mail addresses written in `text`, in order (the same ones `mask` hides)."""
    return [found.group() for found in _EMAIL.finditer(text)] if "@" in text else []


def _mask_email(found: re.Match[str]) -> str:
    first = found.group()[0]
    # Only a letter is kept: a kept digit could be read with the digits before it.
    hint = first if first.isascii() and first.isalpha() else ""
    return f"{hint}***@{found.group(1)}"


def _mask_numbers(text: str) -> str:
    groups = [
        _Group(m.start(), m.end(), "".join(str(int(c)) for c in m.group()))
        for m in _GROUP.finditer(text)
    ]
    chars = list(text)
    for chain in _chains(text, groups):
        _mask_chain(text, chain, chars)
    return "".join(chars)


def _chains(text: str, groups: Sequence[_Group]) -> list[list[_Group]]:
    """The groups, in runs joined by separators."""
    chains: list[list[_Group]] = []
    for group in groups:
        if chains and _joined(text, chains[-1][-1], group):
            chains[-1].append(group)
        else:
            chains.append([group])
    return chains


def _joined(text: str, left: _Group, right: _Group) -> bool:
    return _JOIN.fullmatch(text, left.end, right.start) is not None


def _mask_chain(text: str, chain: Sequence[_Group], chars: list[str]) -> None:
    """Mask the values in one chain, taking at each group the longest run that is a value."""
    if sum(len(group.digits) for group in chain) < 7:
        return
    first = 0
    while first < len(chain):
        longest = _longest_value(text, chain, first)
        if longest is None:
            first += 1
            continue
        last, found = longest
        # A hint is kept only at the chain's ends: a kept digit joined to another group could
        # make a new value with it when the text is masked again.
        head = found.head if first == 0 else 0
        tail = found.tail if last == len(chain) - 1 else 0
        _star(chars, chain[first : last + 1], head, tail)
        if found.check_x and tail == 0:
            chars[chain[last].end] = STAR
        first = last + 1


def _longest_value(text: str, chain: Sequence[_Group], first: int) -> tuple[int, _Found] | None:
    """The last group and the kind of the longest value starting at chain[first], if any."""
    start = chain[first].start
    plus = start > 0 and text[start - 1] in _PLUS
    digits = 0
    ends = []
    for last in range(first, len(chain)):
        size = len(chain[last].digits)
        if size < 3 and not plus:
            break  # only an international number has groups shorter than 3 digits
        digits += size
        if digits > _LONGEST:
            break
        ends.append(last)
    for last in reversed(ends):
        found = _identify(text, chain[first : last + 1])
        if found is not None:
            return last, found
    return None


def _star(chars: list[str], groups: Sequence[_Group], head: int, tail: int) -> None:
    positions = [i for group in groups for i in range(group.start, group.end)]
    for i in positions[head : len(positions) - tail]:
        chars[i] = STAR


def _identify(text: str, groups: Sequence[_Group]) -> _Found | None:
    digits = "".join(group.digits for group in groups)
    sizes = [len(group.digits) for group in groups]
    after = text[groups[-1].end : groups[-1].end + 1]
    plus = groups[0].start > 0 and text[groups[0].start - 1] in _PLUS
    if plus:
        found = _international(digits, sizes)
        if found is not None:
            return found
    if len(digits) == 17 and after and after in _CHECK_X and _resident_id(digits + "X"):
        return _Found(head=4, tail=3, check_x=True)
    for identify in _IDENTIFIERS:
        found = identify(digits, sizes)
        if found is not None:
            return found
    return None


def _mobile(digits: str, sizes: Sequence[int]) -> _Found | None:
    mobile = len(digits) == 11 and digits[0] == "1" and digits[1] in "3456789"
    if mobile and list(sizes) in ([11], [3, 4, 4], [3, 8]):
        return _Found(head=3, tail=4)
    return None


def _landline(digits: str, sizes: Sequence[int]) -> _Found | None:
    if len(digits) < 10 or digits[0] != "0" or digits[1] == "0":
        return None
    area = 3 if digits[1] in "12" else 4
    local = len(digits) - area
    if local not in ((8,) if area == 3 else (7, 8)):
        return None
    if len(sizes) > 1 and (sizes[0] != area or min(sizes[1:]) < 3):
        return None
    return _Found(head=area, tail=4)


def _resident_id_18(digits: str, sizes: Sequence[int]) -> _Found | None:
    if len(digits) == 18 and min(sizes) >= 3 and _resident_id(digits):
        return _Found(head=4, tail=4)
    return None


def _resident_id_15(digits: str, sizes: Sequence[int]) -> _Found | None:
    if len(digits) == 15 and min(sizes) >= 3 and _old_resident_id(digits):
        return _Found(head=4, tail=3)
    return None


def _card(digits: str, sizes: Sequence[int]) -> _Found | None:
    if 13 <= len(digits) <= 19 and min(sizes) >= 3 and _card_prefix(digits) and _luhn(digits):
        return _Found(head=0, tail=4)
    return None


def _international(digits: str, sizes: Sequence[int]) -> _Found | None:
    if not 8 <= len(digits) <= 15 or digits[0] == "0":
        return None
    if digits.startswith("86") and _mobile(digits[2:], [11]) is not None:
        return _Found(head=5, tail=4)  # +86 138****5678
    code = sizes[0] if len(sizes) > 1 and sizes[0] <= 3 else 2
    return _Found(head=code, tail=4)


_IDENTIFIERS: tuple[Callable[[str, Sequence[int]], _Found | None], ...] = (
    _mobile,
    _landline,
    _resident_id_18,
    _resident_id_15,
    _card,
)


def _resident_id(characters: str) -> bool:
    """An 18-character resident ID (GB 11643): region, birth date and check character."""
    if int(characters[:2]) not in _REGIONS or not _birth_date(characters[6:14]):
        return False
    total = sum(int(c) * w for c, w in zip(characters[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == characters[17].upper()


def _old_resident_id(digits: str) -> bool:
    """A 15-digit resident ID (before 1999): region and a birth date in the 1900s."""
    return int(digits[:2]) in _REGIONS and _birth_date("19" + digits[6:12])


def _birth_date(yyyymmdd: str) -> bool:
    year, month, day = int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8])
    if not 1900 <= year <= 2099:
        return False
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


def _card_prefix(digits: str) -> bool:
    return digits[0] in "34569" or 2221 <= int(digits[:4]) <= 2720


def _luhn(digits: str) -> bool:
    total = 0
    for position, character in enumerate(reversed(digits)):
        value = int(character)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


# --- Logs -------------------------------------------------------------------------------------

_TRACEBACKS = logging.Formatter()
# Characters that would end a log line or rewrite what a terminal shows: CR and LF (a forged
# line), the other C0 and C1 controls (ESC sequences), and Unicode's line and paragraph breaks.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape_controls(text: str) -> str:
    """`text` on one line: each control character written as an escape (\\n, \\r, \\x1b),
    so that a value a stranger sent cannot start a forged log line."""
    if _CONTROLS.search(text) is None:
        return text
    return _CONTROLS.sub(_escape, text)


def _escape(found: re.Match[str]) -> str:
    char = found.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


class MaskingFilter(logging.Filter):
    """Masks what a record will show: its message with the arguments put in (control
    characters escaped, so it stays one line), its traceback and its stack. Put it on
    handlers, not loggers: a logger's filters do not see the records its children pass up,
    a handler's see every record it writes."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed call: shown as the format and its arguments, masked
            message = f"{record.msg} % {record.args!r}"
            record.args = None
        # Escaped first: a value with a line break in it stays on its record's line.
        masked = mask(escape_controls(message))
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        return True


def install_log_masking(logger: logging.Logger | None = None) -> int:
    """Put a MaskingFilter on each handler of `logger` (default: the root logger) that has none
    yet, after a FloodFilter (bot.runtime.logflood); returns how many got a MaskingFilter.
    Handlers added later are not covered: call it after them."""
    target = logger if logger is not None else logging.getLogger()
    # First, so that a flood of "Too many open files" is thinned before anything is masked.
    install_flood_filter(target)
    installed = 0
    for handler in target.handlers:
        if not any(isinstance(f, MaskingFilter) for f in handler.filters):
            handler.addFilter(MaskingFilter())
            installed += 1
    return installed
