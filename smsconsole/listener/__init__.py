"""The engine's embedded HTTP listener: an ASGI app (Starlette) served by uvicorn inside the
engine's event loop while it holds the lease. Each area (ingestion today, provider callbacks
next) contributes a list of routes built from the `ListenerContext`; `app.create_app` mounts them.

This package never imports Textual."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

if TYPE_CHECKING:
    from smsconsole.services.providers import Adapters


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 1_048_576  # 1 MiB, enforced while the body streams in
    max_batch: int = 1000  # items per request


@dataclass(frozen=True)
class ListenerContext:
    """What the routes of every area may use."""

    factory: async_sessionmaker[AsyncSession]
    adapters: Adapters  # the providers' adapters, for the callback areas' signature checks and parsing
    engine_state: Callable[[], str] | None = None  # for /healthz
    limits: Limits = field(default_factory=Limits)
    poke: Callable[[], None] | None = None  # wakes the dispatcher: something was queued (a live trigger)


class ApiError(Exception):
    """An answer other than success: becomes a JSON body {"error": code, "message": ..., **extra}."""

    def __init__(self, status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None,
                 **extra: object) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = dict(headers or {})
        self.extra = extra

    def body(self) -> dict[str, object]:
        return {"error": self.code, "message": self.message, **self.extra}
