"""API keys for the ingestion API: shown once, stored as a hash, refused once revoked."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from smsconsole import clock
from smsconsole.models import ApiKey, AuditEntry
from smsconsole.runtime import Runtime
from smsconsole.services import api_keys as svc
from smsconsole.services.errors import NotFound, ValidationError

ACTOR = "test"


async def _create(rt: Runtime, name: str = "signup-service") -> tuple[svc.ApiKeyView, str]:
    async with rt.factory() as session, session.begin():
        return await svc.create_api_key(session, name, ACTOR)


async def _authenticate(rt: Runtime, key: str) -> svc.ApiKeyView | None:
    async with rt.factory() as session, session.begin():
        return await svc.authenticate(session, key)


async def test_a_key_is_shown_once_and_only_its_hash_is_stored(runtime: Runtime) -> None:
    view, key = await _create(runtime)
    assert re.fullmatch(r"smsc_[a-z0-9]{8}_[A-Za-z0-9]{40}", key)
    assert key.startswith(f"smsc_{view.prefix}_")
    assert (view.name, view.active, view.last_used_at, view.revoked_at) == ("signup-service", True, None, None)
    assert view.hint == f"smsc_{view.prefix}_…"
    secret = key.split("_", 2)[2]
    async with runtime.factory() as session:
        row = await session.scalar(select(ApiKey))
        audit = list(await session.scalars(select(AuditEntry)))
        listed = await svc.list_api_keys(session)
    assert row is not None and row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    stored = " ".join(str(getattr(row, c.key)) for c in ApiKey.__table__.columns)
    stored += " ".join(f"{a.target} {a.details}" for a in audit)
    assert secret not in stored and key not in stored
    assert [(a.action, a.target, a.details) for a in audit] == [("api_key.create", view.prefix, {"name": "signup-service"})]
    assert listed == [view]
    # Nothing returns the plaintext again.
    assert not any(key in repr(v) for v in listed)


async def test_authenticate_accepts_the_key_and_nothing_else(runtime: Runtime) -> None:
    view, key = await _create(runtime)
    other_view, other_key = await _create(runtime, "backfill")
    found = await _authenticate(runtime, key)
    assert found is not None and (found.id, found.name, found.prefix, found.active) == (view.id, view.name, view.prefix, True)
    wrong_secret = key[:-1] + ("A" if key[-1] != "A" else "B")
    unknown_prefix = "smsc_zzzzzzzz_" + key.split("_", 2)[2]
    swapped = f"smsc_{view.prefix}_{other_key.split('_', 2)[2]}"  # a real secret under another key's prefix
    for presented in (wrong_secret, unknown_prefix, swapped, "", "Bearer " + key, key + " ", key.upper(),
                      "smsc_short", view.prefix):
        assert await _authenticate(runtime, presented) is None, presented
    assert (await _authenticate(runtime, other_key)).prefix == other_view.prefix  # type: ignore[union-attr]


async def test_revoked_keys_are_refused_by_prefix_id_or_whole_key(runtime: Runtime) -> None:
    first, first_key = await _create(runtime, "one")
    second, second_key = await _create(runtime, "two")
    third, third_key = await _create(runtime, "three")
    async with runtime.factory() as session, session.begin():
        revoked = await svc.revoke_api_key(session, first.prefix, ACTOR)
        await svc.revoke_api_key(session, second.id, ACTOR)
        await svc.revoke_api_key(session, third_key, ACTOR)
        again = await svc.revoke_api_key(session, str(first.id), ACTOR)  # already revoked: no change
    assert revoked.revoked_at is not None and not revoked.active
    assert again.revoked_at == revoked.revoked_at
    for key in (first_key, second_key, third_key):
        assert await _authenticate(runtime, key) is None
    async with runtime.factory() as session:
        actions = list(await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
        active = await svc.list_api_keys(session, include_revoked=False)
    assert actions == ["api_key.create"] * 3 + ["api_key.revoke"] * 3
    assert active == []


async def test_revoking_an_unknown_key_is_not_found(runtime: Runtime) -> None:
    await _create(runtime)
    for unknown in ("zzzzzzzz", "smsc_zzzzzzzz_whatever", 999, "999"):
        async with runtime.factory() as session, session.begin():
            with pytest.raises(NotFound, match="no API key"):
                await svc.revoke_api_key(session, unknown, ACTOR)


async def test_last_used_at_is_written_at_most_once_a_minute(runtime: Runtime) -> None:
    start = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    clock.freeze(start)
    view, key = await _create(runtime)
    clock.freeze(start + timedelta(seconds=5))
    assert (await _authenticate(runtime, key)).last_used_at == start + timedelta(seconds=5)  # type: ignore[union-attr]
    clock.freeze(start + timedelta(seconds=50))
    assert (await _authenticate(runtime, key)).last_used_at == start + timedelta(seconds=5)  # type: ignore[union-attr]
    clock.freeze(start + timedelta(seconds=70))
    await _authenticate(runtime, key)
    async with runtime.factory() as session:
        [listed] = await svc.list_api_keys(session)
    assert listed.last_used_at == start + timedelta(seconds=70)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "is required"),
        ("   ", "is required"),
        ("x" * 65, "is longer than 64 characters"),
        ("signup-service", "an active key is already named 'signup-service'"),
    ],
)
async def test_bad_names_are_refused(runtime: Runtime, name: str, reason: str) -> None:
    await _create(runtime)
    with pytest.raises(ValidationError) as caught:
        await _create(runtime, name)
    assert (caught.value.for_field("name") or "").startswith(reason)
    async with runtime.factory() as session:
        assert len(await svc.list_api_keys(session)) == 1


async def test_a_revoked_keys_name_can_be_reused(runtime: Runtime) -> None:
    old, _ = await _create(runtime)
    async with runtime.factory() as session, session.begin():
        await svc.revoke_api_key(session, old.prefix, ACTOR)
    new, new_key = await _create(runtime)
    assert new.prefix != old.prefix
    assert await _authenticate(runtime, new_key) is not None
    async with runtime.factory() as session:
        listed = await svc.list_api_keys(session)
    assert [k.prefix for k in listed] == [new.prefix, old.prefix]  # active first
