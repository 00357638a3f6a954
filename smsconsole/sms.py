"""Message text analysis: GSM 03.38 vs UCS-2, units, segments and look-alike replacement.

Pure functions over `str`, used by the composer, the providers and the Sandbox. Segments are
counted the way Twilio bills them (its segment calculator, github.com/TwilioDevEd/
message-segment-calculator): a part never splits a grapheme cluster (an emoji ZWJ sequence, a skin
tone, a flag, a keycap, a letter with its combining marks), an ESC pair or a surrogate pair; a
cluster that would straddle a part boundary moves whole to the next part. Grapheme clusters come
from the `regex` package's `\\X` (Unicode's extended grapheme clusters, kept current with Unicode).
The codec packages (gsm0338) encode but do not count or split parts, so the GSM tables are here.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from enum import StrEnum

import regex

from smsconsole.sms_tables import TWILIO_SMART_ENCODING


class Encoding(StrEnum):
    GSM7 = "GSM-7"
    UCS2 = "UCS-2"


# 140 octets of user data: 160 septets or 70 UTF-16 units in a single message. A concatenated
# part loses 6 octets to the UDH: 153 septets or 67 units.
GSM7_SINGLE_LIMIT = 160
GSM7_PART_LIMIT = 153
UCS2_SINGLE_LIMIT = 70
UCS2_PART_LIMIT = 67

# The GSM 03.38 default alphabet in code order, 0x1B (ESC) left out: it only introduces an
# extension character and cannot be sent on its own.
GSM7_BASIC: frozenset[str] = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: each is sent as ESC + code, so costs 2 septets.
GSM7_EXTENSION: frozenset[str] = frozenset("^{}\\[~]|€\f")


@dataclass(frozen=True, slots=True)
class SmsInfo:
    """What a message costs. `units` are septets for GSM-7 and UTF-16 code units for UCS-2;
    `remaining` is how many units still fit in the last segment; `non_gsm` lists the
    (string index, character) pairs that force UCS-2."""

    encoding: Encoding
    characters: int
    units: int
    segments: int
    per_segment_limit: int
    remaining: int
    non_gsm: tuple[tuple[int, str], ...]


def is_gsm7(text: str) -> bool:
    """True when every character is in the GSM 03.38 basic or extension table."""
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def analyze(text: str, *, smart_encoding: bool = False) -> SmsInfo:
    """What `text` costs. With `smart_encoding`, what it costs once the provider's Smart Encoding
    has replaced its look-alikes (Twilio counts and bills the replaced text): indexes in
    `non_gsm` are then into the replaced text."""
    if smart_encoding:
        text = replace_lookalikes(text)[0]
    non_gsm = tuple(
        (index, ch)
        for index, ch in enumerate(text)
        if ch not in GSM7_BASIC and ch not in GSM7_EXTENSION
    )
    encoding = Encoding.UCS2 if non_gsm else Encoding.GSM7
    parts = _split(text, encoding)
    single, multi = _limits(encoding)
    per_segment_limit = multi if len(parts) > 1 else single
    last_units = parts[-1][1] if parts else 0
    return SmsInfo(
        encoding=encoding,
        characters=count_characters(text),
        units=sum(units for _, units in parts),
        segments=len(parts),
        per_segment_limit=per_segment_limit,
        remaining=per_segment_limit - last_units,
        non_gsm=non_gsm,
    )


@dataclass(frozen=True, slots=True)
class Ucs2Culprit:
    """A character that forces UCS-2: how often it occurs and its first (0-based) string index."""

    char: str
    count: int
    first_index: int


def ucs2_culprits(text: str) -> tuple[Ucs2Culprit, ...]:
    """Each distinct character that forces UCS-2, named once, in order of first appearance."""
    first: dict[str, int] = {}
    counts: dict[str, int] = {}
    for index, ch in analyze(text).non_gsm:
        first.setdefault(ch, index)
        counts[ch] = counts.get(ch, 0) + 1
    return tuple(Ucs2Culprit(ch, counts[ch], index) for ch, index in first.items())


def split_segments(text: str) -> list[str]:
    """The parts as they would be sent: one part up to 160/70 units, else parts of at most
    153/67 that never split a grapheme cluster, an ESC pair or a surrogate pair (so a part may
    hold fewer units than the limit)."""
    encoding = Encoding.GSM7 if is_gsm7(text) else Encoding.UCS2
    return [part for part, _ in _split(text, encoding)]


def _limits(encoding: Encoding) -> tuple[int, int]:
    if encoding is Encoding.GSM7:
        return GSM7_SINGLE_LIMIT, GSM7_PART_LIMIT
    return UCS2_SINGLE_LIMIT, UCS2_PART_LIMIT


def _unit_cost(ch: str, encoding: Encoding) -> int:
    if encoding is Encoding.GSM7:
        return 2 if ch in GSM7_EXTENSION else 1
    return 2 if ord(ch) > 0xFFFF else 1  # a surrogate pair in UTF-16


_GRAPHEME = regex.compile(r"\X")


def graphemes(text: str) -> list[str]:
    """The text's extended grapheme clusters (what a reader sees as one character)."""
    return _GRAPHEME.findall(text)


def _pieces(text: str, encoding: Encoding) -> list[str]:
    """The indivisible pieces a part boundary may fall between. GSM-7 text has no multi-code-
    point clusters except CR LF, so its pieces are its characters; otherwise grapheme clusters,
    with CR LF as two pieces (as Twilio's calculator splits it)."""
    if encoding is Encoding.GSM7:
        return list(text)
    pieces: list[str] = []
    for cluster in graphemes(text):
        if cluster == "\r\n":
            pieces.extend(cluster)
        else:
            pieces.append(cluster)
    return pieces


def _split(text: str, encoding: Encoding) -> list[tuple[str, int]]:
    """(part, units) pairs. Pieces are indivisible, so one that would straddle a part boundary
    moves whole to the next part. A single cluster longer than a whole part (hundreds of
    stacked combining marks) is split between its code points, surrogate pairs kept whole."""
    if not text:
        return []
    single, multi = _limits(encoding)
    total = sum(_unit_cost(ch, encoding) for ch in text)
    if total <= single:
        return [(text, total)]
    parts: list[tuple[str, int]] = []
    current: list[str] = []
    units = 0
    for piece in _pieces(text, encoding):
        cost = sum(_unit_cost(ch, encoding) for ch in piece)
        if cost > multi:
            pieces = list(piece)  # code points: only an oversized cluster is cut
        else:
            pieces = [piece]
        for chunk in pieces:
            chunk_cost = cost if len(pieces) == 1 else _unit_cost(chunk, encoding)
            if units + chunk_cost > multi:
                parts.append(("".join(current), units))
                current, units = [], 0
            current.append(chunk)
            units += chunk_cost
    parts.append(("".join(current), units))
    return parts


def count_characters(text: str) -> int:
    """Characters as a reader sees them: extended grapheme clusters (a letter with its combining
    marks, an emoji ZWJ sequence, a skin tone, a flag, a keycap each count 1)."""
    if text.isascii():
        return len(text) - text.count("\r\n")
    return len(graphemes(text))


# Characters that word processors and phone keyboards slip in, mapped to GSM-7 text that reads
# the same: Twilio's Smart Encoding table (sms_tables.py says where it comes from and where we
# read it differently). No letter changes case.
LOOKALIKES: dict[str, str] = dict(TWILIO_SMART_ENCODING)


_LOOKALIKE = regex.compile("[" + "".join(regex.escape(ch) for ch in LOOKALIKES) + "]")


def has_lookalikes(text: str) -> bool:
    """Whether smart encoding would change `text` (quicker than replacing)."""
    return _LOOKALIKE.search(text) is not None


def replace_lookalikes(text: str) -> tuple[str, int]:
    """Replace every character that has a GSM-7 look-alike; returns (new text, replacements).
    Characters without one (emoji, other scripts, ç) are kept, so the result may still be UCS-2."""
    replaced = 0
    out: list[str] = []
    for ch in text:
        substitute = LOOKALIKES.get(ch)
        if substitute is None:
            out.append(ch)
        else:
            out.append(substitute)
            replaced += 1
    return "".join(out), replaced


@dataclass(frozen=True, slots=True)
class LookalikeReport:
    """What Smart Encoding changes in a message. `after` is the analysis of the replaced text;
    `culprits` are (character, replacement, count) of each look-alike in the text, in order of
    first appearance (each forces UCS-2 on its own); `forced_by_lookalikes` is True when the text
    is UCS-2 only because of them (replaced, it is GSM-7); `saving` is the segments Smart
    Encoding saves (negative when a longer replacement, such as … to ..., adds a UCS-2 part)."""

    before: SmsInfo
    after: SmsInfo
    culprits: tuple[tuple[str, str, int], ...]
    forced_by_lookalikes: bool
    saving: int


def lookalike_report(text: str) -> LookalikeReport:
    before = analyze(text)
    after = analyze(replace_lookalikes(text)[0])
    counts = Counter(ch for _, ch in before.non_gsm if ch in LOOKALIKES)
    culprits = tuple((ch, LOOKALIKES[ch], count) for ch, count in counts.items())
    forced = before.encoding is Encoding.UCS2 and after.encoding is Encoding.GSM7
    return LookalikeReport(before, after, culprits, forced, before.segments - after.segments)
