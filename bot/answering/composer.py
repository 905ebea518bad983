"""The reply text, fitted to a channel's `TextRules`.

`compose` prefers, in order: the full answer with its link; the staff-written short answer
(with, then without the link); the text cut at a sentence boundary, then at a word (English) or
character (Chinese) boundary, with "…" and the link. When even that does not fit, it drops the
link, then the @mention. Whatever it returns is measured with `rules.count`, so it never exceeds
`rules.limit`, even where a platform's counting is not monotonic (links, emoji, rounding).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bot.platform.adapter import TextRules
from bot.platform.lengths import graphemes, url_spans

ELLIPSIS = "…"
_SENTENCE_END = "。！？；\n"
# A Latin full stop ends a sentence only before a space or the end ("e.g.", "3.5", domains).
_LATIN_SENTENCE_END = ".!?;"
# Left dangling before "…" they read as an error: "fees, …".
_WEAK_TAIL = " \t\r\n,，、:：-–—"
_WORD_CHARS = "'’"
# Beyond this many cut points, a wrong guess of the binary search is not worth a linear scan.
_LINEAR_SCAN_MAX = 256
# Shortest recognisable option: a few 汉字 say as much as a few English words.
_MIN_OPTION_GRAPHEMES = {"zh": 6, "en": 16}

_CLARIFY_TEMPLATES = {
    "en": ("Did you mean: ", "? Reply with the number."),
    "zh": ("您是想问：", "？请回复序号。"),
}


def fits(text: str, rules: TextRules) -> bool:
    """Whether `text` is within the channel's limit, counted the channel's way."""
    return rules.count(text) <= rules.limit


def _mention_prefix(mention: str | None) -> str:
    """A mention as the platform writes it ("@alice", "<@U024BE7LH>") is used as given; a bare
    handle gets its "@"."""
    text = (mention or "").strip()
    if not text.lstrip("@"):
        return ""
    return (text if text[0] in "@<" else f"@{text}") + " "


def _assemble(prefix: str, body: str, link: str | None) -> str:
    tail = " ".join(part for part in (body, link) if part)
    return prefix + tail if tail else prefix.rstrip()


def _is_cjk(char: str) -> bool:
    code = ord(char)
    return (
        0x2E80 <= code <= 0x9FFF  # radicals, CJK punctuation, kana, ideographs
        or 0xAC00 <= code <= 0xD7AF  # Hangul
        or 0xF900 <= code <= 0xFAFF
        or 0xFF00 <= code <= 0xFFEF  # full-width forms
        or 0x20000 <= code <= 0x3FFFF
    )


def _in_word(char: str) -> bool:
    return (char.isalnum() or char in _WORD_CHARS) and not _is_cjk(char)


def _cut_points(text: str) -> tuple[list[int], list[int], list[int]]:
    """Offsets where `text` may be cut: after a sentence, between words, between graphemes."""
    boundaries: list[int] = []
    offset = 0
    for cluster in graphemes(text):
        offset += len(cluster)
        boundaries.append(offset)
    boundaries = boundaries[:-1]  # cutting after the last grapheme is no cut
    inside_url: set[int] = set()
    for start, end in url_spans(text):
        inside_url.update(range(start + 1, end))
    sentence: list[int] = []
    word: list[int] = []
    for point in boundaries:
        before, after = text[point - 1], text[point]
        if before in _SENTENCE_END or (before in _LATIN_SENTENCE_END and after.isspace()):
            sentence.append(point)
        if point not in inside_url and not (_in_word(before) and _in_word(after)):
            word.append(point)
    return sentence, word, boundaries


def _last_fitting(points: list[int], fits_at: Callable[[int], bool]) -> int | None:
    """The largest point that fits, found by binary search (counts are nearly monotonic)."""
    low, high, best = 0, len(points) - 1, None
    while low <= high:
        middle = (low + high) // 2
        if fits_at(points[middle]):
            best, low = points[middle], middle + 1
        else:
            high = middle - 1
    if best is None and len(points) <= _LINEAR_SCAN_MAX:
        best = next((point for point in reversed(points) if fits_at(point)), None)
    return best


def _truncated(
    text: str,
    tiers: Sequence[list[int]],
    rules: TextRules,
    prefix: str,
    link: str | None,
    *,
    ellipsis: str = ELLIPSIS,
) -> str | None:
    """The longest cut of `text` that fits with prefix, ellipsis and link, best boundary first."""

    def build(point: int) -> str:
        return _assemble(prefix, text[:point].rstrip(_WEAK_TAIL) + ellipsis, link)

    for points in tiers:
        best = _last_fitting(points, lambda point: fits(build(point), rules))
        if best is not None:
            return build(best)
    return None


def compose(
    answer: str,
    rules: TextRules,
    *,
    short: str | None = None,
    link: str | None = None,
    mention: str | None = None,
) -> str:
    """The reply for `answer` within `rules`, starting "@mention " when a mention is given.

    Never longer than `rules.limit`. Never empty for a non-empty answer once the limit is 2 or
    more, except with a byte counter too small for one character (a 汉字 is 3 UTF-8 bytes).
    """
    prefix = _mention_prefix(mention)
    answer = answer.strip()
    short = (short or "").strip() or None
    link = (link or "").strip() or None

    candidates = [_assemble(prefix, answer, link)]
    if short:
        candidates += [_assemble(prefix, short, link), _assemble(prefix, short, None)]
    for candidate in candidates:
        if fits(candidate, rules):
            return candidate

    body = short or answer
    # A cut that keeps only blanks or commas says nothing.
    first_solid = next((i for i, char in enumerate(body) if char not in _WEAK_TAIL), len(body))
    tiers = [[point for point in points if point > first_solid] for points in _cut_points(body)]
    # The link matters more than the tail of the text; the mention goes last.
    attempts = [(prefix, link), (prefix, None), ("", None)]
    for attempt_prefix, attempt_link in dict.fromkeys(attempts):
        cut = _truncated(body, tiers, rules, attempt_prefix, attempt_link)
        if cut is not None:
            return cut
    # Tiny limits: "…" itself may not fit (it weighs 2 on X).
    bare = _truncated(body, tiers[-1:], rules, "", None, ellipsis="")
    if bare is not None:
        return bare
    return ELLIPSIS if body and fits(ELLIPSIS, rules) else ""


def _shorten_option(option: str, size: int) -> str:
    clusters = graphemes(option)
    if len(clusters) <= size:
        return option
    kept = "".join(clusters[:size])
    following = clusters[size]
    if _in_word(kept[-1]) and _in_word(following[0]):
        # Rather "How do I pay…" than "How do I pa…", unless that leaves too little.
        space = kept.rfind(" ")
        if space >= len(kept) // 2:
            kept = kept[:space]
    return kept.rstrip(_WEAK_TAIL) + ELLIPSIS


def compose_clarify(
    options: Sequence[str], rules: TextRules, lang: str, mention: str | None = None
) -> str:
    """A clarifying question listing `options`, in Chinese (lang "zh…") or else English.

    English: "Did you mean: 1) … 2) …? Reply with the number."
    Chinese: "您是想问：1) … 2) …？请回复序号。"

    Options are shortened evenly until the whole fits, though not below a few words: rather the
    mention is dropped, then the last options (the numbers still match those shown). Below that,
    one option is shown as long as it fits, and at last the question itself is cut.
    """
    if not options:
        raise ValueError("compose_clarify needs at least one option")
    language = "zh" if lang.lower().startswith("zh") else "en"
    head, tail = _CLARIFY_TEMPLATES[language]
    # The template asks the question itself: "…fee?? Reply" would read as a typo.
    cleaned = [option.strip().rstrip("?？。.!！ ") or option.strip() for option in options]

    def render(prefix: str, shown: Sequence[str]) -> str:
        listed = " ".join(f"{number}) {text}" for number, text in enumerate(shown, 1))
        return f"{prefix}{head}{listed}{tail}"

    def shortened(prefix: str, shown: Sequence[str], minimum: int) -> str | None:
        def at(size: int) -> str:
            return render(prefix, [_shorten_option(text, size) for text in shown])

        longest = max(len(graphemes(text)) for text in shown)
        sizes = list(range(min(minimum, longest), longest + 1))
        size = _last_fitting(sizes, lambda n: fits(at(n), rules))
        return None if size is None else at(size)

    prefix = _mention_prefix(mention)
    full = render(prefix, cleaned)
    if fits(full, rules):
        return full
    # Fewer options that can still be recognised beat all of them cut to a stub.
    minimum = _MIN_OPTION_GRAPHEMES[language]
    for attempt_prefix in dict.fromkeys((prefix, "")):
        for count in range(len(cleaned), 0, -1):
            text = shortened(attempt_prefix, cleaned[:count], minimum)
            if text is not None:
                return text
    for attempt_prefix in dict.fromkeys((prefix, "")):
        text = shortened(attempt_prefix, cleaned[:1], 1)
        if text is not None:
            return text
    return compose(render("", cleaned), rules, mention=mention)
