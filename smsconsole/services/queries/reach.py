"""Reachability in SQL: the set-based twin of `services.profiles.unreachable_reason`, for reach
estimates and for building and re-checking campaign audiences."""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, case, literal

from smsconsole.models import Profile

# Reason codes in the order `unreachable_reason` checks them, with the words it uses.
UNREACHABLE_REASONS: tuple[tuple[str, str], ...] = (
    ("no_phone", "no phone"),
    ("invalid_phone", "invalid phone"),
    ("not_mobile_capable", "not mobile-capable"),
    ("unsubscribed", "unsubscribed"),
    ("never_opted_in", "never opted in"),
)


def _usable_phone() -> ColumnElement[bool]:
    return Profile.phone_status.not_in(["missing", "invalid"])


def reachable_condition() -> ColumnElement[bool]:
    """True for a profile SMS can reach now."""
    return and_(_usable_phone(), Profile.sms_capable, Profile.subscription == "subscribed")


def unreachable_conditions() -> dict[str, ColumnElement[bool]]:
    """One condition per reason code; together with `reachable_condition` they split profiles
    into disjoint sets, each person under the first reason `unreachable_reason` gives."""
    usable = _usable_phone()
    return {
        "no_phone": Profile.phone_status == "missing",
        "invalid_phone": Profile.phone_status == "invalid",
        "not_mobile_capable": and_(usable, ~Profile.sms_capable),
        "unsubscribed": and_(usable, Profile.sms_capable, Profile.subscription == "unsubscribed"),
        "never_opted_in": and_(usable, Profile.sms_capable, Profile.subscription.not_in(["subscribed", "unsubscribed"])),
    }


def unreachable_reason_code() -> ColumnElement[str | None]:
    """The reason code as one column (NULL when reachable), e.g. to store why a message was
    suppressed. Codes are rendered inline so the CASE can also sit in a GROUP BY."""
    return case(*[(condition, literal(code, literal_execute=True))
                  for code, condition in unreachable_conditions().items()], else_=None)
