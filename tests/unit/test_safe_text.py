"""safe_text and stored_id: what a provider's text and ids become before they are stored."""

from smsconsole.services.receipts import ID_MAX, safe_text, stored_id


def test_plain_ascii_comes_back_unchanged_and_unsafe_characters_are_mended() -> None:
    assert safe_text("SM1234abc") == "SM1234abc"
    assert safe_text("STOP\x00") == "STOP"  # NUL dropped, ASCII or not
    assert safe_text("é\x00x") == "éx"
    assert safe_text("a\ud800b") == "a\ufffdb"  # a lone surrogate cannot be UTF-8
    assert safe_text("ünïcødé 🙂") == "ünïcødé 🙂"


def test_a_long_id_keeps_its_head_and_a_hash_of_the_whole() -> None:
    long = "x" * (ID_MAX + 10)
    assert stored_id(long) != stored_id(long + "y") and len(stored_id(long) or "") == ID_MAX
    assert stored_id("abc\x00") == "abc" and stored_id(None) is None
