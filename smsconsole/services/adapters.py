"""Adapters as the engine holds them: a provider's spec (settings, secrets opened), the adapter
built from it with its secrets scrubbed from every answer, and the engine's cache of one adapter per
provider (which also keeps the long-lived binds of SMPP providers)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smsconsole.models import Provider as ProviderRow
from smsconsole.providers import REGISTRY
from smsconsole.providers.base import (
    CallbackRejected,
    ConnectionCheck,
    PollPage,
    Provider,
    ProviderError,
    SendOutcome,
    StatusReport,
)
from smsconsole.secrets import (
    REDACTOR,
    Scrubber,
    SecretBox,
    SecretError,
    resolve,
    secret_forms,
)

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("smsconsole.providers")

DEFAULT_BIND_LIMIT = 1  # an SMSC account commonly allows one bind; the operator raises it per provider
# The engine's bind limits (engine/binds.take_slots): given provider id → limit, the ids this process may bind.
Slots = Callable[[dict[int, int]], Awaitable[set[int]]]


@dataclass(frozen=True)
class AdapterSpec:
    """What the engine needs to build an adapter, secrets opened (not yet resolved)."""

    id: int
    name: str
    kind: str
    base_url: str | None
    enabled: bool
    values: dict[str, str]
    updated_at: datetime


def adapter_spec(row: ProviderRow, box: SecretBox) -> AdapterSpec:
    values = dict(row.config or {})
    for secret, sealed in (row.secrets or {}).items():
        values[secret] = box.open(sealed)
    return AdapterSpec(row.id, row.name, row.kind, row.base_url, row.enabled, values, row.updated_at)


def build_adapter(spec: AdapterSpec, client: httpx.AsyncClient | None) -> Provider:
    """An adapter with env references resolved, whose answers carry no secret: a gateway may echo
    its request (URL, headers, body) into an error, so every error, outcome, check and report
    leaving the adapter has the resolved secrets (as sent: raw, URL-encoded, JSON-escaped,
    Basic auth) replaced by "***", and the log redacts them. Raises SecretError when an env
    reference is unset."""
    cls = REGISTRY[spec.kind]
    secret_names = {f.name for f in cls.config_fields if f.secret}
    resolved = {}
    for key, value in spec.values.items():
        resolved[key] = resolve(value) if key in secret_names else value
    forms = secret_forms([resolved[k] for k in secret_names if k in resolved],
                         companions=[v for k, v in resolved.items() if k not in secret_names])
    REDACTOR.register(*forms)
    adapter = cls(resolved, client=client, base_url=spec.base_url)
    scrub = Scrubber(forms)
    if scrub:
        _scrub_answers(adapter, scrub)
    return adapter


_ASYNC_CALLS = ("send", "check_connection", "fetch_statuses", "poll_statuses", "poll_inbound")
_CALLBACKS = ("status_callback", "inbound_callback")


def _scrub_answers(adapter: Provider, scrub: Scrubber) -> None:
    """Wrap the adapter's calls (on the instance, so its class and capabilities stay as they are)
    so that nothing they return or raise carries a secret."""
    for name in _ASYNC_CALLS:
        setattr(adapter, name, _scrubbed_call(getattr(adapter, name), scrub))
    for name in _CALLBACKS:
        setattr(adapter, name, _scrubbed_callback(getattr(adapter, name), scrub))


def _scrubbed_call(call: Callable[..., Awaitable[Any]], scrub: Scrubber) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(call)
    async def scrubbed(*args: Any, **kwargs: Any) -> Any:
        try:
            result = await call(*args, **kwargs)
        except ProviderError as exc:
            _scrub_error(exc, scrub)
            raise
        return _scrub_value(result, scrub)

    return scrubbed


def _scrubbed_callback(call: Callable[..., Any], scrub: Scrubber) -> Callable[..., Any]:
    @functools.wraps(call)
    def scrubbed(*args: Any, **kwargs: Any) -> Any:
        try:
            result = call(*args, **kwargs)
        except CallbackRejected as exc:
            exc.reason = scrub(exc.reason) or ""
            exc.args = (exc.reason,)
            raise
        return _scrub_value(result, scrub)

    return scrubbed


def _scrub_error(error: ProviderError, scrub: Scrubber) -> ProviderError:
    """The error itself, its message and code scrubbed (in place: outcomes of a batch share one)."""
    error.message = scrub(error.message) or ""
    error.code = scrub(error.code)
    error.args = (error.message,)
    return error


def _scrub_value(value: Any, scrub: Scrubber) -> Any:
    if isinstance(value, list):
        return [_scrub_value(item, scrub) for item in value]
    if isinstance(value, SendOutcome):
        if value.error is not None:
            _scrub_error(value.error, scrub)
        status = scrub(value.provider_status)
        return value if status == value.provider_status else dataclasses.replace(value, provider_status=status)
    if isinstance(value, ConnectionCheck):
        return dataclasses.replace(value, detail=scrub(value.detail) or "")
    if isinstance(value, StatusReport):
        return dataclasses.replace(value, reason=scrub(value.reason), error_code=scrub(value.error_code),
                                   provider_status=scrub(value.provider_status) or "")
    if isinstance(value, PollPage):
        return dataclasses.replace(value, reports=tuple(_scrub_value(r, scrub) for r in value.reports))
    return value


# A provider as the engine loads it: (id, name, its spec or the SecretError that kept it closed).
LoadedSpec = tuple[int, str, AdapterSpec | SecretError]


def _loaded(row: ProviderRow, box: SecretBox) -> LoadedSpec:
    try:
        return row.id, row.name, adapter_spec(row, box)
    except SecretError as exc:
        return row.id, row.name, exc


async def enabled_specs(session: AsyncSession, box: SecretBox) -> list[LoadedSpec]:
    """Every enabled provider, its secrets opened."""
    rows = await session.scalars(select(ProviderRow).where(ProviderRow.enabled.is_(True)))
    return [_loaded(row, box) for row in rows]


async def specs_for(session: AsyncSession, box: SecretBox, provider_ids: Collection[int]) -> list[LoadedSpec]:
    """The providers with these ids (enabled or not), their secrets opened."""
    if not provider_ids:
        return []
    rows = await session.scalars(select(ProviderRow).where(ProviderRow.id.in_(provider_ids)))
    return [_loaded(row, box) for row in rows]


class Adapters:
    """The one adapter cache of the engine, shared by the dispatcher, the pollers, reconcile and the
    listener's callbacks: one adapter per provider, built on first use (`build_adapter`: secrets
    resolved and scrubbed from its answers) and built again when the provider's row changed (its
    `updated_at`: settings, secrets, base URL, name).

    An adapter that holds a bind (SMPP: it has `attach` and `start`) is given, when the cache has a
    `factory`, the sink that stores what its bind receives (services/smpp.py) and binds at once;
    the adapter it replaces, or one whose provider is no longer enabled (`bind_enabled`), is
    unbound. `aclose()` unbinds them all (the end of an engine tenure)."""

    def __init__(self, box: SecretBox | None, client: httpx.AsyncClient | None,
                 factory: async_sessionmaker[AsyncSession] | None = None, slots: Slots | None = None) -> None:
        self.box = box
        self.client = client
        self.factory = factory
        self.slots = slots
        # With `slots` (the engine's bind limits, engine/binds.py): the providers this process may
        # bind (a slot of their limit is ours) and those it may not (their slots are held by others).
        self.allowed: set[int] | None = set() if slots is not None else None
        self.blocked: set[int] = set()
        self._built: dict[int, tuple[datetime, Provider]] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._binding = asyncio.Lock()  # the heartbeat's and the dispatcher's bind_enabled, one at a time

    def may_bind(self, provider_id: int) -> bool:
        return self.allowed is None or provider_id in self.allowed

    def sendable(self, spec: AdapterSpec) -> bool:
        """Whether this process may send through the provider: any provider that holds no bind,
        one that does only while this process holds a slot of its bind limit."""
        cls = REGISTRY.get(spec.kind)
        return cls is None or not holds_bind(cls) or self.may_bind(spec.id)

    def get(self, spec: AdapterSpec) -> Provider:
        """The adapter for `spec`. Raises SecretError when an env reference is unset."""
        cached = self._built.get(spec.id)
        if cached and cached[0] == spec.updated_at:
            return cached[1]
        adapter = build_adapter(spec, self.client)
        if cached:
            self._retire(cached[1])
        self._built[spec.id] = (spec.updated_at, adapter)
        if self.factory is not None and holds_bind(adapter):
            from smsconsole.services.smpp import (
                receipt_sink,  # lazy: only SMPP providers need it
            )

            adapter.attach(receipt_sink(self.factory, spec.id, spec.name))  # type: ignore[attr-defined]
            if self.may_bind(spec.id):
                with contextlib.suppress(RuntimeError):  # no running loop: it binds at its first send
                    adapter.start()  # type: ignore[attr-defined]
        return adapter

    async def named(self, session: AsyncSession, name: str) -> tuple[int, Provider] | None:
        """The id and adapter of the provider called `name`, or None when there is none; its
        secrets are opened only when its adapter is built again. Raises SecretError when they
        cannot be."""
        row = await session.scalar(select(ProviderRow).where(ProviderRow.name == name))
        if row is None:
            return None
        cached = self._built.get(row.id)
        if cached and cached[0] == row.updated_at:
            return row.id, cached[1]
        if self.box is None:
            raise SecretError("the listener has no secret key to open provider settings")
        return row.id, self.get(adapter_spec(row, self.box))

    async def bind_enabled(self, session: AsyncSession) -> None:
        """Bind every enabled provider that holds a bind (and re-bind one whose settings changed);
        unbind those no longer enabled. The engine runs this at the start of a tenure and every
        heartbeat, so a bind receives even before anything is sent through it. With `slots`, only
        the providers of which this process holds a slot of the bind limit are bound; a bind whose
        slot was lost (its limit lowered) is unbound."""
        if self.box is None:
            return
        async with self._binding:
            await self._bind_enabled(session)

    async def _bind_enabled(self, session: AsyncSession) -> None:
        assert self.box is not None
        found: list[tuple[int, str, AdapterSpec | SecretError]] = []
        limits: dict[int, int] = {}
        for provider_id, name, spec in await enabled_specs(session, self.box):
            cls = REGISTRY.get(spec.kind) if isinstance(spec, AdapterSpec) else None
            if cls is None or not holds_bind(cls):
                continue
            found.append((provider_id, name, spec))
            limits[provider_id] = bind_limit(spec.values)  # type: ignore[union-attr]
        if self.slots is not None:
            self.allowed = await self.slots(limits)
            self.blocked = set(limits) - self.allowed
        for provider_id, name, spec in found:
            if not self.may_bind(provider_id):
                self._drop(provider_id)
                continue
            try:
                self.get(spec).start()  # type: ignore[arg-type, attr-defined]
            except SecretError as exc:
                log.error("provider %s cannot bind: %s", name, exc)
        for provider_id, (_, adapter) in list(self._built.items()):
            if holds_bind(adapter) and provider_id not in limits:
                self._drop(provider_id)

    def _drop(self, provider_id: int) -> None:
        cached = self._built.get(provider_id)
        if cached is not None and holds_bind(cached[1]):
            del self._built[provider_id]
            self._retire(cached[1])

    def bind_statuses(self) -> dict[int, Any]:
        """provider id → its bind's state (an SMPP `BindStatus`: state, window use, last error),
        for the providers of this cache that hold a bind."""
        statuses = {provider_id: adapter.bind_status  # type: ignore[attr-defined]
                    for provider_id, (_, adapter) in self._built.items() if holds_bind(adapter)}
        if self.blocked:
            from smsconsole.providers.smpp.session import (  # lazy: SMPP only
                BindState,
                BindStatus,
            )
        for provider_id in self.blocked:
            status = statuses.get(provider_id)
            statuses[provider_id] = BindStatus(BindState.STANDBY, status.window_size if status else 0, 0, None, None, 0)
        return statuses

    def _retire(self, adapter: Provider) -> None:
        if holds_bind(adapter):
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no running loop: nothing was ever bound
                return
            task = loop.create_task(adapter.aclose())  # type: ignore[attr-defined]
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        """Unbind every bind this cache holds."""
        for provider_id, (_, adapter) in list(self._built.items()):
            if holds_bind(adapter):
                del self._built[provider_id]
                self._retire(adapter)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)


def bind_limit(values: Mapping[str, str]) -> int:
    """How many engine processes may bind to the provider at once (its `bind_limit` setting, 1
    when unset or unreadable)."""
    try:
        return max(1, int(str(values.get("bind_limit") or DEFAULT_BIND_LIMIT).strip()))
    except ValueError:
        return DEFAULT_BIND_LIMIT


def holds_bind(adapter: object) -> bool:
    """An adapter (or adapter class) that keeps a long-lived connection: the SMPP kind."""
    return all(callable(getattr(adapter, name, None)) for name in ("attach", "start", "aclose"))
