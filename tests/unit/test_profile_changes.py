"""`_Change.changes` (a stored row against what a batch says of the person, compared as tuples)
answers as the value-by-value rule it replaced, over random rows mixing types that are equal but
not the same (1, 1.0, True, "1"), missing and extra properties, absent time zones and subscription
moves."""

from __future__ import annotations

import random
from collections import namedtuple
from datetime import UTC, datetime, timedelta
from typing import Any

from smsconsole.services.profiles.writing import _FOUND_COLUMNS, _Change, _same

Stored = namedtuple("Stored", _FOUND_COLUMNS)  # type: ignore[misc]  # by name and by index, as a Row
VALUES = [None, "", "a", "1", 1, 1.0, 0, True, False, 2.5, ["x"], ["x", "y"], "Europe/London"]
COLUMNS = ("phone", "phone_raw", "phone_status", "phone_reason", "phone_type", "sms_capable", "name",
           "timezone", "country")
MOMENT = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)


def _reference(change: _Change, row: Any) -> bool:
    stored = row.properties or {}
    return (any(not _same(getattr(row, column), value) for column, value in change.columns.items())
            or ("timezone" not in change.columns and row.timezone is None)
            or any(name not in stored or not _same(stored[name], value) for name, value in change.properties.items())
            or (change.subscription is not None
                and (row.subscription_at is None or change.subscription[1] > row.subscription_at)))


def _pair(rng: random.Random) -> tuple[_Change, Any]:
    names = ["plan", "score", "vip", "tags"]
    stored_columns = {column: rng.choice(VALUES) for column in COLUMNS}
    stored_properties = {name: rng.choice(VALUES) for name in names if rng.random() < 0.7}
    row = Stored(id=1, user_id="u1", properties=rng.choice([None, stored_properties]),
                 subscription_at=rng.choice([None, MOMENT]), **stored_columns)
    change = _Change(("user_id", "u1"), "u1")
    for column in rng.sample(COLUMNS, rng.randint(0, len(COLUMNS))):
        change.columns[column] = stored_columns[column] if rng.random() < 0.9 else rng.choice(VALUES)
    for name in names:
        if rng.random() < 0.6:
            same = name in stored_properties and rng.random() < 0.9
            change.properties[name] = stored_properties[name] if same else rng.choice(VALUES[1:])
    if rng.random() < 0.3:
        change.subscription = ("subscribed", MOMENT + timedelta(seconds=rng.choice([-1, 0, 1])))
    return change, row


def test_changes_answers_as_the_value_by_value_rule() -> None:
    rng = random.Random(17)
    pairs = [_pair(rng) for _ in range(20_000)]
    answers = [(change.changes(row), _reference(change, row)) for change, row in pairs]
    assert [i for i, (new, old) in enumerate(answers) if new != old] == []
    changed = sum(new for new, _ in answers)
    assert changed > 1000 and len(answers) - changed > 500  # both answers are common


def test_equal_values_of_another_type_are_a_change() -> None:
    row = Stored(1, "u1", "+447400123456", "+447400123456", "valid", None, "mobile", True, "Ann", "Europe/London",
                 "GB", {"score": 1, "vip": True}, None)
    change = _Change(("user_id", "u1"), "u1", columns={"sms_capable": True, "name": "Ann"},
                     properties={"score": 1, "vip": True})
    assert not change.changes(row)
    for properties in ({"score": 1.0}, {"score": True}, {"vip": 1}, {"other": 1}):
        assert _Change(("user_id", "u1"), "u1", properties=properties).changes(row)
    assert _Change(("user_id", "u1"), "u1", columns={"sms_capable": 1}).changes(row)
