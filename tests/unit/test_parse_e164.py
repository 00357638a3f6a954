"""`phone.parse_e164` answers what `phonenumbers.parse` answers — the same PhoneNumber, field for
field, or the same NumberParseException — for every country's example numbers of every type, those
numbers cut short, made longer and with a national prefix or zeros after the country code, random
digits after every country code, unknown country codes, and text off its plain path, with several
default regions (none, the number's own, another)."""

from __future__ import annotations

import random

import phonenumbers
import pytest
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

from smsconsole.phone import parse_e164

REGIONS = (None, "GB", "US", "IT", "AR", "MX", "DE", "IN", "BR", "ZZ")
TYPES = tuple(value for name, value in vars(PhoneNumberType).items() if name.isupper() and name != "UNKNOWN")
ODD = ["+1", "+12", "+123", "+1234", "+0123456789", "+00447400123456", "+" + "1" * 21, "+" + "4" * 20,
       "+44 7400 123456", " +447400123456", "+447400123456 ", "+٤٤٧٤٠٠١٢٣٤٥٦", "+４４７４００１２３４５６", "447400123456",
       "+447400123456x12", "+447400123456#", "++447400123456", "+44-7400-123456", "+999123456789", "+800", "+80012",
       "+8001234", "+80012345678", "+3906123456", "+39061234567", "+390", "+3900", "+39000000", "+2250123456789",
       "+4400", "+44000", "+440000000000", "+4407400123456", "+1011", "+10000000000", "+11234567890", "+5491112345678",
       "+525512345678", "+5215512345678", "+61400123456", "+610400123456", "+7", "+79", "+79123", "+791234567890123"]


def _outcome(text: str, region: str | None, parse: object) -> tuple[object, ...]:
    try:
        number = parse(text, region)  # type: ignore[operator]
    except NumberParseException as exc:
        return ("refused", exc.error_type, str(exc))
    return ("number", type(number), number.country_code, number.national_number, number.extension,
            number.italian_leading_zero, number.number_of_leading_zeros, number.raw_input,
            number.country_code_source, number.preferred_domestic_carrier_code)


def _texts() -> list[str]:
    rng = random.Random(1717)
    texts = list(ODD)
    for country_code, regions in sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items()):
        for region in regions:
            for kind in TYPES:
                example = phonenumbers.example_number_for_type(region, kind)
                if example is None:
                    continue
                e164 = phonenumbers.format_number(example, PhoneNumberFormat.E164)
                national = e164[1 + len(str(country_code)):]
                texts += [e164, e164[:-1], e164[:-3], e164 + "0", e164 + "12", f"+{country_code}0{national}",
                          f"+{country_code}00{national}", f"+{country_code}{national[:2]}"]
                texts.append(f"+{country_code}" + "".join(d if rng.random() < 0.7 else rng.choice("0123456789")
                                                          for d in national))
        for length in range(19):
            texts.append(f"+{country_code}" + "".join(rng.choice("0123456789") for _ in range(length)))
        texts.append(f"+{country_code}" + "0" * rng.randint(1, 12) + "".join(rng.choice("0123456789")
                                                                             for _ in range(rng.randint(1, 8))))
    for _ in range(3000):  # any digits: unknown country codes among them
        texts.append("+" + "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 22))))
    return list(dict.fromkeys(texts))


def _own_region(text: str) -> str | None:
    try:
        return phonenumbers.region_code_for_country_code(phonenumbers.parse(text, None).country_code)
    except NumberParseException:
        return None


@pytest.mark.parametrize("chunk", range(4))
def test_parse_e164_answers_as_phonenumbers_parse(chunk: int) -> None:
    texts = _texts()[chunk::4]
    checked = 0
    differing = []
    for text in texts:
        for region in (*REGIONS, _own_region(text)):
            checked += 1
            if _outcome(text, region, parse_e164) != _outcome(text, region, phonenumbers.parse):
                differing.append((text, region))
    assert differing == []
    assert checked > 20_000


def test_the_plain_path_is_taken_and_the_rest_falls_through() -> None:
    assert parse_e164("+447400123456", "GB") == phonenumbers.parse("+447400123456", "GB")
    assert parse_e164("+3906123456", None).italian_leading_zero is True
    with pytest.raises(NumberParseException) as refused:
        parse_e164("+999123456789", "GB")
    assert refused.value.error_type == NumberParseException.INVALID_COUNTRY_CODE
    with pytest.raises(NumberParseException) as refused:
        parse_e164("+12", None)
    assert refused.value.error_type == NumberParseException.NOT_A_NUMBER
