"""The ingestion API: `POST /v1/profiles` and `POST /v1/events`, one object or a batch, with an
API key. A batch is all or nothing: every item is validated first, and one bad item answers 422
listing every problem while nothing is written; a good batch is written in one transaction.

Profiles: {"user_id", "phone", "name", "timezone", "country", "optin_at", "optout_at",
"properties": {...}}; custom attributes go in "properties", unknown top-level fields are refused.
Events: {"user_id" | "phone", "name", "at", "properties": {...}}; `sms_optin` / `sms_optout`
events also subscribe / unsubscribe the person (forward in time only, with a consent record)."""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from smsconsole.listener import ApiError, Limits, ListenerContext
from smsconsole.services import api_keys
from smsconsole.services.api_keys import ApiKeyView
from smsconsole.services.profiles import (
    PROFILE_FIELDS,
    AudienceDefaults,
    PreparedEvent,
    PreparedProfile,
    PropertyTypeConflict,
    RowError,
    audience_defaults,
    prepare_event,
    prepare_profile,
    property_types,
    record_events,
    upsert_profiles,
)

log = logging.getLogger("smsconsole.listener")

SOURCE = "api"  # consent records written through this API
PROFILE_API_FIELDS = (*PROFILE_FIELDS, "properties")
EVENT_API_FIELDS = ("user_id", "phone", "name", "at", "properties")
# Field names other APIs use, to point a caller at ours.
_HINTS = {"event": "name", "timestamp": "at", "time": "at", "attributes": "properties", "traits": "properties",
          "userId": "user_id", "phone_number": "phone", "email": "properties"}

T = TypeVar("T")
Problem = dict[str, Any]  # {"index": int | None, "field": str | None, "reason": str}
# Characters no database here stores as text: NUL (PostgreSQL refuses it) and unpaired surrogates
# (JSON can spell "\udc80", which is no UTF-8). A request holding one is refused, naming the field.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def routes(context: ListenerContext) -> list[Route]:
    async def profiles(request: Request) -> Response:
        return await _ingest_profiles(request, context)

    async def events(request: Request) -> Response:
        return await _ingest_events(request, context)

    return [Route("/profiles", profiles, methods=["POST"]), Route("/events", events, methods=["POST"])]


# --- profiles ----------------------------------------------------------------------------------


async def _ingest_profiles(request: Request, context: ListenerContext) -> Response:
    await _require_key(request, context)
    items = await _read_items(request, context.limits, "profiles")
    with _database_errors():
        async with context.factory() as session:
            defaults = await audience_defaults(session)
            types = await property_types(session, "profile")
    prepared, problems = await run_in_threadpool(_prepare_profiles, items, defaults, types)
    if problems:
        raise _invalid(problems, len(items), "profiles")

    async def write(session: AsyncSession) -> Any:
        return await upsert_profiles(session, prepared, source=SOURCE, defaults=defaults)

    result = await _write(context, write, len(items), "profiles")
    warnings = [{"index": i, "field": "phone", "reason": f"{p.phone_reason or 'is not valid'}; kept as invalid"}
                for i, p in enumerate(prepared) if p.phone_status == "invalid"]
    return JSONResponse({"created": result.created, "updated": result.updated, "unchanged": result.unchanged,
                         "warnings": warnings}, status_code=201 if result.created else 200)


def _prepare_profiles(items: Sequence[Any], defaults: AudienceDefaults,
                      types: Mapping[str, str]) -> tuple[list[PreparedProfile], list[Problem]]:
    prepared: list[PreparedProfile] = []
    problems: list[Problem] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            problems.append(_problem(index, None, "must be a JSON object"))
            continue
        unstorable = _unstorable(index, item)
        if unstorable:
            problems.extend(unstorable)
            continue
        found = _unknown_fields(index, item, PROFILE_API_FIELDS)
        values = {k: v for k, v in item.items() if k in PROFILE_FIELDS}
        properties = item.get("properties")
        if properties is not None and not isinstance(properties, dict):
            found.append(_problem(index, "properties", "must be an object"))
        elif properties:
            for name, value in properties.items():
                if name in PROFILE_API_FIELDS:
                    found.append(_problem(index, f"properties.{name}", "is a profile field; set it at the top level"))
                else:
                    values[name] = value
        try:
            profile = prepare_profile(values, defaults, types)
        except RowError as exc:
            found.extend(_problem(index, field if field in PROFILE_FIELDS else f"properties.{field}", reason)
                         for field, reason in exc.problems)
        else:
            if not found:
                prepared.append(profile)
        problems.extend(found)
    return prepared, problems


# --- events ------------------------------------------------------------------------------------


async def _ingest_events(request: Request, context: ListenerContext) -> Response:
    await _require_key(request, context)
    items = await _read_items(request, context.limits, "events")
    names = sorted({item["name"].strip() for item in items
                    if isinstance(item, dict) and isinstance(item.get("name"), str) and item["name"].strip()
                    and not _UNSTORABLE.search(item["name"])})
    with _database_errors():
        async with context.factory() as session:
            defaults = await audience_defaults(session)
            types = {name: await property_types(session, f"event:{name}") for name in names}
    prepared, problems = await run_in_threadpool(_prepare_events, items, defaults, types)
    if problems:
        raise _invalid(problems, len(items), "events")

    async def write(session: AsyncSession) -> Any:
        return await record_events(session, prepared, source=SOURCE, defaults=defaults)

    result = await _write(context, write, len(items), "events")
    if result.queued and context.poke is not None:  # live campaigns queued messages: send them now
        context.poke()
    return JSONResponse({"recorded": result.recorded, "duplicates": result.duplicates,
                         "profiles_created": result.profiles_created},
                        status_code=201 if result.recorded else 200)


def _prepare_events(items: Sequence[Any], defaults: AudienceDefaults,
                    types: Mapping[str, Mapping[str, str]]) -> tuple[list[PreparedEvent], list[Problem]]:
    prepared: list[PreparedEvent] = []
    problems: list[Problem] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            problems.append(_problem(index, None, "must be a JSON object"))
            continue
        unstorable = _unstorable(index, item)
        if unstorable:
            problems.extend(unstorable)
            continue
        found = _unknown_fields(index, item, EVENT_API_FIELDS)
        values = {k: v for k, v in item.items() if k in EVENT_API_FIELDS}
        if values.get("properties") is None:
            values["properties"] = {}  # else the service would read top-level fields as properties
        name = item.get("name")
        try:
            event = prepare_event(values, defaults, types.get(name.strip()) if isinstance(name, str) else None)
        except RowError as exc:
            found.extend(_problem(index, field if field in EVENT_API_FIELDS else f"properties.{field}", reason)
                         for field, reason in exc.problems)
        else:
            if not found:
                prepared.append(event)
        problems.extend(found)
    return prepared, problems


# --- shared ------------------------------------------------------------------------------------


def _problem(index: int | None, field: str | None, reason: str) -> Problem:
    return {"index": index, "field": field, "reason": reason}


def _unstorable_reason(text: str) -> str | None:
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "contains a NUL character (\\u0000), which cannot be stored; remove it"
    return (f"contains an unpaired surrogate (\\u{ord(found.group()):04x}), which is not valid Unicode text; "
            "send the character itself or a valid surrogate pair")


def _unstorable(index: int, item: Mapping[str, Any]) -> list[Problem]:
    """Every field of `item` holding a NUL or an unpaired surrogate, in a key or anywhere in its
    value, named without echoing the bad text (a lone surrogate cannot even be sent back)."""
    found: list[Problem] = []

    def walk(value: Any) -> str | None:
        if isinstance(value, str):
            return _unstorable_reason(value)
        if isinstance(value, dict):
            for key, inner in value.items():
                reason = _unstorable_reason(key) or walk(inner)
                if reason:
                    return reason
        if isinstance(value, list):
            for inner in value:
                reason = walk(inner)
                if reason:
                    return reason
        return None

    for name, value in item.items():
        key_reason = _unstorable_reason(name)
        if key_reason:
            found.append(_problem(index, None, f"a field name {key_reason}"))
        elif name == "properties" and isinstance(value, dict):
            for key, inner in value.items():
                key_reason = _unstorable_reason(key)
                if key_reason:
                    found.append(_problem(index, "properties", f"a property name {key_reason}"))
                elif reason := walk(inner):
                    found.append(_problem(index, f"properties.{key}", reason))
        elif reason := walk(value):
            found.append(_problem(index, name, reason))
    return found


def _unknown_fields(index: int, item: Mapping[str, Any], known: Sequence[str]) -> list[Problem]:
    found = []
    for name in item:
        if name not in known:
            hint = _HINTS.get(name)
            reason = (f"is not a field; did you mean {hint!r}?" if hint and hint != "properties"
                      else "is not a field; put custom attributes in \"properties\"")
            found.append(_problem(index, name, reason))
    return found


def _invalid(problems: list[Problem], count: int, plural: str) -> ApiError:
    bad = len({p["index"] for p in problems})
    return ApiError(422, "invalid", f"{bad} of {count} {plural} invalid; nothing was written", errors=problems)


def _shape_error(field: str | None, reason: str) -> ApiError:
    return ApiError(422, "invalid", f"the body is not a valid request: {reason}",
                    errors=[_problem(None, field, reason)])


async def _require_key(request: Request, context: ListenerContext) -> ApiKeyView:
    header = request.headers.get("authorization")
    presented: str | None
    if header is not None:
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() != "bearer":
            raise _unauthorized("use Authorization: Bearer <key> (or X-API-Key: <key>)", error="invalid_request")
        presented = value.strip()
    else:
        presented = request.headers.get("x-api-key", "").strip()
    if not presented:
        raise _unauthorized("missing API key: send Authorization: Bearer <key>; keys are created in Settings")
    with _database_errors():
        async with context.factory() as session, session.begin():
            key = await api_keys.authenticate(session, presented)
    if key is None:
        raise _unauthorized("invalid or revoked API key", error="invalid_token")
    request.state.key_prefix = key.prefix
    return key


def _unauthorized(message: str, error: str | None = None) -> ApiError:
    challenge = 'Bearer realm="smsconsole"' + (f', error="{error}"' if error else "")
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": challenge})


async def _read_items(request: Request, limits: Limits, plural: str) -> list[Any]:
    """The body's items: one object, {"<plural>": [...]}, or a bare array."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise ApiError(415, "unsupported_media_type",
                       f"send a JSON body with Content-Type: application/json (got {media_type or 'none'!r})")
    data = _parse_json(await _read_body(request, limits.max_body_bytes))
    if isinstance(data, dict) and plural in data:
        extra = next((k for k in data if k != plural), None)
        if extra is not None:
            raise _shape_error(extra, f"is not allowed next to {plural!r}")
        data = data[plural]
        if not isinstance(data, list):
            raise _shape_error(plural, "must be an array")
    items = [data] if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise _shape_error(None, f"must be a JSON object, an array, or {{{plural!r}: [...]}}")
    if not items:
        raise _shape_error(plural, f"is empty; send at least one of the {plural}")
    if len(items) > limits.max_batch:
        raise ApiError(413, "too_large",
                       f"at most {limits.max_batch} {plural} per request, got {len(items)}; split the batch")
    request.state.items = len(items)
    return items


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it is over `limit` bytes (declared or streamed). Starlette's
    own limit answers in plain text and replaces earlier answers, so this one stays JSON."""
    too_large = ApiError(413, "too_large", f"the body is over {limit} bytes; send smaller batches")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse_json(body: bytes) -> Any:
    if not body.strip():
        raise ApiError(400, "malformed_json", "the body is empty; send a JSON object or array")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, "malformed_json", f"the body is not UTF-8 (byte {exc.start})", position=exc.start) from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ApiError(400, "malformed_json", f"{exc.msg} at line {exc.lineno}, column {exc.colno}",
                       line=exc.lineno, column=exc.colno, position=exc.pos) from None
    except ValueError as exc:
        raise ApiError(400, "malformed_json", str(exc)) from None
    except RecursionError:
        raise ApiError(400, "malformed_json", "the body is nested too deeply") from None


@contextlib.contextmanager
def _database_errors() -> Iterator[None]:
    try:
        yield
    except (OperationalError, InterfaceError, OSError) as exc:
        log.warning("database unavailable for an API request: %s", type(exc).__name__)
        raise ApiError(503, "unavailable", "the database is busy or unreachable; retry shortly",
                       headers={"Retry-After": "1"}) from None


async def _write(context: ListenerContext, write: Callable[[AsyncSession], Awaitable[T]], count: int,
                 plural: str) -> T:
    """Run `write` in one transaction; once more if a concurrent request created the same person.
    A value whose property type a concurrent request decided otherwise fails the batch as a 422."""
    for attempt in (1, 2):
        try:
            with _database_errors():
                async with context.factory() as session, session.begin():
                    return await write(session)
        except PropertyTypeConflict as exc:
            raise _invalid([_problem(index, f"properties.{name}", reason) for index, name, reason in exc.rows],
                           count, plural) from None
        except IntegrityError:
            if attempt == 2:
                raise ApiError(409, "conflict", "a concurrent request wrote the same profiles; retry") from None
    raise AssertionError("unreachable")
