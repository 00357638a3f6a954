"""Segments as Twilio bills them: grapheme clusters kept whole, Twilio's Smart Encoding table,
and what smart encoding saves (lookalike_report)."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsconsole.sms import (
    LOOKALIKES,
    Encoding,
    analyze,
    count_characters,
    graphemes,
    is_gsm7,
    lookalike_report,
    replace_lookalikes,
    split_segments,
)

FILL = "ж"  # one UCS-2 unit, and forces UCS-2
CODER = "\U0001f469\U0001f3fe\u200d\U0001f4bb"  # 👩🏾‍💻 woman technologist, medium-dark skin: 7 units
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # 👨‍👩‍👧: 8 units
THUMBS = "\U0001f44d\U0001f3fd"  # 👍🏽: 4 units
FLAG = "\U0001f1ec\U0001f1e7"  # 🇬🇧: 4 units
SCOTLAND = "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"  # tag sequence: 14 units
KEYCAP = "1\ufe0f\u20e3"  # 1️⃣: 3 units
ACUTE = "e\u0301"  # e + combining acute: 2 units
STACKED = "a\u0301\u0302"  # a + two combining marks: 3 units

CLUSTERS = [
    ("ZWJ sequence with skin tone", CODER),
    ("ZWJ family", FAMILY),
    ("skin tone", THUMBS),
    ("flag", FLAG),
    ("tag flag", SCOTLAND),
    ("keycap", KEYCAP),
    ("combining mark", ACUTE),
    ("two combining marks", STACKED),
]


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@pytest.mark.parametrize("cluster", [c for _, c in CLUSTERS], ids=[name for name, _ in CLUSTERS])
def test_a_cluster_straddling_the_67_unit_boundary_moves_whole_to_the_next_part(cluster: str) -> None:
    size = utf16_units(cluster)
    before = 68 - size  # the cluster would take units 69 - size … 68: one past the part
    text = FILL * before + cluster + FILL * (134 - before - size)  # 134 units: two full parts if split
    parts = split_segments(text)
    assert parts[0] == FILL * before
    assert parts[1].startswith(cluster)
    assert "".join(parts) == text
    info = analyze(text)
    assert (info.encoding, info.units, info.segments) == (Encoding.UCS2, 134, 3)
    assert count_characters(text) == 134 - size + 1


@pytest.mark.parametrize("cluster", [c for _, c in CLUSTERS], ids=[name for name, _ in CLUSTERS])
def test_a_cluster_that_ends_on_the_boundary_stays(cluster: str) -> None:
    size = utf16_units(cluster)
    text = FILL * (67 - size) + cluster + FILL * 10
    assert split_segments(text) == [FILL * (67 - size) + cluster, FILL * 10]


# text, encoding, segments
SINGLE_LIMITS = [
    ("70 UCS-2 units in one", FILL * 70, Encoding.UCS2, 1),
    ("71 UCS-2 units in two", FILL * 71, Encoding.UCS2, 2),
    ("8 coders and 14 fill: 70 units", CODER * 8 + FILL * 14, Encoding.UCS2, 1),
    ("10 families: 80 units", FAMILY * 10, Encoding.UCS2, 2),
    ("160 GSM-7 in one", "a" * 160, Encoding.GSM7, 1),
    ("159 GSM-7 and an escape pair: 161", "a" * 159 + "€", Encoding.GSM7, 2),
    ("a combining mark after a GSM letter forces UCS-2", "Cafe\u0301 " * 14, Encoding.UCS2, 2),
]


@pytest.mark.parametrize(("text", "encoding", "segments"), [c[1:] for c in SINGLE_LIMITS],
                         ids=[c[0] for c in SINGLE_LIMITS])
def test_single_part_limits(text: str, encoding: Encoding, segments: int) -> None:
    info = analyze(text)
    assert (info.encoding, info.segments) == (encoding, segments)
    assert len(split_segments(text)) == segments


def test_escape_pairs_at_every_153_boundary() -> None:
    text = "a" * 152 + "[" + "b" * 151 + "]" + "c" * 152 + "{"  # each pair would take septets 153-154
    parts = split_segments(text)
    assert parts == ["a" * 152, "[" + "b" * 151, "]" + "c" * 151, "c{"]
    assert analyze(text).segments == 4


def test_an_escape_pair_that_fits_septets_152_and_153_stays() -> None:
    text = "a" * 153 + "a" * 151 + "€" + "b"
    assert split_segments(text) == ["a" * 153, "a" * 151 + "€", "b"]


def test_gsm_text_with_a_combining_mark_is_ucs2_and_counts_what_a_reader_sees() -> None:
    info = analyze("Cafe\u0301")
    assert info.encoding is Encoding.UCS2
    assert (info.characters, info.units) == (4, 5)
    assert info.non_gsm == ((4, "\u0301"),)


def test_cr_lf_may_be_split_between_parts_as_twilio_does() -> None:
    text = FILL * 66 + "\r\n" + FILL * 10
    assert split_segments(text) == [FILL * 66 + "\r", "\n" + FILL * 10]


def test_a_cluster_longer_than_a_part_is_cut_between_code_points() -> None:
    zalgo = "a" + "\u0301" * 100  # one cluster of 101 units
    parts = split_segments(zalgo)
    assert "".join(parts) == zalgo
    assert [utf16_units(p) for p in parts] == [67, 34]


@pytest.mark.parametrize(
    ("text", "characters"),
    [(CODER, 1), (FAMILY + THUMBS, 2), (FLAG * 3, 3), (SCOTLAND, 1), (KEYCAP + "2", 2), ("Cafe\u0301", 4),
     ("a\r\nb", 3), ("ç", 1)],
)
def test_count_characters_counts_grapheme_clusters(text: str, characters: int) -> None:
    assert count_characters(text) == characters == len(graphemes(text))


# The example: 747 characters from a word processor (curly quotes, ellipses, dashes) are
# UCS-2 in 12 parts as typed, and GSM-7 in 6 parts once Twilio's Smart Encoding replaced them (the
# ellipsis becomes three dots and € [ ] take two septets, so 799 septets).
LINE = "“Your order #{n} is ready…” — pick it up at [Store {n}] by 6pm; total €20. "
BODY_747 = "".join(LINE.replace("{n}", str(n)) for n in range(20))[:747]


def test_the_747_character_body_is_billed_gsm7_times_6_with_smart_encoding() -> None:
    assert len(BODY_747) == 747
    typed = analyze(BODY_747)
    assert (typed.encoding, typed.segments) == (Encoding.UCS2, 12)
    billed = analyze(BODY_747, smart_encoding=True)
    assert (billed.encoding, billed.units, billed.segments) == (Encoding.GSM7, 799, 6)
    report = lookalike_report(BODY_747)
    assert report.forced_by_lookalikes
    assert (report.before.segments, report.after.segments, report.saving) == (12, 6, 6)
    assert report.culprits == (("“", '"', 11), ("…", "...", 11), ("”", '"', 11), ("—", "-", 11))


def test_lookalike_report_when_something_else_keeps_it_ucs2() -> None:
    report = lookalike_report("“ok” 😀")
    assert not report.forced_by_lookalikes
    assert report.after.encoding is Encoding.UCS2
    assert report.culprits == (("“", '"', 1), ("”", '"', 1))
    assert report.saving == 0


def test_lookalike_report_of_plain_gsm_text() -> None:
    report = lookalike_report("Plain text €5")
    assert (report.culprits, report.forced_by_lookalikes, report.saving) == ((), False, 0)
    assert report.before == report.after


def test_lookalike_report_names_no_culprit_for_characters_without_a_look_alike() -> None:
    report = lookalike_report("façade ‘x’")
    assert report.culprits == (("‘", "'", 1), ("’", "'", 1))
    assert not report.forced_by_lookalikes  # ç keeps it UCS-2
    assert replace_lookalikes("ç") == ("ç", 0)


@pytest.mark.parametrize(
    ("original", "expected"),
    [
        ("ç", "ç"),
        ("a\u00a0b", "a b"),  # no-break space: one space
        ("a\u3000b\u2007c", "a b c"),
        ("a\tb", "a       b"),  # tab: 7 spaces
        ("a\u2028b\u2029c", "a b c"),  # line and paragraph separators: a space
        ("‚", ","),  # single low-9 quotation mark: a comma
        ("\ufeffa\u200b\u2060", "a"),  # invisible ones go
        ("e\u0303", "e~"),  # a combining tilde in the table becomes ~ after its base
    ],
)
def test_twilio_readings(original: str, expected: str) -> None:
    assert replace_lookalikes(original)[0] == expected


def test_the_table_is_twilios_270_code_points() -> None:
    assert len(LOOKALIKES) == 270
    for source, target in LOOKALIKES.items():
        assert not is_gsm7(source), f"U+{ord(source):04X}"
        assert is_gsm7(target), f"U+{ord(source):04X}"


def test_no_letter_changes_case() -> None:
    """A lower-case letter never becomes an upper-case one or the reverse; the small capital
    letters (drawn as capitals, Twilio maps them to capitals) are the one kind allowed."""
    for source, target in LOOKALIKES.items():
        if not source.isalpha() or not target.isalpha():
            continue
        name = unicodedata.name(source)
        if "SMALL CAPITAL" in name:
            assert target.isupper(), name
            continue
        assert source.isupper() == target.isupper(), name


PIECES = list("abcxyz ABC.,!?@£$èé\n\r") + ["\r\n"] + list("€[]{}^~|\\") + [
    FILL, "中", "\U0001f600", THUMBS, CODER, FAMILY, FLAG, SCOTLAND, KEYCAP, ACUTE, STACKED, "ç", "“", "—", "…",
]
texts = st.lists(st.sampled_from(PIECES), max_size=400).map("".join)


def _units(part: str, encoding: Encoding) -> int:
    if encoding is Encoding.GSM7:
        return len(part) + sum(1 for ch in part if ch in "^{}\\[~]|€\f")
    return utf16_units(part)


@settings(max_examples=300, deadline=None)
@given(texts)
def test_parts_rebuild_the_text_within_limits_and_keep_clusters_whole(text: str) -> None:
    info = analyze(text)
    parts = split_segments(text)
    assert "".join(parts) == text
    assert len(parts) == info.segments
    limit = info.per_segment_limit
    assert all(_units(part, info.encoding) <= limit for part in parts)
    assert all(parts)
    cuts = set()
    offset = 0
    for part in parts[:-1]:
        offset += len(part)
        cuts.add(offset)
    boundaries = {0}
    offset = 0
    for cluster in graphemes(text):
        if cluster == "\r\n":
            boundaries.add(offset + 1)  # Twilio splits CR LF
        offset += len(cluster)
        boundaries.add(offset)
    assert cuts <= boundaries


@settings(max_examples=200, deadline=None)
@given(texts)
def test_smart_encoding_analysis_is_the_analysis_of_the_replaced_text(text: str) -> None:
    report = lookalike_report(text)
    assert report.after == analyze(replace_lookalikes(text)[0]) == analyze(text, smart_encoding=True)
    assert report.saving == report.before.segments - report.after.segments
    assert report.forced_by_lookalikes == (report.before.encoding is Encoding.UCS2
                                           and report.after.encoding is Encoding.GSM7)
    assert {ch for ch, _, _ in report.culprits} == {ch for ch in text if ch in LOOKALIKES}
