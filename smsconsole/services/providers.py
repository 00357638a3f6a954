"""Providers an operator connects: create, edit, list, remove, test; secrets sealed at rest."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smsconsole import clock
from smsconsole.models import Message
from smsconsole.models import Provider as ProviderRow
from smsconsole.providers import REGISTRY
from smsconsole.providers.base import (
    ConfigField,
    ConnectionCheck,
    Provider,
    http_url,
)
from smsconsole.providers.generic.request import GenericRequestError
from smsconsole.secrets import (
    SecretBox,
    SecretError,
    mask,
)
from smsconsole.services import audit
from smsconsole.services.adapters import Adapters as Adapters
from smsconsole.services.adapters import AdapterSpec as AdapterSpec
from smsconsole.services.adapters import LoadedSpec as LoadedSpec
from smsconsole.services.adapters import adapter_spec as adapter_spec
from smsconsole.services.adapters import bind_limit, holds_bind
from smsconsole.services.adapters import build_adapter as build_adapter
from smsconsole.services.adapters import enabled_specs as enabled_specs
from smsconsole.services.adapters import specs_for as specs_for
from smsconsole.services.errors import Conflict, NotFound, ValidationError
from smsconsole.services.groups import groups_using_provider
from smsconsole.services.workers import live_workers

if TYPE_CHECKING:
    import httpx

    from smsconsole.providers.generic.preview import preview_curl

log = logging.getLogger("smsconsole.providers")

# The Generic catalogue (presets, curl import, request preview) reaches screens and the CLI through this
# module only; they import no `smsconsole.providers` module themselves. Loaded on first use (PEP 562):
# a command that lists providers does not pay for the curl parser.
_CATALOGUE = {
    "CurlImport": "smsconsole.providers.generic.curl", "CurlParseError": "smsconsole.providers.generic.curl",
    "import_curl": "smsconsole.providers.generic.curl", "preview_curl": "smsconsole.providers.generic.preview",
    "PRESETS": "smsconsole.providers.generic.presets", "GenericPreset": "smsconsole.providers.generic.presets",
    "preset": "smsconsole.providers.generic.presets",
}


def __getattr__(name: str) -> Any:
    if name in _CATALOGUE:
        import importlib  # lazy: start-up

        return getattr(importlib.import_module(_CATALOGUE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

NAME_RULE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class FieldView:
    name: str
    label: str
    required: bool
    secret: bool
    kind: str
    choices: tuple[str, ...]
    default: str
    help: str
    placeholder: str
    flag: str


@dataclass(frozen=True)
class KindView:
    kind: str
    display_name: str
    description: str
    default_base_url: str
    max_batch: int
    fields: tuple[FieldView, ...]


@dataclass(frozen=True)
class ProviderView:
    id: int
    name: str
    kind: str
    display_name: str
    base_url: str | None
    enabled: bool
    health: str
    health_detail: str | None
    health_checked_at: datetime | None
    settings: dict[str, str]  # display values: secrets masked
    created_at: datetime
    updated_at: datetime
    rate_limit: float | None = None  # segments per second; None: no limit
    sender_rate_limit: float | None = None
    circuit_state: str = "closed"  # closed (in rotation) | open (out until circuit_until) | half_open
    circuit_until: datetime | None = None


def _field_view(f: ConfigField) -> FieldView:
    return FieldView(f.name, f.label, f.required, f.secret, f.kind, f.choices, f.default, f.help,
                     f.placeholder, f.flag)


def provider_kinds() -> list[KindView]:
    return [
        KindView(cls.kind, cls.display_name, cls.description, cls.default_base_url,
                 cls.capabilities.max_batch, tuple(_field_view(f) for f in cls.config_fields))
        for cls in REGISTRY.values()
    ]


def kind_view(kind: str) -> KindView:
    for view in provider_kinds():
        if view.kind == kind:
            return view
    raise ValidationError([("kind", f"unknown kind {kind!r}; known kinds: {', '.join(REGISTRY)}")])


def _view(row: ProviderRow) -> ProviderView:
    cls = REGISTRY.get(row.kind)
    display: dict[str, str] = {}
    secret_names = {f.name for f in cls.config_fields if f.secret} if cls else set()
    for name, value in (row.config or {}).items():
        display[name] = value
    for name, sealed in (row.secrets or {}).items():
        display[name] = mask(sealed if str(sealed).startswith("env:") else "x")
    for name in secret_names - display.keys():
        display[name] = ""
    return ProviderView(
        id=row.id, name=row.name, kind=row.kind, display_name=cls.display_name if cls else row.kind,
        base_url=row.base_url, enabled=row.enabled, health=row.health, health_detail=row.health_detail,
        health_checked_at=row.health_checked_at, settings=display, created_at=row.created_at,
        updated_at=row.updated_at, rate_limit=row.rate_limit, sender_rate_limit=row.sender_rate_limit,
        circuit_state=row.circuit_state or "closed", circuit_until=row.circuit_until,
    )


RateInput = float | int | str | None
KEEP: Any = object()  # update_provider: leave the stored rate limit as it is


def parse_rate(value: RateInput) -> float | None:
    """Segments per second as typed: empty means no limit; otherwise a number above 0.
    Raises ValueError with the reason."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        rate = float(value.strip() if isinstance(value, str) else value)
    except ValueError:
        raise ValueError(f"{value!r} is not a number of segments per second") from None
    if not math.isfinite(rate) or rate <= 0:
        raise ValueError("must be more than 0 segments per second (leave empty for no limit)")
    return rate


def _rates(**rates: RateInput) -> tuple[dict[str, float | None], list[tuple[str, str]]]:
    parsed: dict[str, float | None] = {}
    problems: list[tuple[str, str]] = []
    for field, value in rates.items():
        if value is KEEP:
            continue
        try:
            parsed[field] = parse_rate(value)
        except ValueError as exc:
            problems.append((field, str(exc)))
    return parsed, problems


def _validate(kind: str, name: str, values: Mapping[str, str], base_url: str | None,
              problems: list[tuple[str, str]] | None = None) -> type[Provider]:
    problems = list(problems or [])
    cls = REGISTRY.get(kind)
    if cls is None:
        raise ValidationError([("kind", f"unknown kind {kind!r}; known kinds: {', '.join(REGISTRY)}")])
    if not name:
        problems.append(("name", "is required"))
    elif not NAME_RULE.fullmatch(name):
        problems.append(("name", "must be 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit"))
    if base_url and (reason := http_url(base_url)):
        problems.append(("base_url", reason))
    problems.extend(cls.validate_config(values))
    if problems:
        raise ValidationError(problems)
    return cls


def _split(cls: type[Provider], values: Mapping[str, str], box: SecretBox) -> tuple[dict[str, str], dict[str, str]]:
    secret_names = {f.name for f in cls.config_fields if f.secret}
    plain = {k: v.strip() for k, v in values.items() if k not in secret_names and v.strip()}
    sealed = {k: box.seal(v.strip()) for k, v in values.items() if k in secret_names and v.strip()}
    return plain, sealed


async def _row(session: AsyncSession, name: str) -> ProviderRow:
    row = await session.scalar(select(ProviderRow).where(ProviderRow.name == name))
    if row is None:
        raise NotFound(f"no provider named {name!r}")
    return row


async def create_provider(
    session: AsyncSession, box: SecretBox, *, kind: str, name: str, values: Mapping[str, str],
    base_url: str | None = None, rate_limit: RateInput = None, sender_rate_limit: RateInput = None,
    actor: str,
) -> ProviderView:
    name = name.strip()
    rates, rate_problems = _rates(rate_limit=rate_limit, sender_rate_limit=sender_rate_limit)
    cls = _validate(kind, name, values, base_url, rate_problems)
    if await session.scalar(select(ProviderRow.id).where(ProviderRow.name == name)) is not None:
        raise ValidationError([("name", f"a provider named {name!r} already exists")])
    plain, sealed = _split(cls, values, box)
    now = clock.now()
    row = ProviderRow(name=name, kind=kind, base_url=base_url or None, config=plain, secrets=sealed,
                      enabled=True, health="unknown", created_at=now, updated_at=now, **rates)
    session.add(row)
    try:
        await session.flush()
    except IntegrityError:
        raise ValidationError([("name", f"a provider named {name!r} already exists")]) from None
    await audit.record(session, actor, "provider.create", name, kind=kind, fields=sorted(values),
                       **{k: v for k, v in rates.items() if v is not None})
    return _view(row)


async def update_provider(
    session: AsyncSession, box: SecretBox, name: str, *, values: Mapping[str, str],
    base_url: str | None = None, new_name: str | None = None, enabled: bool | None = None,
    rate_limit: RateInput = KEEP, sender_rate_limit: RateInput = KEEP, actor: str,
) -> ProviderView:
    """Replace a provider's settings. A secret left empty keeps its stored value; a rate limit not
    given (KEEP) keeps its stored value, an empty one removes the limit."""
    row = await _row(session, name)
    cls = REGISTRY[row.kind]
    secret_names = {f.name for f in cls.config_fields if f.secret}
    merged = dict(values)
    unreadable: list[tuple[str, str]] = []
    for secret in secret_names:
        if not (merged.get(secret) or "").strip() and secret in (row.secrets or {}):
            try:
                merged[secret] = box.open(row.secrets[secret])
            except SecretError:  # the key was lost or replaced: the operator enters the secret again
                unreadable.append((secret, f"the stored value cannot be decrypted with {box.key_source}; "
                                           "give it again"))
    if unreadable:
        raise ValidationError(unreadable)
    target_name = (new_name or name).strip()
    rates, rate_problems = _rates(rate_limit=rate_limit, sender_rate_limit=sender_rate_limit)
    _validate(row.kind, target_name, merged, base_url, rate_problems)
    if target_name != row.name and await session.scalar(
        select(ProviderRow.id).where(ProviderRow.name == target_name)
    ) is not None:
        raise ValidationError([("name", f"a provider named {target_name!r} already exists")])
    plain, sealed = _split(cls, merged, box)
    row.name, row.config, row.secrets, row.base_url = target_name, plain, sealed, base_url or None
    if enabled is not None:
        row.enabled = enabled
    for field, rate in rates.items():
        setattr(row, field, rate)
    row.health, row.health_detail, row.updated_at = "unknown", None, clock.now()
    await audit.record(session, actor, "provider.update", target_name, fields=sorted(values), **rates)
    return _view(row)


async def first_sandbox(session: AsyncSession) -> str | None:
    """The name of the oldest enabled Sandbox provider, or None."""
    return await session.scalar(select(ProviderRow.name).where(ProviderRow.kind == "sandbox",
                                                               ProviderRow.enabled.is_(True))
                                .order_by(ProviderRow.id).limit(1))


async def list_providers(session: AsyncSession) -> list[ProviderView]:
    rows = await session.scalars(select(ProviderRow).order_by(ProviderRow.name))
    return [_view(row) for row in rows]


async def get_provider(session: AsyncSession, name: str) -> ProviderView:
    return _view(await _row(session, name))


async def provider_values(session: AsyncSession, box: SecretBox, name: str) -> dict[str, str]:
    """The stored settings for an edit form: secrets as stored references, or empty (kept)."""
    row = await _row(session, name)
    values = dict(row.config or {})
    for secret, sealed in (row.secrets or {}).items():
        opened = box.open(sealed) if box.can_open(sealed) else ""  # unreadable: to be entered again
        values[secret] = opened if opened.startswith("env:") else ""
    return values


async def set_rate_limits(session: AsyncSession, name: str, *, rate_limit: RateInput = KEEP,
                          sender_rate_limit: RateInput = KEEP, actor: str) -> ProviderView:
    """Change only a provider's rate limits (segments per second; empty removes a limit)."""
    row = await _row(session, name)
    rates, problems = _rates(rate_limit=rate_limit, sender_rate_limit=sender_rate_limit)
    if problems:
        raise ValidationError(problems)
    for field, rate in rates.items():
        setattr(row, field, rate)
    row.updated_at = clock.now()
    await audit.record(session, actor, "provider.rate_limits", name, **rates)
    return _view(row)


async def remove_provider(session: AsyncSession, name: str, actor: str) -> None:
    row = await _row(session, name)
    if groups := await groups_using_provider(session, row.id):
        listed = ", ".join(map(repr, groups))
        raise Conflict(f"provider {name!r} is used by group{'s' if len(groups) > 1 else ''} {listed}; "
                       f"remove it from {'them' if len(groups) > 1 else 'it'} first")
    pending = await session.scalar(
        select(func.count()).select_from(Message)
        .where(Message.provider_id == row.id, Message.state.in_(("queued", "claimed", "sending")))
    )
    if pending:
        raise Conflict(f"provider {name!r} has {pending} message(s) queued or sending; wait for them or cancel them first")
    await session.delete(row)
    await audit.record(session, actor, "provider.remove", name, kind=row.kind)


async def load_spec(session: AsyncSession, box: SecretBox, name: str) -> AdapterSpec:
    return adapter_spec(await _row(session, name), box)


def request_preview(spec: AdapterSpec) -> str | None:
    """The exact request the provider would send for a sample message, as a curl command with
    secrets masked — for providers whose request the operator writes (Generic HTTP)."""
    from smsconsole.providers.generic.adapter import (
        GenericHttpProvider,  # lazy: start-up (no adapter at import)
    )

    if REGISTRY.get(spec.kind) is not GenericHttpProvider:
        return None
    try:
        return preview_curl(spec.values)
    except GenericRequestError as exc:
        return f"(cannot render the request: {exc})"


async def record_health(session: AsyncSession, provider_id: int, ok: bool, detail: str,
                        checked: bool = True) -> None:
    """A connection test's result as the provider's health; a test that contacted nothing leaves
    it unknown (it proved nothing either way)."""
    row = await session.get(ProviderRow, provider_id)
    if row is not None:
        row.health = ("healthy" if ok else "unhealthy") if checked else "unknown"
        row.health_detail = detail
        row.health_checked_at = clock.now()


async def test_provider(
    factory: async_sessionmaker[AsyncSession], box: SecretBox, name: str, client: httpx.AsyncClient,
    actor: str,
) -> ConnectionCheck:
    """Test a provider's connection (nothing is sent) and record its health. A provider that
    holds a bind (SMPP) whose bind limit the engine's processes already use is not bound once
    more (the SMSC would refuse a bind beyond the account's limit, or worse, drop one in use):
    the live binds' state is the answer."""
    async with factory() as session:
        spec = await load_spec(session, box, name)
        in_use = await _binds_in_use(session, spec) if holds_bind(REGISTRY.get(spec.kind)) else None
    try:
        if in_use and len(in_use) >= bind_limit(spec.values):
            check = _live_bind_check(in_use, bind_limit(spec.values))
        else:
            adapter = build_adapter(spec, client)
            check = await adapter.check_connection()
    except SecretError as exc:
        check = ConnectionCheck(ok=False, detail=str(exc))
    async with factory() as session, session.begin():
        await record_health(session, spec.id, check.ok, check.detail, check.checked)
        await audit.record(session, actor, "provider.test", name, ok=check.ok)
    return check


async def _binds_in_use(session: AsyncSession, spec: AdapterSpec) -> list[tuple[str, dict[str, Any]]]:
    """("host:pid", its bind's state) of each live engine process bound or binding to the provider
    (as of its last heartbeat); a process standing by holds no bind."""
    found = []
    for worker in await live_workers(session):
        bind = worker.binds.get(str(spec.id))
        if bind and bind.get("state") != "standby":
            found.append((f"{worker.host}:{worker.pid}", bind))
    return found


def _live_bind_check(in_use: list[tuple[str, dict[str, Any]]], limit: int) -> ConnectionCheck:
    bound = [(where, bind) for where, bind in in_use if bind.get("state") == "bound"]
    states = "; ".join(f"{bind.get('state')} on {where}" + (f" ({bind['last_error']})" if bind.get("last_error") else "")
                       for where, bind in in_use)
    detail = (f"not bound again: the engine holds {len(in_use)} of this account's {limit} bind(s) "
              f"({states}); a test bind would be one more than the bind limit allows")
    return ConnectionCheck(ok=bool(bound), detail=detail)
