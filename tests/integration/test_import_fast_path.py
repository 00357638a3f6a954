"""A large profile import prepares its rows in a process pool and writes them on the databases'
bulk paths; a small one prepares them in-process. Both paths give the same outcome, row for row:
the same summary, the same bad rows with their lines and reasons, the same stored profiles,
consents and property types — also when a batch met a property or a JSON key that an earlier
batch, prepared at the same time, taught the run first (that batch is prepared again in order)."""

from __future__ import annotations

import gc
import json
import logging
import multiprocessing
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select

from smsconsole.models import Consent, Profile, PropertyDef
from smsconsole.runtime import Runtime
from smsconsole.services import imports as I
from smsconsole.services import profiles as P
from smsconsole.services.imports.parallel import IMPORT_GC_THRESHOLD

GB = P.AudienceDefaults(region="GB", timezone="UTC")
ZONES = ("Europe/London", "", "America/New_York", "Mars/Olympus", "")
PHONES = ("+447400{:06d}", "07400 {:06d}", "+1 212 2{:06d}", "+4474OO{:06d}", "+44 7400 {:06d} ext 2", "12{:04d}", "")


def _csv_file(path: Path, rows: int) -> Path:
    """Good rows and every kind of bad one, repeated people (merged in a batch, updated across
    batches), national and international numbers, opt-ins, typed properties."""
    lines = ["user_id,phone,name,timezone,optin_at,plan,score,vip,extra"]
    for i in range(rows):
        user = f"u{(i - 1 if i % 17 == 5 else i) % (rows - rows // 10)}" if i % 13 else ""  # repeats: the
        # row before (merged in its batch) and the last tenth (an earlier batch's people)
        phone = PHONES[i % len(PHONES)].format(i % 1_000_000)
        optin = f"2026-01-{1 + i % 28:02d}T10:{i % 60:02d}:00Z" if i % 3 else ("yesterday" if i % 97 == 0 else "")
        score = str(i % 1000) if i % 89 != 50 else "n/a"
        extra = json.dumps({"visits": i % 5}) if i % 11 == 0 else ""
        if i % 211 == 0:
            lines.append(f"{user},{phone},Short")
            continue
        lines.append(f"{user},{phone},Name {i},{ZONES[i % len(ZONES)]},{optin},p{i % 4},{score},"
                     f"{'yes' if i % 7 == 0 else 'no'},\"{extra.replace(chr(34), chr(34) * 2)}\"")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _jsonl_file(path: Path, rows: int) -> Path:
    """Properties and keys the sample never shows, first met far into the file with values of
    different types in different batches: what is learned first decides."""
    out = []
    for i in range(rows):
        row: dict[str, Any] = {"user_id": f"j{i % 700}", "phone": f"+447400{i:06d}"}
        if i >= 300:
            row["late"] = i if i % 2 == 0 else f"text {i}"  # a number first: the text after it is bad
        if i >= 450:
            row["Mobile Phone"] = f"+1212{2_000_000 + i:07d}"  # a key mapped only when met
        out.append(json.dumps(row))
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


async def _stored(rt: Runtime) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    async with rt.factory() as session:
        profiles = (await session.execute(select(
            Profile.user_id, Profile.phone, Profile.phone_raw, Profile.phone_status, Profile.phone_reason,
            Profile.phone_type, Profile.sms_capable, Profile.name, Profile.timezone, Profile.country,
            Profile.properties, Profile.subscription, Profile.subscription_at))).all()
        consents = (await session.execute(select(Profile.user_id, Profile.phone, Consent.state, Consent.source,
                                                 Consent.at, Consent.phone).join(Profile))).all()
        types = (await session.execute(select(PropertyDef.scope, PropertyDef.name, PropertyDef.type))).all()
    key = repr
    return sorted(map(tuple, profiles), key=key), sorted(map(tuple, consents), key=key), sorted(map(tuple, types))


async def _wipe(rt: Runtime) -> None:
    async with rt.factory() as session, session.begin():
        await session.execute(delete(Consent))
        await session.execute(delete(Profile))
        await session.execute(delete(PropertyDef))


def _comparable(summary: I.ImportSummary) -> tuple[Any, ...]:
    return (summary.rows_read, summary.good_rows, summary.bad_rows, summary.created, summary.updated,
            summary.unchanged, summary.duplicates, summary.problem_count, summary.problems,
            summary.unreachable_rows, summary.unreachable)


async def _both_ways(runtime: Runtime, path: Path, **options: Any) -> tuple[Any, Any]:
    outcomes = []
    for parallel in (False, True):
        await _wipe(runtime)
        first = await I.run_import(runtime.factory, path, "profiles", actor="tester", defaults=GB,
                                   parallel=parallel, **options)
        again = await I.run_import(runtime.factory, path, "profiles", actor="tester", defaults=GB,
                                   parallel=parallel, **options)
        errors = first.error_file.read_bytes() if first.error_file else b""
        outcomes.append((_comparable(first), _comparable(again), errors, await _stored(runtime)))
        assert not multiprocessing.active_children()  # the pool is shut down when the import ends
    return outcomes[0], outcomes[1]


async def test_the_pool_and_the_single_process_import_the_same(runtime: Runtime, tmp_path: Path) -> None:
    path = _csv_file(tmp_path / "people.csv", 3000)
    in_process, pooled = await _both_ways(runtime, path, batch_size=250, mapping={"extra": "properties"})
    assert pooled == in_process
    summary, again, errors, (profiles, consents, types) = pooled
    assert summary[2] > 100 and summary[3] > 1500 and summary[4] > 0 and summary[6] > 0  # bad, created, updated, merged
    assert again[3] == 0  # nobody new the second time (people repeated with other values are updated again)
    assert b"error_row" in errors and b"Mars/Olympus" in errors
    assert ("profile", "visits", "number") in types and len(consents) > 1000


async def test_types_and_keys_learned_by_earlier_batches_in_flight(runtime: Runtime, tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    path = _jsonl_file(tmp_path / "late.jsonl", 1200)
    with caplog.at_level(logging.INFO, logger="smsconsole.services.imports"):
        in_process, pooled = await _both_ways(runtime, path, batch_size=40)
    assert pooled == in_process
    assert "prepared again in-process" in caplog.text  # batches in flight met what an earlier one learned
    _, _, _, (profiles, _, types) = pooled
    assert ("profile", "late", "number") in types
    assert pooled[0][2] > 0


@pytest.mark.parametrize("rows", [0, 1])
async def test_a_pool_for_a_tiny_file(runtime: Runtime, tmp_path: Path, rows: int) -> None:
    path = tmp_path / "tiny.csv"
    path.write_text("user_id,phone\n" + "".join(f"t{i},+447400{i:06d}\n" for i in range(rows)), encoding="utf-8")
    summary = await I.run_import(runtime.factory, path, "profiles", actor="tester", defaults=GB, parallel=True)
    assert (summary.rows_read, summary.created) == (rows, rows)
    assert not multiprocessing.active_children()


async def test_the_collector_is_paced_during_an_import_and_restored_after(runtime: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text("user_id,phone\n" + "".join(f"g{i},+447400{i:06d}\n" for i in range(30)), encoding="utf-8")
    seen: list[tuple[int, int, int]] = []
    before = gc.get_threshold()
    await I.run_import(runtime.factory, path, "profiles", actor="tester", defaults=GB, batch_size=10,
                       progress=lambda *_: seen.append(gc.get_threshold()))
    assert gc.get_threshold() == before
    assert seen[-1][0] == max(before[0], IMPORT_GC_THRESHOLD)
