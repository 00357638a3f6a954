"""Message text analysis: GSM 03.38 vs UCS-2, units, segments and look-alike replacement.

Pure functions over `str`, used by the composer, the providers and the Sandbox. Hand-written
rather than a dependency: the codec packages (gsm0338) encode but do not count or split parts,
and the tables are a few lines of data.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from enum import StrEnum


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


def analyze(text: str) -> SmsInfo:
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
    153/67 that never split an ESC pair or a surrogate pair (so a part may hold 152/66)."""
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


def _split(text: str, encoding: Encoding) -> list[tuple[str, int]]:
    """(part, units) pairs. Characters are indivisible, so a 2-unit character that would
    straddle a part boundary moves whole to the next part."""
    if not text:
        return []
    costs = [_unit_cost(ch, encoding) for ch in text]
    single, multi = _limits(encoding)
    total = sum(costs)
    if total <= single:
        return [(text, total)]
    parts: list[tuple[str, int]] = []
    start = 0
    units = 0
    for index, cost in enumerate(costs):
        if units + cost > multi:
            parts.append((text[start:index], units))
            start, units = index, 0
        units += cost
    parts.append((text[start:], units))
    return parts


_ZWJ = "\u200d"


def _is_regional_indicator(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def _extends_previous(ch: str) -> bool:
    """Code points that attach to the character before them: combining marks (incl. variation
    selectors and the keycap), emoji skin-tone modifiers and emoji tag characters."""
    cp = ord(ch)
    return (
        unicodedata.category(ch) in ("Mn", "Mc", "Me")
        or 0x1F3FB <= cp <= 0x1F3FF
        or 0xE0020 <= cp <= 0xE007F
    )


def count_characters(text: str) -> int:
    """Characters as a reader sees them: an approximation of grapheme clusters that joins
    combining marks, ZWJ emoji sequences, skin tones, tags and flag pairs to their base."""
    count = 0
    joined = False  # the previous code point was a ZWJ, so this one belongs to its cluster
    open_flag = False  # an unpaired regional indicator precedes
    for ch in text:
        if ch == _ZWJ and count:
            joined = True
            continue
        if joined or (count and _extends_previous(ch)):
            joined = False
            continue
        if _is_regional_indicator(ch):
            if open_flag:
                open_flag = False
                continue
            open_flag = True
        else:
            open_flag = False
        count += 1
    return count


def _space_lookalikes() -> dict[str, str]:
    spaces = "\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    return {ch: " " for ch in spaces + "\u202f\u205f\u3000\t"}


# Characters that word processors and phone keyboards slip in, mapped to GSM-7 text that reads
# the same (in the spirit of Twilio's Smart Encoding). Letters with a real meaning difference
# (á, ê, ...) are left alone; ç becomes Ç, the GSM table's own reading of position 0x09.
LOOKALIKES: dict[str, str] = {
    # single quotes, apostrophes, primes
    "\u2018": "'",  # ‘
    "\u2019": "'",  # ’
    "\u201a": "'",  # ‚
    "\u201b": "'",  # ‛
    "\u2032": "'",  # ′ prime
    "\u02bc": "'",  # ʼ modifier letter apostrophe
    "\u00b4": "'",  # ´ acute accent
    "`": "'",  # backtick is not in GSM 03.38
    "\uff07": "'",  # fullwidth apostrophe
    # double quotes
    "\u201c": '"',  # “
    "\u201d": '"',  # ”
    "\u201e": '"',  # „
    "\u201f": '"',  # ‟
    "\u2033": '"',  # ″ double prime
    "\u00ab": '"',  # «
    "\u00bb": '"',  # »
    "\uff02": '"',  # fullwidth quotation mark
    # single angle quotes
    "\u2039": "<",  # ‹
    "\u203a": ">",  # ›
    # hyphens and dashes
    "\u2010": "-",  # ‐ hyphen
    "\u2011": "-",  # ‑ non-breaking hyphen
    "\u2012": "-",  # ‒ figure dash
    "\u2013": "-",  # – en dash
    "\u2014": "-",  # — em dash
    "\u2015": "-",  # ― horizontal bar
    "\u2212": "-",  # − minus sign
    "\u00ad": "",  # soft hyphen: invisible
    "\uff0d": "-",  # fullwidth hyphen-minus
    # other punctuation
    "\u2026": "...",  # …
    "\u2022": "-",  # • bullet
    "\u00b7": ".",  # · middle dot
    "\u2044": "/",  # ⁄ fraction slash
    "\u2215": "/",  # ∕ division slash
    "\u00f7": "/",  # ÷
    "\u203c": "!!",  # ‼
    "\uff01": "!",  # fullwidth !
    "\uff0c": ",",  # fullwidth ,
    "\uff0e": ".",  # fullwidth .
    "\uff1a": ":",  # fullwidth :
    "\uff1b": ";",  # fullwidth ;
    "\uff1f": "?",  # fullwidth ?
    "\u3001": ",",  # ideographic comma
    "\u3002": ".",  # ideographic full stop
    # line separators become line feeds
    "\u2028": "\n",
    "\u2029": "\n",
    # invisible characters are dropped
    "\u200b": "",  # zero width space
    "\u2060": "",  # word joiner
    "\ufeff": "",  # byte order mark / zero width no-break space
    # letters
    "ç": "Ç",
    **_space_lookalikes(),
    **{chr(0xFF10 + digit): str(digit) for digit in range(10)},  # fullwidth digits
}


def replace_lookalikes(text: str) -> tuple[str, int]:
    """Replace every character that has a GSM-7 look-alike; returns (new text, replacements).
    Characters without one (emoji, other scripts) are kept, so the result may still be UCS-2."""
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
