"""Providers as an operator manages them: validation, secrets sealed, edits keep secrets."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from smsconsole.models import AuditEntry, Provider as ProviderRow
from smsconsole.runtime import Runtime
from smsconsole.secrets import MASK
from smsconsole.services import providers as svc
from smsconsole.services.errors import Conflict, NotFound, ValidationError

SID = "AC" + "0123456789abcdef" * 2
TOKEN = "tok_5ecr3t_value_123456"


async def _add(rt: Runtime, **values: str) -> svc.ProviderView:
    async with rt.factory() as session, session.begin():
        return await svc.create_provider(session, rt.box, kind=values.pop("kind", "sandbox"),
                                         name=values.pop("name", "sbx"), values=values, actor="test")


async def test_create_list_show_remove(runtime: Runtime) -> None:
    await _add(runtime, name="sbx", fail_pattern=r"^\+1555")
    async with runtime.factory() as session:
        views = await svc.list_providers(session)
        assert [(v.name, v.kind, v.enabled, v.health) for v in views] == [("sbx", "sandbox", True, "unknown")]
        assert views[0].settings["fail_pattern"] == r"^\+1555"
    async with runtime.factory() as session, session.begin():
        await svc.remove_provider(session, "sbx", actor="test")
    async with runtime.factory() as session:
        assert await svc.list_providers(session) == []
        actions = list(await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
    assert actions == ["provider.create", "provider.remove"]


async def test_every_bad_field_is_reported_at_once_and_nothing_is_written(runtime: Runtime) -> None:
    with pytest.raises(ValidationError) as caught:
        await _add(runtime, kind="twilio", name="bad name!", account_sid="AC123")
    fields = {field for field, _ in caught.value.problems}
    assert {"name", "account_sid", "auth_token"} <= fields
    async with runtime.factory() as session:
        assert await session.scalar(select(ProviderRow.id)) is None


@pytest.mark.parametrize(
    ("kind", "values", "field"),
    [
        ("nope", {}, "kind"),
        ("sandbox", {"fail_pattern": "(unclosed"}, "fail_pattern"),
        ("sandbox", {"failure_rate": "150"}, "failure_rate"),
        ("sandbox", {"unknown_field": "x"}, "unknown_field"),
    ],
)
async def test_invalid_config_is_refused(runtime: Runtime, kind: str, values: dict[str, str], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        await _add(runtime, kind=kind, **values)
    assert caught.value.for_field(field)


async def test_duplicate_name_and_bad_base_url(runtime: Runtime) -> None:
    await _add(runtime, name="dup")
    with pytest.raises(ValidationError, match="already exists"):
        await _add(runtime, name="dup")
    async with runtime.factory() as session, session.begin():
        with pytest.raises(ValidationError) as caught:
            await svc.create_provider(session, runtime.box, kind="sandbox", name="x", values={},
                                      base_url="ftp://nowhere", actor="test")
    assert caught.value.for_field("base_url")


async def test_secrets_are_sealed_masked_and_kept_on_edit(runtime: Runtime) -> None:
    view = await _add(runtime, kind="twilio", name="tw", account_sid=SID, auth_token=TOKEN, sender="+15005550006")
    assert view.settings["auth_token"] == MASK
    async with runtime.factory() as session:
        row = await session.scalar(select(ProviderRow))
        assert TOKEN not in str(row.secrets) and TOKEN not in str(row.config)
        assert (await svc.provider_values(session, runtime.box, "tw"))["auth_token"] == ""
    async with runtime.factory() as session, session.begin():
        await svc.update_provider(session, runtime.box, "tw", actor="test",
                                  values={"account_sid": SID, "auth_token": "", "sender": "+15005550007"})
    async with runtime.factory() as session:
        spec = await svc.load_spec(session, runtime.box, "tw")
    assert spec.values["auth_token"] == TOKEN
    assert spec.values["sender"] == "+15005550007"


async def test_env_reference_is_stored_as_reference(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    await _add(runtime, kind="twilio", name="tw", account_sid=SID, auth_token="env:TW_TOKEN", sender="+15005550006")
    async with runtime.factory() as session:
        view = await svc.get_provider(session, "tw")
        assert view.settings["auth_token"] == "env:TW_TOKEN"
        spec = await svc.load_spec(session, runtime.box, "tw")
    from smsconsole.secrets import SecretError

    monkeypatch.delenv("TW_TOKEN", raising=False)
    with pytest.raises(SecretError, match="TW_TOKEN is not set"):
        svc.build_adapter(spec, client=None)  # type: ignore[arg-type]
    monkeypatch.setenv("TW_TOKEN", TOKEN)
    assert svc.build_adapter(spec, client=None).config["auth_token"] == TOKEN  # type: ignore[arg-type]


async def test_test_connection_records_health(runtime: Runtime) -> None:
    import httpx

    await _add(runtime, name="sbx")
    async with httpx.AsyncClient() as client:
        check = await svc.test_provider(runtime.factory, runtime.box, "sbx", client, actor="test")
    assert check.ok
    async with runtime.factory() as session:
        view = await svc.get_provider(session, "sbx")
    assert view.health == "healthy" and view.health_checked_at is not None


async def test_a_test_that_contacted_nothing_leaves_health_unknown(runtime: Runtime) -> None:
    """A Generic HTTP provider without a Check URL (here pointed at a host that does not exist):
    the test checks only that its request renders, so it must not call the provider healthy."""
    import httpx

    await _add(runtime, kind="generic", name="gw", url="https://unreachable.invalid/send", params="to=$$To")
    async with httpx.AsyncClient() as client:
        check = await svc.test_provider(runtime.factory, runtime.box, "gw", client, actor="test")
    assert not check.checked and "nothing was contacted" in check.detail
    async with runtime.factory() as session:
        view = await svc.get_provider(session, "gw")
    assert view.health == "unknown" and view.health_checked_at is not None
    assert view.health_detail == check.detail


async def test_missing_provider_and_provider_with_pending_messages(runtime: Runtime) -> None:
    from smsconsole.services import messages

    async with runtime.factory() as session, session.begin():
        with pytest.raises(NotFound):
            await svc.remove_provider(session, "ghost", actor="test")
    await _add(runtime, name="sbx")
    async with runtime.factory() as session, session.begin():
        await messages.queue_test_message(session, provider_name="sbx", to="+14155550123", body="hi",
                                          default_region=None, actor="test")
    async with runtime.factory() as session, session.begin():
        with pytest.raises(Conflict, match="queued"):
            await svc.remove_provider(session, "sbx", actor="test")
