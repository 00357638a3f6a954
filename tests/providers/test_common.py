"""The readers every adapter shares (providers/common.py) and the ErrorRule table type."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest

from smsconsole.providers.base import ErrorKind, ErrorRule, ErrorRules, PermanentError, TransientError
from smsconsole.providers.common import RFC2822, digits, parse_smpp_time, parse_timestamp, sender_validator

IST = timezone(timedelta(hours=5, minutes=30))
MOMENT = datetime(2026, 11, 23, 10, 15, 2, tzinfo=UTC)


@pytest.mark.parametrize(("number", "expected"), [
    ("+44 7400-123456", "447400123456"), ("447400123456", "447400123456"), ("", ""), (None, ""),
])
def test_digits_keeps_the_digits_alone(number: str | None, expected: str) -> None:
    assert digits(number) == expected


@pytest.mark.parametrize(("value", "fmt", "zone", "expected"), [
    ("2026-11-23T10:15:02Z", None, UTC, MOMENT),
    ("2026-11-23T10:15:02.000+0000", None, UTC, MOMENT),
    ("2026-11-23T15:45:02+05:30", None, UTC, MOMENT),
    (" 2026-11-23 10:15:02 ", None, UTC, MOMENT),  # no zone: `zone`
    ("2026-11-23 15:45:02", "%Y-%m-%d %H:%M:%S", IST, MOMENT),
    ("Mon, 23 Nov 2026 10:15:02 +0000", RFC2822, UTC, MOMENT),
    ("not a time", None, UTC, None),
    ("2026-11-23", "%Y-%m-%d %H:%M:%S", UTC, None),
    ("", None, UTC, None),
    (None, None, UTC, None),
    (1700000000, None, UTC, None),
], ids=["z", "basic-offset", "offset", "naive", "strptime-ist", "rfc2822", "garbage", "short", "empty", "none",
        "number"])
def test_parse_timestamp_reads_every_form_as_utc(value: object, fmt: str | None, zone: timezone,
                                                 expected: datetime | None) -> None:
    parsed = parse_timestamp(value, fmt, zone=zone)
    assert parsed == expected
    assert parsed is None or parsed.tzinfo is UTC


@pytest.mark.parametrize(("value", "expected"), [
    ("2611231015", datetime(2026, 11, 23, 10, 15, tzinfo=UTC)), ("261123101", None), ("26112310150", None),
    ("2613231015", None), (None, None),
])
def test_smpp_done_dates_need_ten_digits(value: str | None, expected: datetime | None) -> None:
    assert parse_smpp_time(value) == expected


def test_sender_validator_takes_numbers_and_alphanumeric_ids_but_no_mistyped_number() -> None:
    check = sender_validator("a sender", r"\+[1-9]\d{6,14}", alphanumeric=r"[A-Za-z0-9 ]{1,11}", numeric=r"[0-9 ]+")
    assert check("+447400123456") is None and check("Acme 1") is None
    assert check("0740 0123") == "must be a sender"  # only digits: a number typed wrong
    assert check("TOO LONG NAME") == "must be a sender"


RULES = ErrorRules(
    ErrorRule("21211", ErrorKind.PERMANENT, "the recipient number is not valid"),
    ErrorRule("2", ErrorKind.TRANSIENT, "absent subscriber", on="report"),
    ErrorRule(r"too many|throttl", ErrorKind.TRANSIENT, "", on="words"),
)


def test_error_rules_are_found_by_code_and_code_space() -> None:
    assert RULES.find(21211) is RULES.find("21211") is not None
    assert RULES.find("2") is None and RULES.find("2", "report").kind is ErrorKind.TRANSIENT
    assert RULES.find(None) is None and RULES.find("") is None
    assert RULES.search("Too Many requests") is not None and RULES.search("bad number") is None
    assert RULES.codes() == {"21211"} and RULES.codes("report") == {"2"} and len(RULES) == 3


def test_an_error_rule_builds_the_classified_error() -> None:
    rule = RULES.find("21211")
    error = rule.error("Invalid 'To'", said="Twilio", code="21211", http_status=400)
    assert isinstance(error, PermanentError) and str(error) == "[21211] the recipient number is not valid (Twilio: Invalid 'To')"
    assert rule.error().message == "the recipient number is not valid"
    busy = RULES.search("throttled")
    answer = httpx.Response(429, headers={"Retry-After": "7"})
    error = busy.error("throttled", said="Netcore", http_status=429, response=answer)
    assert isinstance(error, TransientError) and error.message == "Netcore: throttled" and error.retry_after == 7.0
