"""Importing profiles and events from files: the preview a screen shows before it starts, and the
streamed import that keeps the good rows, reports every bad one and changes nothing on a re-run."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from smsconsole.models import AuditEntry, Consent, Event, Profile
from smsconsole.runtime import Runtime
from smsconsole.services import imports as I
from smsconsole.services import profiles as P
from smsconsole.services import settings
from smsconsole.services.errors import ValidationError

GB = P.AudienceDefaults(region="GB", timezone="UTC")


def _write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


async def _import(rt: Runtime, path: Path, kind: str = "profiles", **options: object) -> I.ImportSummary:
    options.setdefault("defaults", GB)
    return await I.run_import(rt.factory, path, kind, actor="tester", **options)  # type: ignore[arg-type]


async def _count(rt: Runtime, model: type) -> int:
    async with rt.factory() as session:
        return await session.scalar(select(func.count()).select_from(model)) or 0


async def _show(rt: Runtime, key: str) -> P.ProfileDetail:
    async with rt.factory() as session:
        return await P.get_profile(session, key, default_region="GB")


def _error_rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8", errors="surrogateescape") as handle:
        return list(csv.reader(handle))


# --- profiles ----------------------------------------------------------------------------------

MIXED = (
    b"user_id,phone,name,timezone,country,opt_in_timestamp,score\r\n"    # line 1
    b"u1,+447400123456,Ann,,,2026-01-02T10:00:00Z,7\r\n"                  # 2 good
    b"\r\n"                                                              # 3 blank: skipped
    b",,Nobody,,,,\r\n"                                                  # 4 no user id, no phone
    b",12345,,,,,\r\n"                                                   # 5 invalid phone, no user id
    b"u5,+447400123458,,Mars/Base,,,\r\n"                                # 6 bad time zone
    b"u6,+447400123459,,,Atlantis,,\r\n"                                 # 7 bad country
    b"u7,+447400123460,,,,yesterday,\r\n"                                # 8 bad opt-in date
    b"u8,+447400123461,,,,,lots\r\n"                                     # 9 text in a number property
    b"u9,+447400123462,Too,Few\r\n"                                      # 10 wrong number of fields
    b"u10,+447400123463,Ren\xe9e,,,,\r\n"                                # 11 Latin-1 byte, not UTF-8
    b",07400 123464,Phone Only,,,,3\r\n"                                 # 12 good, keyed by phone
    b"\"u13\",\"+1 (415) 555-0123\",\"Multi\nLine\",America/Chicago,US,2026-01-03,4\r\n"  # 13-14 good
)


async def test_good_rows_are_kept_and_each_bad_one_reported(runtime: Runtime, tmp_path: Path) -> None:
    source = _write(tmp_path / "people.csv", MIXED)
    summary = await _import(runtime, source, types={"score": "number"})

    assert (summary.rows_read, summary.good_rows, summary.bad_rows) == (11, 3, 8)
    assert (summary.created, summary.updated, summary.unchanged) == (3, 0, 0)
    assert summary.outcome == "partial" and summary.problem_count == 8
    found = [(p.row, p.column) for p in summary.problems]
    assert found == [(4, "user_id"), (5, "phone"), (6, "timezone"), (7, "country"), (8, "opt_in_timestamp"),
                     (9, "score"), (10, ""), (11, "name")]
    reasons = {p.row: p.reason for p in summary.problems}
    assert "needs a user_id or a valid phone" in reasons[4]
    assert "Mars/Base" in reasons[6] and "Atlantis" in reasons[7] and "yesterday" in reasons[8]
    assert "'lots' is not a number" in reasons[9]
    assert reasons[10] == "has 4 fields; the header has 7"
    assert "not UTF-8" in reasons[11]

    assert summary.error_file == tmp_path / "people.errors.csv"
    rows = _error_rows(summary.error_file)  # the file's own columns, then where and why
    assert rows[0] == ["user_id", "phone", "name", "timezone", "country", "opt_in_timestamp", "score",
                       "error_row", "error_reason"]
    assert [int(r[7]) for r in rows[1:]] == [r for r, _ in found]
    assert rows[1] == ["", "", "Nobody", "", "", "", "", "4", "user_id: a profile needs a user_id or a valid phone"]
    assert rows[7][:7] == ["u9", "+447400123462", "Too", "Few", "", "", ""]  # padded to the header
    assert rows[-1][2].encode("utf-8", "surrogateescape") == b"Ren\xe9e"  # byte for byte

    ann, by_phone = await _show(runtime, "u1"), await _show(runtime, "+447400123464")
    multi = await _show(runtime, "u13")
    assert (ann.name, ann.properties, ann.subscription) == ("Ann", {"score": 7}, "subscribed")
    assert (by_phone.user_id, by_phone.name, by_phone.properties) == (None, "Phone Only", {"score": 3})
    assert (multi.name, multi.phone, multi.timezone, multi.country) == ("Multi\nLine", "+14155550123",
                                                                       "America/Chicago", "US")
    async with runtime.factory() as session:
        assert await P.property_types(session) == {"score": "number"}
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "import.profiles"))
    assert entry is not None and entry.actor == "tester" and entry.details["bad_rows"] == 8


async def test_running_the_same_file_again_changes_nothing(runtime: Runtime, tmp_path: Path) -> None:
    source = _write(tmp_path / "people.csv", MIXED)
    await _import(runtime, source, types={"score": "number"})
    async with runtime.factory() as session:
        stamps = dict((await session.execute(select(Profile.id, Profile.updated_at))).all())
    consents, events = await _count(runtime, Consent), await _count(runtime, Event)
    assert consents == 2

    again = await _import(runtime, source, types={"score": "number"})
    assert (again.created, again.updated, again.unchanged, again.bad_rows) == (0, 0, 3, 8)
    assert (await _count(runtime, Consent), await _count(runtime, Event)) == (consents, events)
    async with runtime.factory() as session:
        assert dict((await session.execute(select(Profile.id, Profile.updated_at))).all()) == stamps
    assert len(_error_rows(tmp_path / "people.errors.csv")) == 9  # rewritten, not appended


async def test_a_file_of_only_bad_rows_still_gives_a_summary(runtime: Runtime, tmp_path: Path) -> None:
    source = _write(tmp_path / "bad.csv", "user_id,phone,timezone,country\n,abc,,\nu2,,Nowhere/City,XX\n")
    summary = await _import(runtime, source, error_file=tmp_path / "mine.csv")
    assert (summary.outcome, summary.rows_read, summary.bad_rows, summary.good_rows) == ("failed", 2, 2, 0)
    assert [(p.row, p.column) for p in summary.problems] == [(2, "phone"), (3, "timezone"), (3, "country")]
    assert summary.problem_count == 3
    assert summary.error_file is not None and summary.error_file.name == "mine.csv"
    assert await _count(runtime, Profile) == 0


async def test_a_stale_error_file_goes_when_the_fixed_file_imports_cleanly(runtime: Runtime, tmp_path: Path) -> None:
    source = _write(tmp_path / "people.csv", "user_id,timezone\nu1,Nowhere/City\n")
    first = await _import(runtime, source)
    assert first.error_file is not None and first.error_file.exists()
    _write(source, "user_id,timezone\nu1,Europe/Paris\n")
    second = await _import(runtime, source)
    assert second.error_file is None and not first.error_file.exists()


async def test_mapping_override_renames_and_skips_columns(runtime: Runtime, tmp_path: Path) -> None:
    source = _write(tmp_path / "crm.csv", "customer,contact,internal_note,plan\nc1,+447400123456,secret,gold\n")
    preview = I.preview_import(source)
    assert preview.mapping["contact"] == "property:contact" and not preview.ok  # nothing maps to a phone
    summary = await _import(runtime, source, mapping={"customer": "user_id", "contact": "phone",
                                                      "internal_note": "skip"})
    assert summary.created == 1
    profile = await _show(runtime, "c1")
    assert (profile.phone, profile.properties) == ("+447400123456", {"plan": "gold"})


async def test_type_override_keeps_a_numeric_looking_zip_as_text(runtime: Runtime, tmp_path: Path) -> None:
    source = _write(tmp_path / "zips.csv", "user_id,zip,visits\nu1,10001,3\nu2,94105,4\n")
    assert I.preview_import(source).types == {"zip": "number", "visits": "number"}
    await _import(runtime, source, types={"zip": "string"})
    assert (await _show(runtime, "u1")).properties == {"zip": "10001", "visits": 3}
    async with runtime.factory() as session:
        assert await P.property_types(session) == {"zip": "string", "visits": "number"}


async def test_known_property_types_win_and_conflicting_overrides_are_refused(runtime: Runtime, tmp_path: Path) -> None:
    await _import(runtime, _write(tmp_path / "first.csv", "user_id,code\nu1,abc\n"))  # code is a string now
    second = _write(tmp_path / "second.csv", "user_id,code\nu2,123\n")
    async with runtime.factory() as session:
        known = await I.known_property_types(session, "profiles")
    preview = I.preview_import(second, known_types=known)
    assert (preview.types, preview.type_sources) == ({"code": "string"}, {"code": "known"})
    with pytest.raises(ValidationError) as caught:
        await _import(runtime, second, types={"code": "number"})
    assert caught.value.for_field("types.code") == "is already a string property; its type cannot change to number"
    assert await _count(runtime, Profile) == 1  # nothing written
    await _import(runtime, second)
    assert (await _show(runtime, "u2")).properties == {"code": "123"}


async def test_upsert_by_phone_when_there_is_no_user_id(runtime: Runtime, tmp_path: Path) -> None:
    async with runtime.factory() as session, session.begin():  # national numbers read with the setting
        await settings.update_settings(session, {"default_region": "GB"}, actor="tester")
    await I.run_import(runtime.factory, _write(tmp_path / "a.csv", "mobile,name\n+44 7400 123456,Ann\n"),
                       actor="tester")
    again = await I.run_import(runtime.factory, _write(tmp_path / "b.csv", "msisdn,tier\n07400 123456,gold\n"),
                               actor="tester")
    assert (again.created, again.updated) == (0, 1)
    profile = await _show(runtime, "+447400123456")
    assert (profile.name, profile.properties, await _count(runtime, Profile)) == ("Ann", {"tier": "gold"}, 1)


async def test_an_opt_in_time_subscribes_with_an_import_consent(runtime: Runtime, tmp_path: Path) -> None:
    await _import(runtime, _write(tmp_path / "optin.csv",
                                  "external_id,phone_number,consent_at\nu1,+447400123456,2026-02-01 09:30\n"))
    profile = await _show(runtime, "u1")
    assert profile.subscription == "subscribed" and profile.reachable
    assert [(c.state, c.source, c.phone, c.at.isoformat()) for c in profile.consents] == [
        ("subscribed", "import", "+447400123456", "2026-02-01T09:30:00+00:00")]


async def test_repeated_keys_in_a_batch_merge_into_one_profile(runtime: Runtime, tmp_path: Path) -> None:
    summary = await _import(runtime, _write(tmp_path / "dups.csv", "user_id,plan,city\nu1,gold,\nu1,,Leeds\n"))
    assert (summary.created, summary.duplicates, summary.good_rows) == (1, 1, 2)
    assert (await _show(runtime, "u1")).properties == {"plan": "gold", "city": "Leeds"}


async def test_finished_batches_stay_when_an_import_stops_and_a_rerun_completes_it(
        runtime: Runtime, tmp_path: Path) -> None:
    source = _write(tmp_path / "five.csv", "user_id\n" + "".join(f"u{i}\n" for i in range(5)))

    class Stopped(Exception):
        pass

    def stop_after_first_batch(done: int, read: int, size: int) -> None:
        if done:
            raise Stopped

    with pytest.raises(Stopped):
        await _import(runtime, source, batch_size=2, progress=stop_after_first_batch)
    assert await _count(runtime, Profile) == 2
    summary = await _import(runtime, source, batch_size=2)
    assert (summary.created, summary.unchanged) == (3, 2)


async def test_progress_reports_rows_and_bytes(runtime: Runtime, tmp_path: Path) -> None:
    source = _write(tmp_path / "many.csv", "user_id\n" + "".join(f"u{i}\n" for i in range(25)))
    calls: list[tuple[int, int, int]] = []
    await _import(runtime, source, batch_size=10, progress=lambda *args: calls.append(args))
    size = source.stat().st_size
    assert [c[0] for c in calls] == [0, 10, 20, 25]
    assert calls[-1][1:] == (size, size) and all(c[2] == size for c in calls)


async def test_profiles_from_json_lines_follow_known_types_and_map_late_keys(runtime: Runtime, tmp_path: Path) -> None:
    await _import(runtime, _write(tmp_path / "first.csv", "user_id,plan\nu0,gold\n"))  # plan is a string
    lines = ['{"id": "u1", "phone": "+447400123456", "properties": {"plan": 3, "vip": true}}',
             '{"id": "u2", "age": 40, "optin_at": "2026-01-01"}',
             *(f'{{"id": "filler{i}"}}' for i in range(200)),
             '{"id": "late", "tz": "Europe/Paris", "score": 5}']  # keys the sample never showed
    summary = await _import(runtime, _write(tmp_path / "people.jsonl", "\n".join(lines) + "\n"))
    assert (summary.created, summary.bad_rows) == (203, 0)
    u1, u2, late = await _show(runtime, "u1"), await _show(runtime, "u2"), await _show(runtime, "late")
    assert u1.properties == {"plan": "3", "vip": True}
    assert (u2.properties, u2.subscription) == ({"age": 40}, "subscribed")
    assert (late.timezone, late.properties) == ("Europe/Paris", {"score": 5})


# --- events ------------------------------------------------------------------------------------


async def test_events_from_csv_create_people_change_subscriptions_and_ignore_repeats(
        runtime: Runtime, tmp_path: Path) -> None:
    await _import(runtime, _write(tmp_path / "people.csv", "user_id,phone\nu1,+447400123456\n"))
    source = _write(tmp_path / "events.csv", (
        "user_id,phone,event,timestamp,amount,sku\n"
        "u1,,order,2026-03-01T10:00:00Z,12.50,A-1\n"
        "u1,,sms_optin,2026-03-01T11:00:00Z,,\n"
        ",+447400999888,sms_optin,2026-03-02T08:00:00Z,,\n"
        "u1,,sms_optout,2026-03-03T08:00:00Z,,\n"
        "u2,,order,,5,B-2\n"                                   # no time
        "u3,,order,2026-03-04,lots,C-3\n"))                   # amount is a number column
    summary = await _import(runtime, source, "events", types={"amount": "number"})
    assert (summary.events_recorded, summary.created, summary.good_rows, summary.bad_rows) == (4, 1, 4, 2)
    assert [(p.row, p.column) for p in summary.problems] == [(6, "timestamp"), (7, "amount")]
    assert "an event needs its time" in summary.problems[0].reason

    u1, newcomer = await _show(runtime, "u1"), await _show(runtime, "+447400999888")
    assert u1.subscription == "unsubscribed" and newcomer.subscription == "subscribed"
    assert [(e.name, e.properties) for e in u1.events][-1] == ("order", {"amount": 12.5, "sku": "A-1"})
    async with runtime.factory() as session:
        assert await P.property_types(session, "event:order") == {"amount": "number", "sku": "string"}

    again = await _import(runtime, source, "events", types={"amount": "number"})
    assert (again.events_recorded, again.duplicates, again.created) == (0, 4, 0)
    assert await _count(runtime, Event) == 4


async def test_events_from_json_lines(runtime: Runtime, tmp_path: Path) -> None:
    source = _write(tmp_path / "events.jsonl", (
        '{"user_id": "u1", "event": "order", "at": "2026-03-01T10:00:00Z", "properties": {"amount": 12.5}}\n'
        '\n'
        '{"user_id": "u1", "event": "order", "at": "2026-03-01T10:00:00Z", "properties": {"amount": 12.5}}\n'
        '{"user_id": "u2", "event": "visit", "at": 1772359200, "page": "/pricing"}\n'
        '{"user_id": "u3", "event": "order", "at": "2026-03-01"\n'
        '["not", "an", "object"]\n'
        '{"user_id": "u4", "event": "order", "at": "2026-03-01", "properties": "big"}\n'))
    preview = I.preview_import(source, "events")
    assert preview.format == "jsonl" and preview.mapping == {
        "user_id": "user_id", "event": "name", "at": "at", "properties": "properties", "page": "property:page"}
    summary = await _import(runtime, source, "events")
    assert (summary.rows_read, summary.events_recorded, summary.duplicates, summary.bad_rows) == (6, 2, 1, 3)
    assert [(p.row, p.column) for p in summary.problems] == [(5, ""), (6, ""), (7, "properties")]
    assert summary.problems[0].reason.startswith("is not valid JSON")
    assert summary.problems[1].reason == "is not a JSON object"
    visit = (await _show(runtime, "u2")).events[0]
    assert (visit.name, visit.at.isoformat(), visit.properties) == ("visit", "2026-03-01T10:00:00+00:00",
                                                                     {"page": "/pricing"})
    again = await _import(runtime, source, "events")
    assert (again.events_recorded, again.duplicates) == (0, 3)


async def test_an_event_type_override_that_conflicts_with_a_known_one_is_refused(
        runtime: Runtime, tmp_path: Path) -> None:
    source = _write(tmp_path / "events.csv", "user_id,event,at,amount\nu1,order,2026-03-01,12\n")
    await _import(runtime, source, "events")
    with pytest.raises(ValidationError) as caught:
        await _import(runtime, source, "events", types={"amount": "string"})
    assert caught.value.for_field("types.amount") == (
        "is already a number property of 'order' events; its type cannot change to string")


# --- preview -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "delimiter"), [
    ("Phone;User ID;Opt-In\n+447400123456;u1;2026-01-01\n+447400123457;u2;2026-01-02\n", ";"),
    ("Phone\tUser ID\tOpt-In\n+447400123456\tu1\t2026-01-01\n+447400123457\tu2\t2026-01-02\n", "\t"),
    ("\ufeffPhone,User ID,Opt-In\n+447400123456,u1,2026-01-01\n+447400123457,u2,2026-01-02\n", ","),
    ("Phone|User ID|Opt-In\n+447400123456|u1|2026-01-01\n", "|"),
])
def test_preview_sniffs_the_dialect_and_reads_header_spellings(tmp_path: Path, text: str, delimiter: str) -> None:
    preview = I.preview_import(_write(tmp_path / "list.txt", text))
    assert (preview.format, preview.delimiter, preview.bom) == ("csv", delimiter, text.startswith("\ufeff"))
    assert preview.columns == ("Phone", "User ID", "Opt-In")
    assert preview.mapping == {"Phone": "phone", "User ID": "user_id", "Opt-In": "optin_at"}
    assert preview.rows[0] == I.PreviewRow(2, ("+447400123456", "u1", "2026-01-01")) and preview.ok


def test_preview_proposes_fields_properties_and_types(tmp_path: Path) -> None:
    source = _write(tmp_path / "export.csv", (
        "Customer ID,MSISDN,Full Name,TZ,Country Code,Opted In,Zip Code,Score,VIP,Joined,Tags\n"
        "c1,+447400123456,Ann,Europe/London,GB,yes,02134,10,true,2025-01-01,[\"a\"]\n"
        "c2,+447400123457,Bob,,GB,no,10001,2.5,false,2025-02-01,[]\n"))
    preview = I.preview_import(source, defaults=GB)
    assert preview.mapping == {
        "Customer ID": "user_id", "MSISDN": "phone", "Full Name": "name", "TZ": "timezone",
        "Country Code": "country", "Opted In": "property:opted_in", "Zip Code": "property:zip_code",
        "Score": "property:score", "VIP": "property:vip", "Joined": "property:joined", "Tags": "property:tags"}
    assert preview.types == {"opted_in": "boolean", "zip_code": "string", "score": "number", "vip": "boolean",
                             "joined": "date", "tags": "list"}
    assert any("'Opted In' does not hold dates" in w for w in preview.warnings)
    assert preview.ok and preview.sample_problems == () and len(preview.rows) == 2


def test_a_column_named_like_a_field_it_cannot_fill_is_skipped(tmp_path: Path) -> None:
    preview = I.preview_import(_write(tmp_path / "people.csv", "user_id,optin_at\nu1,yes\n"))
    assert preview.mapping == {"user_id": "user_id", "optin_at": "skip"}
    assert preview.warnings == ("column 'optin_at' does not hold dates, so it is not used as optin_at",
                                "column 'optin_at' is skipped: its name is a profile field's; map it to "
                                "property:<name> to keep it")


def test_preview_shows_problems_before_anything_is_written(tmp_path: Path) -> None:
    source = _write(tmp_path / "people.csv", "phone,mobile,score\n12345,+447400123456,1\n+447400123457,,x\n")
    preview = I.preview_import(source, defaults=GB)
    assert preview.mapping["mobile"] == "property:mobile"  # "phone" is the better spelling
    assert any("'mobile' also look like phone" in w for w in preview.warnings)
    assert [(p.row, p.column) for p in preview.sample_problems] == [(2, "phone")]
    assert preview.types["score"] == "string"  # "x" is not a number
    clash = I.preview_import(source, mapping={"mobile": "phone"})
    assert clash.problems == (("mapping", "columns 'phone', 'mobile' all map to phone; keep one"),)
    with pytest.raises(ValidationError) as caught:
        I.preview_import(source, mapping={"nope": "phone", "score": "age"}, types={"score": "money"})
    assert {f for f, _ in caught.value.problems} == {"mapping.nope", "mapping.score", "types.score"}
    events = I.preview_import(_write(tmp_path / "ev.csv", "user_id,what\nu1,x\n"), "events")
    assert {reason.split(";")[0] for _, reason in events.problems} == {
        "no column maps to the event name", "no column maps to the event time (at)"}


@pytest.mark.parametrize(("content", "message"), [
    (b"", "is empty"),
    (b"\xef\xbb\xbf\n\n  \n", "is empty"),
    (bytes(range(256)) * 4, "is not a text file"),
    (b"PK\x03\x04" + b"\x00" * 100, "ZIP archive"),
    (b"\xff\xfeu\x00s\x00", "UTF-16"),
    (b"+447400123456,u1\n+447400123457,u2\n", "looks like data, not column names"),
    (b"user_id,n\xe9m\nu1,x\n", "header of people.csv is not UTF-8"),
])
def test_files_that_cannot_be_imported_say_why(tmp_path: Path, content: bytes, message: str) -> None:
    with pytest.raises(I.ImportFileError, match=message):
        I.preview_import(_write(tmp_path / "people.csv", content))


def test_missing_files_folders_and_json_arrays_say_why(tmp_path: Path) -> None:
    with pytest.raises(I.ImportFileError, match="does not exist"):
        I.preview_import(tmp_path / "nope.csv")
    with pytest.raises(I.ImportFileError, match="is a folder"):
        I.preview_import(tmp_path)
    with pytest.raises(I.ImportFileError, match="JSON array"):
        I.preview_import(_write(tmp_path / "e.json", '[{"user_id": "u1"}]'), "events")
    with pytest.raises(I.ImportFileError, match="indented JSON"):
        I.preview_import(_write(tmp_path / "e.json", '{\n  "user_id": "u1"\n}\n'), "events")


DATA = Path(__file__).resolve().parent.parent / "data" / "imports"


async def test_the_sample_files_import_as_documented(runtime: Runtime, tmp_path: Path) -> None:
    """tests/data/imports holds small files for manual tries and screen tests; they stay valid."""
    preview = I.preview_import(DATA / "profiles.csv", defaults=GB)
    assert preview.mapping == {
        "Customer ID": "user_id", "Mobile": "phone", "Full Name": "name", "Opt-In Date": "optin_at",
        "Country": "country", "Plan": "property:plan", "Zip Code": "property:zip_code", "Score": "property:score"}
    assert preview.types == {"plan": "string", "zip_code": "string", "score": "number"}
    assert [(p.row, p.column) for p in preview.sample_problems] == [(6, "Customer ID"), (7, "Opt-In Date")]
    profiles = await _import(runtime, DATA / "profiles.csv", error_file=tmp_path / "profiles.errors.csv")
    assert (profiles.created, profiles.bad_rows) == (4, 2)  # c1004 is kept with its invalid phone
    events = await _import(runtime, DATA / "events.jsonl", "events", error_file=tmp_path / "events.errors.csv")
    assert (events.events_recorded, events.created, events.bad_rows) == (4, 1, 1)


async def test_spaces_after_the_delimiter_do_not_break_quoted_values(runtime: Runtime, tmp_path: Path) -> None:
    source = _write(tmp_path / "spaced.csv", 'user_id, name, plan\nu1, "Smith, Ann", gold\nu2, "Jones, Bob", pro\n')
    summary = await _import(runtime, source)
    assert (summary.created, summary.bad_rows) == (2, 0)
    assert (await _show(runtime, "u1")).name == "Smith, Ann"
    assert (await _show(runtime, "u2")).properties == {"plan": "pro"}


async def test_a_stray_quote_is_a_bad_row_not_a_silent_merge(runtime: Runtime, tmp_path: Path) -> None:
    source = _write(tmp_path / "quotes.csv", 'user_id,name\nu1,"Ann\nu2,Bob\nu3,"Cy"d\nu4,Dee\nu5,"Eve\n')
    summary = await _import(runtime, source)
    assert [(p.row, p.raw) for p in summary.problems] == [(2, 'u1,"Ann\nu2,Bob\nu3,"Cy"d'), (6, 'u5,"Eve')]
    assert summary.problems[0].reason == "cannot be read as CSV (',' expected after '\"'); check its quotes"
    assert (summary.created, (await _show(runtime, "u4")).name) == (1, "Dee")


# --- the error file: the bad rows as they were, ready to fix and import again ---------------------

FIXABLE = (
    "user_id;phone;Full Name;plan;notes\r\n"                          # 1 semicolons, as Excel writes them in many locales
    "u1;+447400123456;Ann;gold;\"likes; semicolons\"\r\n"             # 2 good
    "u2;+447400l23457;Bob;silver;\"two\nlines\"\r\n"                   # 3-4 a letter l for a one
    "u3;+447400123458;Cy;;\r\n"                                       # 5 good
    "u4;+44740012345O;Dee;gold;\r\n"                                  # 6 a letter O for a zero
    "u5;+447400123460;Eve;gold\r\n"                                   # 7 a field missing
    "u6;+447400123461;Fay;gold;\"never closed\r\n"                    # 8 a quote never closed (the last record)
)


async def test_the_error_file_has_the_original_columns_and_imports_again_once_fixed(
        runtime: Runtime, tmp_path: Path) -> None:
    source = _write(tmp_path / "people.csv", b"\xef\xbb\xbf" + FIXABLE.encode())
    summary = await _import(runtime, source)
    assert [p.row for p in summary.problems] == [3, 6, 7, 8]
    assert summary.error_file == tmp_path / "people.errors.csv"

    text = summary.error_file.read_bytes()
    assert text.startswith(b"\xef\xbb\xbf")  # as the original: Excel then reads it as UTF-8
    with summary.error_file.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle, delimiter=";"))
    assert rows[0] == ["user_id", "phone", "Full Name", "plan", "notes", "error_row", "error_reason"]
    assert rows[1][:5] == ["u2", "+447400l23457", "Bob", "silver", "two\nlines"]  # the cells as they were
    assert rows[1][5:] == ["3", "phone: The number contains a letter (l): a phone number has only digits, spaces, "
                                "dashes, dots, parentheses and a leading +."]
    assert rows[2] == ["u4", "+44740012345O", "Dee", "gold", "", "6", rows[2][6]]
    assert rows[3] == ["u5", "+447400123460", "Eve", "gold", "", "7", "has 4 fields; the header has 5"]
    assert rows[4][0] == 'u6;+447400123461;Fay;gold;"never closed' and rows[4][1:5] == ["", "", "", ""]
    assert rows[4][5] == "8" and "quote" in rows[4][6]

    # the operator fixes the cells in place and imports the same file
    rows[1][1], rows[2][1], rows[3][4], rows[4][:5] = "+447400123457", "+447400123450", "late", \
        ["u6", "+447400123461", "Fay", "gold", "never closed"]
    with summary.error_file.open("w", newline="", encoding="utf-8-sig") as handle:
        csv.writer(handle, delimiter=";").writerows(rows)
    preview = I.preview_import(summary.error_file, defaults=GB)
    assert preview.mapping["error_row"] == preview.mapping["error_reason"] == "skip"
    assert any("error_row" in w and "error file" in w for w in preview.warnings)
    again = await _import(runtime, summary.error_file)
    assert (again.bad_rows, again.created, again.error_file) == (0, 4, None)
    assert not (tmp_path / "people.errors.errors.csv").exists()
    fay, ann = await _show(runtime, "u6"), await _show(runtime, "u1")
    assert (fay.phone, fay.properties) == ("+447400123461", {"plan": "gold", "notes": "never closed"})
    assert ann.properties == {"plan": "gold", "notes": "likes; semicolons"}
    async with runtime.factory() as session:
        assert set(await P.property_types(session)) == {"plan", "notes"}  # no error_row, error_reason


async def test_an_error_file_imported_again_with_rows_still_bad_keeps_one_pair_of_error_columns(
        runtime: Runtime, tmp_path: Path) -> None:
    source = _write(tmp_path / "people.csv", "user_id,timezone\nu1,Nowhere/City\nu2,Europe/Paris\n")
    first = await _import(runtime, source)
    assert first.error_file is not None
    second = await _import(runtime, first.error_file)
    assert second.error_file == tmp_path / "people.errors.errors.csv"
    assert _error_rows(second.error_file) == [
        ["user_id", "timezone", "error_row", "error_reason"],
        ["u1", "Nowhere/City", "2", "timezone: 'Nowhere/City' is not a time zone (e.g. Europe/London, Asia/Kolkata)"]]


async def test_json_lines_errors_keep_each_line_with_an_error_key_and_import_again_once_fixed(
        runtime: Runtime, tmp_path: Path) -> None:
    source = _write(tmp_path / "events.jsonl", (
        '{"user_id": "u1", "event": "order", "at": "2026-03-01T10:00:00Z", "properties": {"sku": "A-1"}}\n'
        '{"user_id": "u2", "event": "order", "at": "someday",  "properties": {"sku": "Ü-2"}}\n'
        '{"user_id": "u3", "event": "order", "at": "2026-03-03"\n'
        '[1, 2]\n'))
    summary = await _import(runtime, source, "events")
    assert summary.error_file == tmp_path / "events.errors.jsonl"
    lines = summary.error_file.read_text(encoding="utf-8").splitlines()
    assert lines[0] == ('{"user_id": "u2", "event": "order", "at": "someday",  "properties": {"sku": "Ü-2"}, '
                        '"_error": {"row": 2, "reason": "at: \'someday\' is not a date (use ISO 8601, e.g. '
                        '2026-01-31 or 2026-01-31T09:30:00Z)"}}')  # the line as it was, the reason added
    unreadable = json.loads(lines[1])
    assert unreadable == {"_error": {"row": 3, "reason": unreadable["_error"]["reason"],
                                     "line": '{"user_id": "u3", "event": "order", "at": "2026-03-03"'}}
    assert unreadable["_error"]["reason"].startswith("is not valid JSON")
    assert json.loads(lines[2])["_error"] == {"row": 4, "reason": "is not a JSON object", "line": "[1, 2]"}

    fixed = [lines[0].replace("someday", "2026-03-02"),
             '{"user_id": "u3", "event": "order", "at": "2026-03-03", "_error": {"row": 3, "reason": "fixed"}}']
    _write(summary.error_file, "\n".join(fixed) + "\n")
    again = await _import(runtime, summary.error_file, "events")
    assert (again.bad_rows, again.events_recorded, again.error_file) == (0, 2, None)
    async with runtime.factory() as session:
        stored = (await session.scalars(select(Event.properties).order_by(Event.id))).all()
    assert sorted(stored, key=len) == [{}, {"sku": "A-1"}, {"sku": "Ü-2"}]  # no _error property


async def test_a_json_lines_line_still_bad_gets_a_fresh_reason_and_keeps_its_text(
        runtime: Runtime, tmp_path: Path) -> None:
    source = _write(tmp_path / "people.jsonl", '{"user_id": "u1", "timezone": "Mars"}\nnot json\n')
    first = await _import(runtime, source)
    assert first.error_file == tmp_path / "people.errors.jsonl"
    second = await _import(runtime, first.error_file)
    lines = [json.loads(line) for line in (tmp_path / "people.errors.errors.jsonl").read_text().splitlines()]
    assert lines[0] == {"user_id": "u1", "timezone": "Mars", "_error": {
        "row": 1, "reason": "timezone: 'Mars' is not a time zone (e.g. Europe/London, Asia/Kolkata)"}}
    assert lines[1]["_error"]["line"] == "not json" and lines[1]["_error"]["row"] == 2
    assert second.bad_rows == 2


# --- rows kept without a reachable phone -----------------------------------------------------------


async def test_rows_imported_with_an_invalid_phone_are_counted_and_listed_as_warnings(
        runtime: Runtime, tmp_path: Path) -> None:
    lines = ["user_id,phone"] + [f"u{i},{'+44 12' if i in (3, 5, 9) else f'+4474001234{i:02d}'}" for i in range(2, 12)]
    source = _write(tmp_path / "people.csv", "\n".join(lines) + "\n")
    summary = await _import(runtime, source, max_reported=2)
    assert (summary.good_rows, summary.bad_rows, summary.outcome) == (10, 0, "ok")
    assert summary.unreachable_rows == 3
    assert [(w.row, w.column) for w in summary.unreachable] == [(3, "phone"), (5, "phone")]  # the first 2
    assert summary.unreachable[0].reason == "The number is too short for United Kingdom."
    assert summary.unreachable[0].describe() == "row 3, column 'phone': The number is too short for United Kingdom."
    assert "+44" not in repr(summary.unreachable)  # reasons, not the data
    preview = I.preview_import(source, defaults=GB)
    assert any(w.startswith("3 of the first 10 rows have a phone that is not valid") for w in preview.warnings)


async def test_an_event_whose_phone_is_not_used_is_a_warning(runtime: Runtime, tmp_path: Path) -> None:
    source = _write(tmp_path / "events.csv", "user_id,phone,event,at\nu1,+44 12,order,2026-03-01\n")
    summary = await _import(runtime, source, "events")
    assert (summary.events_recorded, summary.unreachable_rows) == (1, 1)
    assert summary.unreachable[0].describe() == "row 2, column 'phone': The number is too short for United Kingdom."


def test_the_cli_summary_names_the_rows_without_a_reachable_phone(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "people.csv"
    rows = "".join(f"u{i},+44 12\n" for i in range(25)) + "ok,+447400123456\n"
    source.write_text("user_id,phone\n" + rows)
    code, out, _ = cli("import", "profiles", str(source))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("ok: 26 rows read")
    assert lines[1] == ("warning: 25 rows imported without a reachable phone (no SMS can reach them; "
                        "fix the phone and import again):")
    assert lines[2] == "  row 2, column 'phone': The number is too short for United Kingdom."
    assert lines[11] == "  row 11, column 'phone': The number is too short for United Kingdom."
    assert lines[12] == "  … and 15 more"
    code, out, _ = cli("import", "profiles", str(source), "--json")
    summary = json.loads(out)
    assert summary["unreachable_rows"] == 25 and summary["unreachable"][0] == {
        "row": 2, "column": "phone", "reason": "The number is too short for United Kingdom."}
