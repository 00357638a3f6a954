"""`parse_phone` answers what `parse_number` and `phone_timezone` answer, asking phonenumbers once:
the same NumberInfo and the same zone, for every region's example numbers in every format, random
digits after every country code, and the shapes people type (national, 00, letters, extensions)."""

from __future__ import annotations

import random

import phonenumbers
import pytest
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from smsconsole.phone import parse_number
from smsconsole.services.profiles.preparing import parse_phone, phone_timezone

TYPES = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE, PhoneNumberType.TOLL_FREE, PhoneNumberType.VOIP,
         PhoneNumberType.PAGER)
TYPED = ["07400 123456", "+44 (0)7400 123456", "0044 7400 123456", "+1 212 555 0100", "+1-212-200-0001",
         "(212) 200 0001", "+44 7400 123456 ext 12", "+447400123456#3", "abc", "+4474OO123456", "", "  ",
         "+800 1234 5678", "+882 3456 7890", "+39 06 1234 5678", "+54 9 11 1234 5678", "447400123456",
         "+44 7400 123 45", "+447400123456789012", "12", "+0 123"]


def _cases() -> list[tuple[str, str | None]]:
    rng = random.Random(17)
    cases: list[tuple[str, str | None]] = [(text, region) for text in TYPED for region in (None, "GB", "US", "IT", "AR")]
    for country_code, regions in sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items()):
        for region in regions:
            for kind in TYPES:
                example = phonenumbers.example_number_for_type(region, kind)
                if example:
                    for form in (PhoneNumberFormat.E164, PhoneNumberFormat.INTERNATIONAL):
                        cases.append((phonenumbers.format_number(example, form), None))
                    cases.append((phonenumbers.format_number(example, PhoneNumberFormat.NATIONAL), region))
        for _ in range(25):
            digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(4, 12)))
            cases.append((f"+{country_code}{digits}", "GB"))
    return cases


def _old(text: str, region: str | None) -> tuple[object, str | None]:
    info = parse_number(text, region)
    return info, (phone_timezone(info.e164) if info.valid and info.e164 else None)


@pytest.mark.parametrize("chunk", range(4))
def test_parse_phone_answers_as_parse_number_and_phone_timezone(chunk: int) -> None:
    cases = _cases()[chunk::4]
    differing = [(text, region) for text, region in cases if parse_phone(text, region) != _old(text, region)]
    assert differing == []
    assert len(cases) > 1000


def test_a_valid_number_has_its_zone_and_type() -> None:
    info, zone = parse_phone("+1 212 200 0001", None)
    assert (info.valid, info.e164, info.region, zone) == (True, "+12122000001", "US", "America/New_York")
    info, zone = parse_phone("07400 123456", "GB")
    assert (info.e164, info.number_type, info.sms_capable, zone) == ("+447400123456", "mobile", True, "Europe/London")
