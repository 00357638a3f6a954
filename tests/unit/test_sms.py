"""Message text analysis: encoding choice, unit counting, segment splitting, look-alikes."""

from __future__ import annotations

import pytest

from smsconsole.sms import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    LOOKALIKES,
    Encoding,
    analyze,
    count_characters,
    is_gsm7,
    replace_lookalikes,
    split_segments,
    ucs2_culprits,
)

EMOJI = "\U0001f600"  # 😀, outside the BMP: a surrogate pair in UTF-16

# text, encoding, units, segments, per-segment limit, remaining in the last segment
SEGMENT_CASES = [
    ("empty", "", Encoding.GSM7, 0, 0, 160, 160),
    ("hello", "hello", Encoding.GSM7, 5, 1, 160, 155),
    ("160 GSM-7 fits one", "a" * 160, Encoding.GSM7, 160, 1, 160, 0),
    ("161 GSM-7 needs two", "a" * 161, Encoding.GSM7, 161, 2, 153, 145),
    ("306 GSM-7 fills two parts", "a" * 306, Encoding.GSM7, 306, 2, 153, 0),
    ("307 GSM-7 needs three", "a" * 307, Encoding.GSM7, 307, 3, 153, 152),
    ("80 euro signs are 160 septets", "€" * 80, Encoding.GSM7, 160, 1, 160, 0),
    # only 76 euro signs (152 septets) fit a part, so the second holds 5 (10 septets)
    ("81 euro signs are 162 septets", "€" * 81, Encoding.GSM7, 162, 2, 153, 143),
    ("every extension char counts 2", "^{}\\[~]|€\f", Encoding.GSM7, 20, 1, 160, 140),
    ("LF and CR are basic", "a\nb\r\n", Encoding.GSM7, 5, 1, 160, 155),
    ("70 UCS-2 fits one", "ж" * 70, Encoding.UCS2, 70, 1, 70, 0),
    ("71 UCS-2 needs two", "ж" * 71, Encoding.UCS2, 71, 2, 67, 63),
    ("134 UCS-2 fills two parts", "ж" * 134, Encoding.UCS2, 134, 2, 67, 0),
    ("135 UCS-2 needs three", "ж" * 135, Encoding.UCS2, 135, 3, 67, 66),
    ("35 emoji are 70 units", EMOJI * 35, Encoding.UCS2, 70, 1, 70, 0),
    # only 33 emoji (66 units) fit a part, so the second holds 3 (6 units)
    ("36 emoji are 72 units", EMOJI * 36, Encoding.UCS2, 72, 2, 67, 61),
]


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments", "limit", "remaining"),
    [case[1:] for case in SEGMENT_CASES],
    ids=[case[0] for case in SEGMENT_CASES],
)
def test_segment_counting(
    text: str, encoding: Encoding, units: int, segments: int, limit: int, remaining: int
) -> None:
    info = analyze(text)
    assert (info.encoding, info.units, info.segments) == (encoding, units, segments)
    assert (info.per_segment_limit, info.remaining) == (limit, remaining)
    parts = split_segments(text)
    assert len(parts) == segments
    assert "".join(parts) == text


def test_escape_pair_is_never_split_across_parts() -> None:
    text = "a" * 152 + "€" + "b" * 10  # the euro sign would take septets 153 and 154
    parts = split_segments(text)
    assert parts == ["a" * 152, "€" + "b" * 10]
    info = analyze(text)
    assert (info.units, info.segments, info.remaining) == (164, 2, 153 - 12)


def test_escape_pair_that_fits_exactly_stays_in_the_part() -> None:
    text = "a" * 151 + "€" + "b" * 10  # septets 152 and 153: the pair fits
    assert split_segments(text) == ["a" * 151 + "€", "b" * 10]


def test_surrogate_pair_is_never_split_across_parts() -> None:
    text = "a" * 66 + EMOJI + "b" * 5  # forces UCS-2; the emoji would take units 67 and 68
    parts = split_segments(text)
    assert parts == ["a" * 66, EMOJI + "b" * 5]
    info = analyze(text)
    assert (info.encoding, info.units, info.segments, info.remaining) == (
        Encoding.UCS2,
        73,
        2,
        67 - 7,
    )


@pytest.mark.parametrize("char", ["ç", "“", "—", "`", EMOJI, "ж"])
def test_one_non_gsm_character_switches_the_whole_message_to_ucs2(char: str) -> None:
    text = "Hello " + char + " there"
    info = analyze(text)
    assert info.encoding is Encoding.UCS2
    assert info.non_gsm == ((6, char),)
    assert info.per_segment_limit == 70


def test_non_gsm_lists_every_offending_character_with_its_index() -> None:
    info = analyze("“Hi” ç")
    assert info.non_gsm == ((0, "“"), (3, "”"), (5, "ç"))


def test_ucs2_culprits_name_each_character_once_with_its_count() -> None:
    culprits = ucs2_culprits(EMOJI * 196)
    assert [(c.char, c.count, c.first_index) for c in culprits] == [(EMOJI, 196, 0)]


def test_ucs2_culprits_keep_the_order_of_first_appearance() -> None:
    culprits = ucs2_culprits("“Hi” ç “there” " + EMOJI + " ç")
    assert [(c.char, c.count, c.first_index) for c in culprits] == [
        ("“", 2, 0), ("”", 2, 3), ("ç", 2, 5), (EMOJI, 1, 15),
    ]


def test_ucs2_culprits_of_gsm_text_are_none() -> None:
    assert ucs2_culprits("Ç £5 @home [ok] €") == ()
    assert ucs2_culprits("") == ()


def test_gsm_text_has_no_non_gsm_characters() -> None:
    info = analyze("Ç £5 @home [ok] {x} ~ | \\ ^ €")
    assert info.encoding is Encoding.GSM7
    assert info.non_gsm == ()
    assert is_gsm7("Ç £5 @home")
    assert not is_gsm7("ç")


def test_tables_match_gsm_03_38() -> None:
    assert len(GSM7_BASIC) == 127  # 128 positions less ESC
    assert "\x1b" not in GSM7_BASIC
    assert GSM7_EXTENSION == frozenset("^{}\\[~]|€\f")
    assert not GSM7_BASIC & GSM7_EXTENSION
    assert "Ç" in GSM7_BASIC and "ç" not in GSM7_BASIC


@pytest.mark.parametrize(
    ("text", "characters"),
    [
        ("", 0),
        ("hello", 5),
        (EMOJI * 3, 3),
        ("e\u0301", 1),  # e + combining acute
        ("\U0001f44d\U0001f3fd", 1),  # thumbs up + skin tone
        ("\U0001f468\u200d\U0001f469\u200d\U0001f467", 1),  # family ZWJ sequence
        ("\U0001f1ec\U0001f1e7\U0001f1fa\U0001f1f8", 2),  # two flags
        ("1\ufe0f\u20e3", 1),  # keycap one
    ],
)
def test_characters_count_what_a_reader_sees(text: str, characters: int) -> None:
    assert count_characters(text) == characters
    assert analyze(text).characters == characters


def test_units_count_utf16_code_units_not_characters() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    info = analyze(family)
    assert (info.characters, info.units) == (1, 8)


def test_replace_lookalikes_turns_word_processor_text_into_gsm7() -> None:
    text, replaced = replace_lookalikes("“Hello” — it’s…")
    assert text == "\"Hello\" - it's..."
    assert replaced == 5
    assert analyze(text).encoding is Encoding.GSM7


@pytest.mark.parametrize(
    ("original", "expected"),
    [
        ("‘a’ ‛b", "'a' 'b"),
        ("‚low-9‚", ",low-9,"),  # Twilio's table: a comma, not an apostrophe
        ("„c‟ «d»", '"c" "d"'),
        ("‹e›", "<e>"),
        ("1–2 ‐ ― —", "1-2 - - -"),
        ("a\u00a0b\u2009c\u202fd", "a b c d"),
        ("• item", "- item"),
        ("façade", "façade"),  # not in the table: a letter never changes case
        ("１２３", "123"),
        ("zero\u200bwidth", "zerowidth"),
        ("tab\there", "tab" + " " * 7 + "here"),  # Twilio: a tab is 7 spaces
        ("line\u2028break", "line break"),  # Twilio: a line separator is a space
        ("½ ¼ ¾", "1/2 1/4 3/4"),
        ("ＡＢＣ ᴀʙᴄ", "ABC ABC"),  # fullwidth capitals; small capitals become the capitals they show
    ],
)
def test_lookalike_mapping(original: str, expected: str) -> None:
    assert replace_lookalikes(original)[0] == expected


def test_replace_lookalikes_keeps_characters_without_a_mapping() -> None:
    text, replaced = replace_lookalikes(f"“ok” {EMOJI} ж")
    assert text == f'"ok" {EMOJI} ж'
    assert replaced == 2
    assert analyze(text).encoding is Encoding.UCS2


def test_replace_lookalikes_on_gsm_text_changes_nothing() -> None:
    assert replace_lookalikes("Plain text, 100% GSM: €5!") == ("Plain text, 100% GSM: €5!", 0)


def test_every_lookalike_is_non_gsm_and_maps_to_gsm() -> None:
    for source, target in LOOKALIKES.items():
        assert not is_gsm7(source), source
        assert is_gsm7(target), source
