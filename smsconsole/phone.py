"""Phone numbers as support staff type them: parsed with `phonenumbers`, explained in plain words.

Pure: no database, no Textual. A number is `valid` when phonenumbers' metadata says it is a
real number of its region; every invalid result carries a `reason` fit to show beside the field.
`parse_number` is the one door for a number someone typed or imported: a letter in it is refused
(phonenumbers would read letters as keypad digits, sending +1415555abcd to +14155552223), and so
is an extension (`ext. 12`, `x12`, `#12`), which cannot receive SMS.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType, ValidationResult
from phonenumbers import phonenumberutil as _pn

NON_GEOGRAPHIC = "001"  # phonenumbers' region for +800, +808, +870, +881, ... numbers

NUMBER_TYPE_NAMES: dict[int, str] = {
    PhoneNumberType.FIXED_LINE: "fixed line",
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed line or mobile",
    PhoneNumberType.TOLL_FREE: "toll free",
    PhoneNumberType.PREMIUM_RATE: "premium rate",
    PhoneNumberType.SHARED_COST: "shared cost",
    PhoneNumberType.VOIP: "VoIP",
    PhoneNumberType.PERSONAL_NUMBER: "personal number",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.UAN: "UAN",
    PhoneNumberType.VOICEMAIL: "voicemail",
    PhoneNumberType.UNKNOWN: "unknown",
}

# A heuristic from the numbering plan, not a carrier lookup: these ranges are usually able to
# receive SMS. NANP (+1) numbers are all "fixed line or mobile", so they count; fixed-line,
# toll-free, premium, shared-cost, UAN and voicemail ranges do not. Ported numbers and
# SMS-enabled landlines are not detected.
SMS_CAPABLE_TYPES: frozenset[int] = frozenset(
    {
        PhoneNumberType.MOBILE,
        PhoneNumberType.FIXED_LINE_OR_MOBILE,
        PhoneNumberType.VOIP,
        PhoneNumberType.PERSONAL_NUMBER,
        PhoneNumberType.PAGER,
    }
)

# Regions phonenumbers supports but has no English name for.
_MISSING_REGION_NAMES = {"AC": "Ascension Island", "TA": "Tristan da Cunha", "XK": "Kosovo"}


@dataclass(frozen=True, slots=True)
class NumberInfo:
    """The outcome of parsing one typed number. When `valid`, `e164`, `country` and
    `number_type` are set (`region` is None only for non-geographic numbers such as +800);
    when not, `reason` says why in a sentence and the other fields are None or False;
    `has_letters` then says the text holds letters, i.e. it is no phone number as typed (a vanity
    number, a word, a letter typed for a digit), not merely an invalid one."""

    input: str
    valid: bool
    e164: str | None = None
    region: str | None = None
    country: str | None = None
    number_type: str | None = None
    reason: str | None = None
    sms_capable: bool = False
    has_letters: bool = False


def region_name(code: str) -> str:
    """The English name phonenumbers ships for a region code, or the code itself."""
    names = _locale_data().get(code, {})
    name = names.get("en", "")
    if name.startswith("*"):  # "*xx": the name is held under language xx
        name = names.get(name[1:], "")
    return name or _MISSING_REGION_NAMES.get(code, code)


def normalize_region(code: str | None) -> str | None:
    """An ISO 3166 alpha-2 code that phonenumbers knows, upper-cased; None when not one."""
    if not code:
        return None
    candidate = code.strip().upper()
    return candidate if candidate in phonenumbers.SUPPORTED_REGIONS else None


@functools.cache
def _locale_data() -> dict[str, dict[str, str]]:
    """phonenumbers' region names, loaded on first use. Its module is read on its own, as importing
    it through `phonenumbers.geodata` first loads that package's whole geocoding table (~0.6 s)."""
    import importlib.util
    import sys
    from pathlib import Path

    name = "phonenumbers.geodata.locale"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(phonenumbers.__file__).parent / "geodata" / "locale.py")
        if spec is not None and spec.loader is not None:
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module.LOCALE_DATA  # type: ignore[no-any-return]
    from phonenumbers.geodata.locale import LOCALE_DATA

    return LOCALE_DATA


def __getattr__(name: str) -> Any:
    """REGION_CHOICES: (code, country name) for a region picker, in alphabetical order of the
    name; built on first use, so importing this module does not load the region names."""
    if name == "REGION_CHOICES":
        choices = sorted(((code, region_name(code)) for code in phonenumbers.SUPPORTED_REGIONS),
                         key=lambda choice: (choice[1].casefold(), choice[0]))
        globals()["REGION_CHOICES"] = choices
        return choices
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_MISSING_COUNTRY_CODE = (
    "The number has no country code: enter it in international form, e.g. +44 7911 123456, "
    "or set a default region."
)


_EXTENSION_REASON = "An extension cannot receive SMS: remove it."
# A trailing extension as phonenumbers reads one ("ext. 12", "extension 12", "x12", "#12",
# ";ext=12"); found first so that its marker's letters are not taken for letters in the number.
_EXTENSION = re.compile(r"\s*(?:;\s*ext=|,?\s*(?:ext(?:ension|n)?\.?|x|#)\s*:?)\s*\d{1,7}#?$", re.IGNORECASE)
_EXTENSION_TAIL = 32
_SHOWN_LETTERS = 8


def parse_number(text: str, default_region: str | None) -> NumberInfo:
    """Parse a number typed in international form (+44..., 0044...) or, with a default region,
    in national form (07400 123456). Spaces, dashes, dots and parentheses are ignored; letters are
    refused, never read as keypad digits; an extension is refused."""
    stripped = text.strip()
    if not stripped:
        return NumberInfo(input=text, valid=False, reason="Enter a phone number.")
    tail = max(len(stripped) - _EXTENSION_TAIL, 0)  # the pattern backtracks: look at the end only
    extension = _EXTENSION.search(stripped, tail)
    if extension:
        stripped = stripped[: extension.start()]
    letters = list(dict.fromkeys(ch for ch in stripped if ch.isalpha()))
    if letters:
        return NumberInfo(input=text, valid=False, reason=_letters_reason(stripped, letters), has_letters=True)
    info = _parse_digits(text, stripped, normalize_region(default_region))
    if extension and info.valid:
        return NumberInfo(input=text, valid=False, reason=_EXTENSION_REASON)
    return info


def _letters_reason(text: str, letters: list[str]) -> str:
    if not any(ch.isdigit() for ch in text):
        return "This is not a phone number."
    shown = ", ".join(letters[:_SHOWN_LETTERS]) + (", …" if len(letters) > _SHOWN_LETTERS else "")
    which = f"a letter ({shown})" if len(letters) == 1 else f"letters ({shown})"
    return (f"The number contains {which}: a phone number has only digits, spaces, dashes, dots, "
            "parentheses and a leading +.")


def _parse_digits(text: str, stripped: str, region: str | None) -> NumberInfo:
    """`parse_number` for text with no letters (so phonenumbers has no keypad letters to map)."""
    parsed = _parse(stripped, region)
    # "00" is the international prefix almost everywhere; honour it when the default region
    # uses another one (US 011) or there is no default region at all.
    if stripped.startswith("00") and not _is_valid(parsed):
        alternative = _parse("+" + stripped[2:], None)
        if isinstance(parsed, NumberParseException) or _is_valid(alternative):
            parsed = alternative

    if isinstance(parsed, NumberParseException):
        reason = _parse_error_reason(parsed, stripped, region)
        return NumberInfo(input=text, valid=False, reason=reason)
    return _describe(text, parsed)


def _parse(text: str, region: str | None) -> phonenumbers.PhoneNumber | NumberParseException:
    try:
        return phonenumbers.parse(text, region)
    except NumberParseException as exc:
        return exc


def _is_valid(parsed: phonenumbers.PhoneNumber | NumberParseException) -> bool:
    return isinstance(parsed, phonenumbers.PhoneNumber) and phonenumbers.is_valid_number(parsed)


def _parse_error_reason(error: NumberParseException, text: str, region: str | None) -> str:
    match error.error_type:
        case NumberParseException.INVALID_COUNTRY_CODE:
            if not text.startswith(("+", "00")) and region is None:
                return _MISSING_COUNTRY_CODE
            return "The country code is not valid."
        case NumberParseException.TOO_SHORT_AFTER_IDD | NumberParseException.TOO_SHORT_NSN:
            return "The number is too short."
        case NumberParseException.TOO_LONG:
            return "The number is too long."
        case _:
            # NOT_A_NUMBER: phonenumbers wants at least three digits before it tries
            if any(ch.isdigit() for ch in text) and not any(ch.isalpha() for ch in text):
                return "The number is too short."
            return "This is not a phone number."


def _describe(text: str, number: phonenumbers.PhoneNumber) -> NumberInfo:
    if number.extension:
        return NumberInfo(input=text, valid=False, reason=_EXTENSION_REASON)
    if not phonenumbers.is_valid_number(number):
        return NumberInfo(input=text, valid=False, reason=_invalid_reason(number, text.strip()))

    region_code = phonenumbers.region_code_for_number(number)
    kind = phonenumbers.number_type(number)
    if region_code is None or region_code == NON_GEOGRAPHIC:
        region, country = None, "International (non-geographic)"
    else:
        region, country = region_code, region_name(region_code)
    return NumberInfo(
        input=text,
        valid=True,
        e164=phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
        region=region,
        country=country,
        number_type=NUMBER_TYPE_NAMES.get(kind, "unknown"),
        sms_capable=kind in SMS_CAPABLE_TYPES,
    )


def _invalid_reason(number: phonenumbers.PhoneNumber, typed: str) -> str:
    home = phonenumbers.region_code_for_country_code(number.country_code or 0)
    if home == phonenumbers.UNKNOWN_REGION:
        return "The country code is not valid."
    where = "non-geographic numbers" if home == NON_GEOGRAPHIC else region_name(home)
    match phonenumbers.is_possible_number_with_reason(number):
        case ValidationResult.INVALID_COUNTRY_CODE:
            return "The country code is not valid."
        case ValidationResult.TOO_SHORT:
            return f"The number is too short for {where}."
        case ValidationResult.TOO_LONG:
            return f"The number is too long for {where}."
        case ValidationResult.INVALID_LENGTH:
            return f"The number has the wrong number of digits for {where}."
        case ValidationResult.IS_POSSIBLE_LOCAL_ONLY if not typed.startswith(("+", "0")):
            return "This looks like a local number: include the area code."
        case ValidationResult.IS_POSSIBLE_LOCAL_ONLY:  # typed with a prefix, so just incomplete
            return f"The number is too short for {where}."
        case _:
            return f"This is not a valid number for {where}."


_PLAIN_E164 = re.compile(r"\+[1-9][0-9]{2,19}")  # ASCII digits only: phonenumbers' \d also takes other scripts'


def parse_e164(text: str, region: str | None) -> phonenumbers.PhoneNumber:
    """`phonenumbers.parse(text, region)`, the same PhoneNumber or the same NumberParseException,
    with its general steps skipped for text that is a plus and 3 to 20 ASCII digits, the first not
    0 (a number as an export writes it). For such text those steps change nothing: no RFC 3966
    context, nothing to trim before or after the number, no extension (every extension form needs a
    mark other than a digit), the digits normalize to themselves, and the plus means the region
    plays no part in finding the country code. The remaining steps are phonenumbers' own, in its
    order: the country code (1 to 3 digits), the national prefix stripped where the length allows,
    the leading zeros. Any other text, and any outcome but a number (an unknown country code, too
    short, too long), is parse's own answer."""
    if not _PLAIN_E164.fullmatch(text):
        return phonenumbers.parse(text, region)
    digits = text[1:]
    for size in (1, 2, 3):  # _extract_country_code: len(digits) >= 3
        country_code = int(digits[:size])
        if country_code in _pn.COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return phonenumbers.parse(text, region)  # parse tries again without the plus, or refuses
    national = digits[size:]
    if len(national) < _pn._MIN_LENGTH_FOR_NSN:
        return phonenumbers.parse(text, region)
    number_region = _pn.region_code_for_country_code(country_code)
    if number_region != region:
        metadata = _pn.PhoneMetadata.metadata_for_region_or_calling_code(country_code, number_region)
    else:
        metadata = _pn.PhoneMetadata.metadata_for_region(region.upper(), None)
    if metadata is None:  # parse asserts it is not
        return phonenumbers.parse(text, region)
    _, potential, _ = _pn._maybe_strip_national_prefix_carrier_code(national, metadata)
    if _pn._test_number_length(potential, metadata) not in (
            ValidationResult.TOO_SHORT, ValidationResult.IS_POSSIBLE_LOCAL_ONLY, ValidationResult.INVALID_LENGTH):
        national = potential
    if not _pn._MIN_LENGTH_FOR_NSN <= len(national) <= _pn._MAX_LENGTH_FOR_NSN:
        return phonenumbers.parse(text, region)
    number = phonenumbers.PhoneNumber()
    number.country_code = country_code
    _pn._set_italian_leading_zeros_for_phone_number(national, number)
    number.national_number = int(national)
    return number
