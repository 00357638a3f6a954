"""Phone numbers as support staff type them: what is accepted, and what is said when not."""

from __future__ import annotations

import pytest

from smsconsole.phone import REGION_CHOICES, NumberInfo, normalize_region, parse_number

# typed, default region -> e164, region, country, number type, sms capable
VALID_CASES = [
    ("GB mobile", "+447400123456", None, "+447400123456", "GB", "United Kingdom", "mobile", True),
    ("US (NANP cannot tell)", "+1 202 555 0123", None, "+12025550123", "US", "United States",
     "fixed line or mobile", True),
    ("IN mobile", "+91 98765 43210", None, "+919876543210", "IN", "India", "mobile", True),
    ("DE mobile", "+49 151 23456789", None, "+4915123456789", "DE", "Germany", "mobile", True),
    ("BR mobile", "+55 11 98765-4321", None, "+5511987654321", "BR", "Brazil", "mobile", True),
    ("GB national form", "07400 123456", "GB", "+447400123456", "GB", "United Kingdom",
     "mobile", True),
    ("region is case-insensitive", "07400 123456", "gb", "+447400123456", "GB",
     "United Kingdom", "mobile", True),
    ("US national form", "(202) 555-0123", "US", "+12025550123", "US", "United States",
     "fixed line or mobile", True),
    ("IN national form", "098765 43210", "IN", "+919876543210", "IN", "India", "mobile", True),
    ("00 prefix, no region", "0044 7400 123456", None, "+447400123456", "GB",
     "United Kingdom", "mobile", True),
    ("00 prefix where IDD is 011", "0044 7400 123456", "US", "+447400123456", "GB",
     "United Kingdom", "mobile", True),
    ("punctuation and spaces", "  +44 (0)7400-123.456 ", None, "+447400123456", "GB",
     "United Kingdom", "mobile", True),
    ("E.164 ignores the default region", "+4915123456789", "GB", "+4915123456789", "DE",
     "Germany", "mobile", True),
    ("GB landline", "+44 20 7946 0000", None, "+442079460000", "GB", "United Kingdom",
     "fixed line", False),
    ("toll free", "1-800-555-0199", "US", "+18005550199", "US", "United States", "toll free",
     False),
    ("shared calling code resolves to the territory", "+447911123456", None, "+447911123456",
     "GG", "Guernsey", "mobile", True),
    ("non-geographic", "+800 1234 5678", None, "+80012345678", None,
     "International (non-geographic)", "toll free", False),
]


@pytest.mark.parametrize(
    ("typed", "region", "e164", "number_region", "country", "number_type", "sms_capable"),
    [case[1:] for case in VALID_CASES],
    ids=[case[0] for case in VALID_CASES],
)
def test_valid_numbers(
    typed: str,
    region: str | None,
    e164: str,
    number_region: str | None,
    country: str,
    number_type: str,
    sms_capable: bool,
) -> None:
    assert parse_number(typed, region) == NumberInfo(
        input=typed,
        valid=True,
        e164=e164,
        region=number_region,
        country=country,
        number_type=number_type,
        reason=None,
        sms_capable=sms_capable,
    )


# typed, default region -> reason
INVALID_CASES = [
    ("empty", "", "GB", "Enter a phone number."),
    ("blank", "   ", None, "Enter a phone number."),
    ("national form without a region", "07400 123456", None,
     "The number has no country code: enter it in international form, e.g. +44 7911 123456, "
     "or set a default region."),
    ("unknown default region", "07400 123456", "XX",
     "The number has no country code: enter it in international form, e.g. +44 7911 123456, "
     "or set a default region."),
    ("invalid country code", "+999 123456", None, "The country code is not valid."),
    ("invalid country code after 00", "00999 123456", None, "The country code is not valid."),
    ("too short", "+44 12", None, "The number is too short for United Kingdom."),
    ("too short, too few digits to parse", "+1", None, "The number is too short."),
    ("too short, national", "07400", "GB", "The number is too short for United Kingdom."),
    ("too long", "+44 7400 1234567890", None, "The number is too long for United Kingdom."),
    ("far too long", "+44 7400 1234567890 1234567", None, "The number is too long."),
    # Hong Kong numbers have 5-9 or 11 digits, never 10
    ("wrong length", "+852 9123 456789", None,
     "The number has the wrong number of digits for Hong Kong."),
    ("prefixed but incomplete", "+44 7400 1234", None,
     "The number is too short for United Kingdom."),
    ("local number", "555 0123", "US", "This looks like a local number: include the area code."),
    ("not a number of its region", "+1 012 555 0123", None,
     "This is not a valid number for United States."),
    ("extension", "07400 123456 ext. 12", "GB", "An extension cannot receive SMS: remove it."),
]


@pytest.mark.parametrize(
    ("typed", "region", "reason"),
    [case[1:] for case in INVALID_CASES],
    ids=[case[0] for case in INVALID_CASES],
)
def test_invalid_numbers_say_why(typed: str, region: str | None, reason: str) -> None:
    assert parse_number(typed, region) == NumberInfo(input=typed, valid=False, reason=reason)


LETTERS = ": a phone number has only digits, spaces, dashes, dots, parentheses and a leading +."

# typed, default region -> reason. A letter is never read as a keypad digit (phonenumbers would
# turn +1415555abcd into +14155552223 and 1-800-FLOWERS into +18003569377): a vanity number, a
# letter typed for a digit or a word in the cell is refused, saying which letters.
LETTER_CASES = [
    ("keypad letters at the end", "+1415555abcd", "US", "The number contains letters (a, b, c, d)" + LETTERS),
    ("vanity number", "1-800-FLOWERS", "US", "The number contains letters (F, L, O, W, E, R, S)" + LETTERS),
    ("vanity number, international", "+1 800 FLOWERS", None,
     "The number contains letters (F, L, O, W, E, R, S)" + LETTERS),
    ("one letter, fewer than phonenumbers maps", "+1415555012a", "US", "The number contains a letter (a)" + LETTERS),
    ("a capital I typed for a 1", "+44 7400 I23456", None, "The number contains a letter (I)" + LETTERS),
    ("O typed for 0", "O7400 123456", "GB", "The number contains a letter (O)" + LETTERS),
    ("a Cyrillic letter that looks like a 3", "+1 415 555 012З", None,
     "The number contains a letter (З)" + LETTERS),
    ("a tel: prefix", "tel:+14155550123", None, "The number contains letters (t, e, l)" + LETTERS),
    ("words before the number", "mobile +447400123456", None,
     "The number contains letters (m, o, b, i, l, e)" + LETTERS),
    ("words after the number", "+14155550123 call me", None,
     "The number contains letters (c, a, l, m, e)" + LETTERS),
    ("many letters, the first eight named", "+1 800 ABCDEFGHIJ", "US",
     "The number contains letters (A, B, C, D, E, F, G, H, …)" + LETTERS),
    ("letters and an extension", "+1415555abcd x12", "US", "The number contains letters (a, b, c, d)" + LETTERS),
    ("letters only", "hello", "GB", "This is not a phone number."),
]


@pytest.mark.parametrize(
    ("typed", "region", "reason"),
    [case[1:] for case in LETTER_CASES],
    ids=[case[0] for case in LETTER_CASES],
)
def test_letters_are_never_read_as_digits(typed: str, region: str | None, reason: str) -> None:
    assert parse_number(typed, region) == NumberInfo(input=typed, valid=False, reason=reason, has_letters=True)


# Extensions are recognised (so the reason says what to do) and refused: an extension cannot
# receive SMS. Their marker's letters are not "letters in the number".
EXTENSION_CASES = [
    ("ext.", "07400 123456 ext. 12", "GB"),
    ("extension", "+44 7400 123456 extension 12", None),
    ("x", "+1 415 555 0123 x12", None),
    ("X with a space", "+1 415 555 0123 X 12", None),
    ("#", "+1 415 555 0123 #12", None),
    ("RFC 3966 ;ext=", "+14155550123;ext=12", None),
    ("a comma", "+1 415 555 0123, 12", None),
]


@pytest.mark.parametrize(
    ("typed", "region"), [case[1:] for case in EXTENSION_CASES], ids=[case[0] for case in EXTENSION_CASES],
)
def test_an_extension_is_refused_as_such(typed: str, region: str | None) -> None:
    assert parse_number(typed, region) == NumberInfo(
        input=typed, valid=False, reason="An extension cannot receive SMS: remove it.")


def test_an_extension_on_a_bad_number_says_what_is_wrong_with_the_number() -> None:
    assert parse_number("+44 7400 1234 ext. 5", None).reason == "The number is too short for United Kingdom."


def test_full_width_digits_are_digits_not_letters() -> None:
    assert parse_number("+1 415 555 ０１２３", None).e164 == "+14155550123"


@pytest.mark.parametrize(
    ("code", "expected"),
    [("GB", "GB"), ("gb", "GB"), (" us ", "US"), ("In", "IN"), ("XX", None), ("UK", None),
     ("GBR", None), ("", None), (None, None), ("001", None)],
)
def test_normalize_region(code: str | None, expected: str | None) -> None:
    assert normalize_region(code) == expected


def test_region_choices_are_named_and_sorted_by_name() -> None:
    choices = dict(REGION_CHOICES)
    assert choices["GB"] == "United Kingdom"
    assert choices["US"] == "United States"
    assert choices["XK"] == "Kosovo"  # phonenumbers ships no English name for it
    assert all(name and name != code for code, name in REGION_CHOICES)
    names = [name.casefold() for _, name in REGION_CHOICES]
    assert names == sorted(names)
    assert all(normalize_region(code) == code for code, _ in REGION_CHOICES)
