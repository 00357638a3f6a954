"""Saved message templates: a named Liquid body that another system names in `POST /v1/messages`
(`{"template": "order_shipped", "data": {"order": "A-1001"}}`) instead of sending the text, so
the words live with the operator and the shop sends only the facts. A body reads the recipient's
profile (`{{ profile.name }}`, `{{ profile.properties.plan }}`) and the request's `data`.

Managed with `smsconsole message-templates …` and in Settings → Message templates; every change
goes to the audit log. A template is checked when it is saved (Liquid that compiles, at most
1,600 characters) and again when a request renders it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole import clock
from smsconsole.models.api import MessageTemplate
from smsconsole.services import audit
from smsconsole.services.errors import NotFound, ValidationError

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
NAME_HINT = "use 1 to 64 letters, digits, _ . - (starting with a letter or digit), e.g. order_shipped"
BODY_MAX = 1600
DESCRIPTION_MAX = 200


@dataclass(frozen=True)
class TemplateView:
    id: int
    name: str
    body: str
    description: str | None
    created_at: datetime
    updated_at: datetime
    updated_by: str | None


def _view(row: MessageTemplate) -> TemplateView:
    return TemplateView(row.id, row.name, row.body, row.description, row.created_at, row.updated_at, row.updated_by)


def name_problem(name: object) -> str | None:
    """Why `name` cannot be a template's name, or None."""
    if not isinstance(name, str) or not name.strip():
        return "is required, e.g. order_shipped"
    if not NAME_RE.match(name.strip()):
        return NAME_HINT
    return None


def body_problems(body: object) -> list[str]:
    """Why `body` cannot be saved: empty, too long, or Liquid that does not compile (with where)."""
    from smsconsole.services.transactional import template_problems  # lazy: Liquid's environment

    if not isinstance(body, str) or not body.strip():
        return ["is required (the message, Liquid: {{ profile.name }}, {{ data.order }})"]
    if len(body) > BODY_MAX:
        return [f"is {len(body):,} characters; at most {BODY_MAX:,}"]
    if "\x00" in body:
        return ["must not contain NUL characters"]
    return template_problems(body)


def _check(name: object, body: object, description: object) -> tuple[str, str, str | None]:
    problems: list[tuple[str, str]] = []
    if reason := name_problem(name):
        problems.append(("name", reason))
    problems += [("body", reason) for reason in body_problems(body)]
    text = description.strip() if isinstance(description, str) else None
    if description is not None and not isinstance(description, str):
        problems.append(("description", "must be text"))
    elif text and len(text) > DESCRIPTION_MAX:
        problems.append(("description", f"is {len(text)} characters; at most {DESCRIPTION_MAX}"))
    if problems:
        raise ValidationError(problems)
    assert isinstance(name, str) and isinstance(body, str)
    return name.strip(), body, text or None


async def list_templates(session: AsyncSession) -> list[TemplateView]:
    return [_view(row) for row in await session.scalars(select(MessageTemplate).order_by(MessageTemplate.name))]


async def count_templates(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(MessageTemplate)) or 0)


async def find_template(session: AsyncSession, name: str) -> MessageTemplate | None:
    return await session.scalar(select(MessageTemplate).where(MessageTemplate.name == name.strip()))


async def get_template(session: AsyncSession, name: str) -> TemplateView:
    row = await find_template(session, name)
    if row is None:
        raise NotFound(f"no message template named {name.strip()!r}")
    return _view(row)


async def create_template(session: AsyncSession, name: str, body: str, *, description: str | None = None,
                          actor: str) -> TemplateView:
    """A new template; ValidationError naming each bad field (a taken name too). The caller commits."""
    name, body, description = _check(name, body, description)
    if await find_template(session, name) is not None:
        raise ValidationError([("name", f"a template named {name!r} already exists; update it instead")])
    now = clock.now()
    row = MessageTemplate(name=name, body=body, description=description, created_at=now, updated_at=now,
                          updated_by=actor)
    session.add(row)
    await session.flush()
    await audit.record(session, actor, "message_template.create", name, length=len(body))
    return _view(row)


async def update_template(session: AsyncSession, name: str, *, body: str | None = None,
                          description: str | None = None, new_name: str | None = None, actor: str) -> TemplateView:
    """Change a template's body, description or name (None keeps it; description "" clears it)."""
    row = await find_template(session, name)
    if row is None:
        raise NotFound(f"no message template named {name.strip()!r}")
    target = row.name if new_name is None else new_name
    kept_description = row.description if description is None else description
    target, new_body, new_description = _check(target, row.body if body is None else body, kept_description)
    if target != row.name and await find_template(session, target) is not None:
        raise ValidationError([("name", f"a template named {target!r} already exists")])
    changed = [field for field, old, new in (("name", row.name, target), ("body", row.body, new_body),
                                             ("description", row.description, new_description)) if old != new]
    if changed:
        previous = row.name
        row.name, row.body, row.description = target, new_body, new_description
        row.updated_at, row.updated_by = clock.now(), actor
        await session.flush()
        await audit.record(session, actor, "message_template.update", target, fields=changed,
                           **({"previous_name": previous} if previous != target else {}))
    return _view(row)


async def delete_template(session: AsyncSession, name: str, *, actor: str) -> None:
    row = await find_template(session, name)
    if row is None:
        raise NotFound(f"no message template named {name.strip()!r}")
    await session.delete(row)
    await session.flush()
    await audit.record(session, actor, "message_template.delete", row.name)
