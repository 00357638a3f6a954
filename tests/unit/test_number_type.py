"""`profiles.preparing._number_type` answers what phonenumbers' `_number_type_helper` answers, for
every region's metadata (and every non-geographic code's): its example numbers of every type, those
numbers cut short, made longer and with digits changed, and random digits of every length."""

from __future__ import annotations

import random

import phonenumbers
from phonenumbers import PhoneNumberType
from phonenumbers import phonenumberutil as pn_util

from smsconsole.services.profiles.preparing import _number_type

TYPES = tuple(value for name, value in vars(PhoneNumberType).items() if name.isupper() and name != "UNKNOWN")


def _metadata() -> list[object]:
    found = [pn_util.PhoneMetadata.metadata_for_region(region, None) for region in sorted(phonenumbers.SUPPORTED_REGIONS)]
    found += [pn_util.PhoneMetadata.metadata_for_nongeo_region(code, None)
              for code in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS)]
    return [metadata for metadata in found if metadata is not None]


def _numbers(metadata: object, rng: random.Random) -> list[str]:
    numbers = []
    for kind in TYPES:
        desc = pn_util._number_desc_by_type(metadata, kind)
        example = getattr(desc, "example_number", None)
        if example:
            numbers += [example, example[:-1], example[:-2], example + "0", example + "99", example[1:],
                        "".join(d if rng.random() < 0.8 else rng.choice("0123456789") for d in example)]
    numbers += ["".join(rng.choice("0123456789") for _ in range(length)) for length in range(1, 18) for _ in range(3)]
    return numbers


def test_number_type_answers_as_phonenumbers() -> None:
    rng = random.Random(1717)
    checked, differing, kinds = 0, [], set()
    for metadata in _metadata():
        for national in _numbers(metadata, rng):
            checked += 1
            expected = pn_util._number_type_helper(national, metadata)
            kinds.add(expected)
            if _number_type(national, metadata) != expected:
                differing.append((metadata.id, national))
    assert differing == []
    assert checked > 20_000 and len(kinds) >= 10  # every type met, UNKNOWN included
