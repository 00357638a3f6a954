"""Senders (registered and implicit), India DLT templates (by hand and from CSV) and US 10DLC
campaigns: stored, listed, validated field by field, audited."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from smsconsole.models import AuditEntry
from smsconsole.models.compliance import Sender
from smsconsole.runtime import Runtime
from smsconsole.services import providers as provider_svc
from smsconsole.services.compliance import senders as svc
from smsconsole.services.compliance import templates as tpl
from smsconsole.services.errors import Conflict, NotFound, ValidationError

ACTOR = "test"


async def _provider(rt: Runtime, name: str, kind: str = "sandbox", **values: str) -> int:
    async with rt.factory() as session, session.begin():
        view = await provider_svc.create_provider(session, rt.box, kind=kind, name=name, values=values, actor=ACTOR)
    return view.id


async def _add(rt: Runtime, **fields: object) -> svc.SenderView:
    async with rt.factory() as session, session.begin():
        return await svc.add_sender(session, actor=ACTOR, **fields)  # type: ignore[arg-type]


async def _problems(rt: Runtime, call: object, **fields: object) -> dict[str, str]:
    async with rt.factory() as session, session.begin():
        with pytest.raises(ValidationError) as caught:
            await call(session, actor=ACTOR, **fields)  # type: ignore[operator]
    return dict(caught.value.problems)


@pytest.mark.parametrize(("value", "kind"), [
    ("ACMEIN", "alphanumeric"), ("Acme2Go", "alphanumeric"), ("12345", "short_code"), ("888222", "short_code"),
    ("+18005550100", "toll_free"), ("+1 (888) 555-0100", "toll_free"), ("+14155550100", "long_code"),
    ("+447911123456", "long_code"), ("+919876543210", "long_code"),
])
def test_infer_sender_type(value: str, kind: str) -> None:
    assert svc.infer_sender_type(value) == kind


async def test_add_list_update_remove_a_sender(runtime: Runtime) -> None:
    pid = await _provider(runtime, "sbx", sender="SANDBOX")
    async with runtime.factory() as session, session.begin():
        await tpl.add_tendlc_campaign(session, campaign_id="CX4B2ZQ", brand_id="BZ3F9QX", use_case="marketing",
                                      samples=["Sale today! Reply STOP to opt out"], actor=ACTOR)
    added = await _add(runtime, provider="sbx", value="+1 415 555 0100", countries="us, ca", brand_id="BZ3F9QX",
                       tendlc_campaign="CX4B2ZQ", note="main line")
    assert (added.value, added.type, added.countries, added.tendlc_campaign, added.implicit) == (
        "+14155550100", "long_code", ("US", "CA"), "CX4B2ZQ", False)
    assert (added.provider_id, added.provider, added.provider_kind) == (pid, "sbx", "sandbox")
    alpha = await _add(runtime, provider="sbx", value="ACMEIN", countries=["IN"], dlt_entity_id="1101234567890123456")
    assert alpha.type == "alphanumeric" and alpha.dlt_entity_id == "1101234567890123456"

    async with runtime.factory() as session:
        listed = await svc.list_senders(session)
        registered = await svc.list_senders(session, implicit=False)
        by_provider = await svc.senders_by_provider(session, [pid])
    # The configured sender SANDBOX is not registered: it shows as implicit, last.
    assert [(s.value, s.id is None, s.implicit) for s in listed] == [
        ("+14155550100", False, False), ("ACMEIN", False, False), ("SANDBOX", True, True)]
    assert listed[-1].type == "alphanumeric" and listed[-1].countries == ()
    assert [s.value for s in registered] == ["+14155550100", "ACMEIN"]
    assert by_provider == {pid: listed}

    async with runtime.factory() as session, session.begin():
        updated = await svc.update_sender(session, added.id, countries="US", note="", actor=ACTOR)  # type: ignore[arg-type]
    assert (updated.countries, updated.note, updated.tendlc_campaign) == (("US",), None, "CX4B2ZQ")
    async with runtime.factory() as session, session.begin():
        with pytest.raises(Conflict, match=r"set on sender \+14155550100"):
            await tpl.remove_tendlc_campaign(session, "CX4B2ZQ", actor=ACTOR)
    async with runtime.factory() as session, session.begin():
        await svc.remove_sender(session, added.id, actor=ACTOR)  # type: ignore[arg-type]
    async with runtime.factory() as session, session.begin():
        with pytest.raises(NotFound):
            await svc.remove_sender(session, added.id, actor=ACTOR)  # type: ignore[arg-type]
        await tpl.remove_tendlc_campaign(session, "CX4B2ZQ", actor=ACTOR)
    async with runtime.factory() as session:
        assert [s.value for s in await svc.list_senders(session, provider="sbx")] == ["ACMEIN", "SANDBOX"]
        actions = [a.action for a in await session.scalars(select(AuditEntry).order_by(AuditEntry.id))
                   if a.action.startswith(("sender.", "tendlc"))]
    assert actions == ["tendlc_campaign.add", "sender.add", "sender.add", "sender.update", "sender.remove",
                       "tendlc_campaign.remove"]


async def test_a_registered_configured_sender_is_not_implicit_too(runtime: Runtime) -> None:
    pid = await _provider(runtime, "tw", kind="twilio", account_sid="AC" + "a" * 32, auth_token="t" * 32,
                          sender="+14155550100")
    other = await _provider(runtime, "quiet", kind="sandbox", sender="QUIET")
    async with runtime.factory() as session:
        before = await svc.senders_by_provider(session, [pid, other])
    assert [(s.value, s.type, s.implicit) for s in before[pid]] == [("+14155550100", "long_code", True)]
    await _add(runtime, provider="tw", value="+14155550100", countries="US")
    async with runtime.factory() as session:
        after = await svc.senders_by_provider(session, [pid])
    assert [(s.value, s.implicit, s.countries) for s in after[pid]] == [("+14155550100", False, ("US",))]


async def test_every_bad_field_is_named(runtime: Runtime) -> None:
    await _provider(runtime, "sbx")
    add = svc.add_sender
    assert set(await _problems(runtime, add, provider="nope", value="")) == {"provider", "value"}
    bad = await _problems(runtime, add, provider="sbx", value="+1415", type="long_code", countries="US,XX,USA")
    assert set(bad) == {"value", "countries"} and "XX, USA" in bad["countries"]
    assert "3 to 8 digits" in (await _problems(runtime, add, provider="sbx", value="12345678901", type="short_code"))["value"]
    assert "at least one a letter" in (await _problems(runtime, add, provider="sbx", value="123456789", type="alphanumeric"))["value"]
    assert "3 to 11" in (await _problems(runtime, add, provider="sbx", value="ACME-SHOP", type="alphanumeric"))["value"]
    assert "not a sender type" in (await _problems(runtime, add, provider="sbx", value="ACME", type="pigeon"))["type"]
    missing = await _problems(runtime, add, provider="sbx", value="+14155550100", tendlc_campaign="CNOPE")
    assert "smsconsole templates 10dlc add --campaign CNOPE" in missing["tendlc_campaign"]
    assert "long code only" in (await _problems(runtime, add, provider="sbx", value="ACME", tendlc_campaign="C1"))["tendlc_campaign"]
    assert "verified, pending, rejected" in (await _problems(runtime, add, provider="sbx", value="+18005550100",
                                                                tollfree_status="approved"))["tollfree_status"]
    assert "toll-free number only" in (await _problems(runtime, add, provider="sbx", value="+14155550100",
                                                           tollfree_status="verified"))["tollfree_status"]
    assert "digits" in (await _problems(runtime, add, provider="sbx", value="ACMEIN", dlt_entity_id="11A"))["dlt_entity_id"]
    assert "6 letters or digits" in (await _problems(runtime, add, provider="sbx", value="ACMESHOP",
                                                         dlt_entity_id="1101"))["value"]
    assert "brand_id" in await _problems(runtime, add, provider="sbx", value="+14155550100", brand_id="has space")
    ok = await _add(runtime, provider="sbx", value="+18005550100", tollfree_status="Pending")
    assert (ok.type, ok.tollfree_status) == ("toll_free", "pending")
    assert "already a sender" in (await _problems(runtime, add, provider="sbx", value="+1 800 555 0100"))["value"]
    async with runtime.factory() as session, session.begin():
        with pytest.raises(ValidationError) as caught:
            await svc.update_sender(session, ok.id, provider_id=3, actor=ACTOR)  # type: ignore[arg-type]
    assert caught.value.problems == [("provider_id", "cannot be changed on a sender")]


async def test_senders_go_with_their_provider(runtime: Runtime) -> None:
    await _provider(runtime, "gone")
    await _add(runtime, provider="gone", value="ACME")
    async with runtime.factory() as session, session.begin():
        await provider_svc.remove_provider(session, "gone", ACTOR)
    async with runtime.factory() as session:
        assert list(await session.scalars(select(Sender))) == []


async def test_dlt_templates_by_hand(runtime: Runtime) -> None:
    async with runtime.factory() as session, session.begin():
        view = await tpl.add_dlt_template(
            session, template_id="1107161234567890123", header="acmein", category="Service Implicit",
            content="Dear {#var#}, your OTP is {# VAR #}. ACME", name="otp", entity_id="1101234567890123456", actor=ACTOR)
    assert (view.header, view.category, view.variables) == ("ACMEIN", "service", 2)
    async with runtime.factory() as session, session.begin():
        changed = await tpl.update_dlt_template(session, "1107161234567890123", category="transactional", actor=ACTOR)
        assert changed.category == "transactional"
        with pytest.raises(ValidationError) as caught:
            await tpl.add_dlt_template(session, template_id="1107161234567890123", header="ACMEIN",
                                       category="service", content="x", actor=ACTOR)
    assert "already registered" in dict(caught.value.problems)["template_id"]
    problems = await _problems(runtime, tpl.add_dlt_template, template_id="T-1", header="ACME", category="spam",
                               content=" {#var#} ", entity_id="x")
    assert set(problems) == {"template_id", "header", "category", "content", "entity_id"}
    async with runtime.factory() as session:
        assert [t.template_id for t in await tpl.list_dlt_templates(session, header="AcmeIn")] == ["1107161234567890123"]
        assert await tpl.list_dlt_templates(session, header="OTHERS") == []
    async with runtime.factory() as session, session.begin():
        await tpl.remove_dlt_template(session, view.id, actor=ACTOR)
    async with runtime.factory() as session:
        assert await tpl.list_dlt_templates(session) == []


async def test_dlt_import_keeps_good_rows_names_bad_ones_and_updates(runtime: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "dlt.csv"
    path.write_text(
        "Template ID,Template Name,Header,Template Type,Template Content,PE ID\n"
        "1107000000000000001,otp,ACMEIN,Service Implicit,\"Your OTP is {#var#}, valid 5 min\",1101\n"
        "1107000000000000002,offer,ACMEIN,Promotional,Big sale {#var#} off,1101\n"
        "\n"
        "abc,bad,ACMEIN,Transactional,Hi,1101\n"
        "1107000000000000003,bad2,ACME,Newsletter,{#var#},\n"
        "1107000000000000004,extra,ACMEIN,Transactional,Hi,1101,surplus\n",
        encoding="utf-8-sig")
    async with runtime.factory() as session, session.begin():
        report = await tpl.import_dlt_templates(session, path, actor=ACTOR)
    assert (report.added, report.updated) == (2, 0)
    lines = dict(report.problems)
    assert sorted(lines) == [5, 6, 7]
    assert "template_id" in lines[5]
    assert "header" in lines[6] and "category" in lines[6] and "content" in lines[6]
    assert "7 values where the header has 6 columns" in lines[7]
    path.write_text("template_id,header,category,content\n1107000000000000002,ACMEIN,promotional,Mega sale {#var#}\n")
    async with runtime.factory() as session, session.begin():
        again = await tpl.import_dlt_templates(session, path, actor=ACTOR)
    assert (again.added, again.updated, again.problems) == (0, 1, ())
    async with runtime.factory() as session:
        found = {t.template_id: t for t in await tpl.list_dlt_templates(session)}
    assert found["1107000000000000002"].content == "Mega sale {#var#}"
    assert (found["1107000000000000002"].name, found["1107000000000000002"].entity_id) == ("offer", "1101")
    assert found["1107000000000000001"].content == "Your OTP is {#var#}, valid 5 min"


@pytest.mark.parametrize(("content", "reason"), [
    (None, "no such file"), ("", "empty"), ("name,content\nx,y\n", "no template_id, header column"),
    (b"\xff\xfetemplate_id", "not UTF-8"),
])
async def test_dlt_import_refuses_an_unusable_file_in_one_line(runtime: Runtime, tmp_path: Path,
                                                              content: str | bytes | None, reason: str) -> None:
    path = tmp_path / "t.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    async with runtime.factory() as session:
        with pytest.raises(ValidationError) as caught:
            await tpl.import_dlt_templates(session, path, actor=ACTOR)
    assert caught.value.problems[0][0] == "file" and reason in caught.value.problems[0][1]
    assert "\n" not in str(caught.value)


async def test_tendlc_campaigns(runtime: Runtime) -> None:
    async with runtime.factory() as session, session.begin():
        view = await tpl.add_tendlc_campaign(session, campaign_id="CX4B2ZQ", brand_id="BZ3F9QX",
                                             use_case="account notification", samples=["Your order shipped", " "],
                                             description="order updates", actor=ACTOR)
    assert (view.use_case, view.samples, view.status) == ("ACCOUNT_NOTIFICATION", ("Your order shipped",), "active")
    async with runtime.factory() as session, session.begin():
        changed = await tpl.update_tendlc_campaign(session, "CX4B2ZQ", status="expired", actor=ACTOR)
    assert changed.status == "expired"
    problems = await _problems(runtime, tpl.add_tendlc_campaign, campaign_id="", brand_id="", use_case="SPAM",
                               samples=[f"s{i}" for i in range(6)], status="done")
    assert set(problems) == {"campaign_id", "brand_id", "use_case", "samples", "status"}
    dup = await _problems(runtime, tpl.add_tendlc_campaign, campaign_id="CX4B2ZQ", brand_id="B", use_case="2FA")
    assert "already registered" in dup["campaign_id"]
    async with runtime.factory() as session:
        assert [c.campaign_id for c in await tpl.list_tendlc_campaigns(session)] == ["CX4B2ZQ"]
