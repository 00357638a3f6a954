"""Saved message templates: checked when saved (name, Liquid, length), named by `POST /v1/messages`
instead of a body (rendered with the profile and the request's data, 422 naming `template` when it
is unknown or fails), kept in the audit log, and managed with `smsconsole message-templates`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from smsconsole.models import AuditEntry, Message
from smsconsole.runtime import Runtime
from smsconsole.services import message_templates as templates
from smsconsole.services.errors import NotFound, ValidationError
from tests.conftest import make_config
from tests.integration.test_messages_api import ANN, Api, add_person, api, count, fields  # noqa: F401 (fixture)

SHIPPED = "Hi {{ profile.name }}, order {{ data.order }} has shipped: {{ data.tracking | default: 'soon' }}"


async def _save(rt: Runtime, name: str = "order_shipped", body: str = SHIPPED) -> templates.TemplateView:
    async with rt.factory() as session, session.begin():
        return await templates.create_template(session, name, body, description="after dispatch", actor="test")


async def test_a_template_is_saved_updated_renamed_and_deleted_with_audit(runtime: Runtime) -> None:
    saved = await _save(runtime)
    assert (saved.name, saved.body, saved.description, saved.updated_by) == ("order_shipped", SHIPPED,
                                                                             "after dispatch", "test")
    async with runtime.factory() as session, session.begin():
        changed = await templates.update_template(session, "order_shipped", body="Order {{ data.order }} shipped",
                                                  new_name="shipped", description="", actor="ops")
    assert (changed.name, changed.body, changed.description, changed.updated_by) == (
        "shipped", "Order {{ data.order }} shipped", None, "ops")
    async with runtime.factory() as session:
        assert [v.name for v in await templates.list_templates(session)] == ["shipped"]
        with pytest.raises(NotFound):
            await templates.get_template(session, "order_shipped")
    async with runtime.factory() as session, session.begin():
        await templates.delete_template(session, "shipped", actor="ops")
    async with runtime.factory() as session:
        assert await templates.count_templates(session) == 0
        actions = list(await session.scalars(select(AuditEntry.action).where(
            AuditEntry.action.like("message_template.%")).order_by(AuditEntry.id)))
    assert actions == ["message_template.create", "message_template.update", "message_template.delete"]


@pytest.mark.parametrize(("name", "body", "field", "words"), [
    ("", SHIPPED, "name", "is required"),
    ("order shipped", SHIPPED, "name", "letters, digits"),
    ("x" * 65, SHIPPED, "name", "1 to 64"),
    ("ok", "   ", "body", "is required"),
    ("ok", "x" * 1601, "body", "at most 1,600"),
    ("ok", "Hi {{ profile.name | shout }}", "body", "shout"),
    ("ok", "Hi {% if %}", "body", "line 1"),
])
async def test_bad_templates_are_refused_naming_the_field(runtime: Runtime, name: str, body: str, field: str,
                                                          words: str) -> None:
    async with runtime.factory() as session, session.begin():
        with pytest.raises(ValidationError) as caught:
            await templates.create_template(session, name, body, actor="test")
    assert any(f == field and words in reason for f, reason in caught.value.problems), caught.value.problems
    async with runtime.factory() as session:
        assert await templates.count_templates(session) == 0


async def test_a_taken_name_is_refused(runtime: Runtime) -> None:
    await _save(runtime)
    await _save(runtime, "other", "Hi")
    async with runtime.factory() as session, session.begin():
        with pytest.raises(ValidationError) as caught:
            await templates.create_template(session, "order_shipped", "Hi", actor="test")
        assert caught.value.problems == [("name", "a template named 'order_shipped' already exists; update it instead")]
        with pytest.raises(ValidationError):
            await templates.update_template(session, "other", new_name="order_shipped", actor="test")


async def test_the_api_sends_a_saved_template_with_the_profile_and_data(runtime: Runtime, api: Api) -> None:
    await add_person(runtime)
    await _save(runtime)
    response = await api.send({"to": {"user_id": "ann"}, "template": "order_shipped", "data": {"order": "A-17"}})
    assert response.status_code == 201, response.text
    assert response.json()["body"] == "Hi Ann, order A-17 has shipped: soon"
    [row] = list(await _messages(runtime))
    assert (row.to_number, row.body, row.kind) == (ANN, "Hi Ann, order A-17 has shipped: soon", "transactional")


async def test_the_api_names_the_template_when_it_cannot_be_used(runtime: Runtime, api: Api) -> None:
    await add_person(runtime)
    response = await api.send({"to": {"user_id": "ann"}, "template": "order_shipped"})
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "template", "reason": "no saved template named 'order_shipped'"}]
    response = await api.send({"to": {"user_id": "ann"}, "template": "order_shipped", "body": "Hi"})
    assert fields(response) == {"template"} and "not both" in response.json()["errors"][0]["reason"]
    response = await api.send({"to": {"user_id": "ann"}, "template": "bad name!"})
    assert fields(response) == {"template"}
    response = await api.send({"to": {"user_id": "ann"}, "template": 7})
    assert fields(response) == {"template"}
    assert await count(runtime, Message) == 0


async def test_a_template_that_fails_to_render_is_a_422_on_template(runtime: Runtime, api: Api) -> None:
    await add_person(runtime)
    await _save(runtime, "empty", "{{ data.nothing }}")
    response = await api.send({"to": {"user_id": "ann"}, "template": "empty"})
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "template", "reason": "the message came out empty"}]
    assert await count(runtime, Message) == 0


async def _messages(rt: Runtime) -> list[Message]:
    async with rt.factory() as session:
        return list(await session.scalars(select(Message).order_by(Message.id)))


def test_cli_manages_and_previews_templates(cli, tmp_path: Path, database_url: str) -> None:  # type: ignore[no-untyped-def]
    body_file = tmp_path / "body.txt"
    body_file.write_text("Hi {{ profile.name }}, your code is {{ data.code }}", encoding="utf-8")
    status, out, _ = cli("message-templates", "list")
    assert status == 0 and "no message templates" in out
    status, out, _ = cli("message-templates", "add", "otp", "--body-file", str(body_file), "--description", "codes")
    assert status == 0 and "saved message template otp" in out
    status, out, err = cli("message-templates", "add", "otp", "--body", "x")
    assert status != 0 and "already exists" in (out + err) and len((out + err).strip().splitlines()) == 1
    status, out, err = cli("message-templates", "add", "bad", "--body", "{{ x | shout }}")
    assert status != 0 and "body" in (out + err) and "Traceback" not in err
    status, out, err = cli("message-templates", "add", "nofile", "--body-file", str(tmp_path / "missing.txt"))
    assert status != 0 and "--body-file: no file" in (out + err)

    async def seed() -> None:
        rt = await Runtime.open(make_config(tmp_path, database_url))
        try:
            await add_person(rt)
        finally:
            await rt.close()

    asyncio.run(seed())
    status, out, _ = cli("message-templates", "preview", "otp", "--user-id", "ann", "--data", '{"code": "4711"}')
    assert status == 0 and "Hi Ann, your code is 4711" in out and ANN in out
    status, out, err = cli("message-templates", "preview", "otp", "--user-id", "ann", "--data", "[1]")
    assert status != 0 and "--data: must be a JSON object" in (out + err)
    status, out, _ = cli("message-templates", "update", "otp", "--rename", "one_time_code")
    assert status == 0 and "updated message template one_time_code" in out
    status, out, _ = cli("message-templates", "list", "--json")
    [listed] = json.loads(out)
    assert listed["name"] == "one_time_code" and listed["description"] == "codes"
    status, out, _ = cli("message-templates", "show", "one_time_code")
    assert status == 0 and "your code is {{ data.code }}" in out
    status, out, err = cli("message-templates", "remove", "otp")
    assert status != 0 and "no message template named 'otp'" in (out + err)
    status, out, _ = cli("message-templates", "remove", "one_time_code")
    assert status == 0
