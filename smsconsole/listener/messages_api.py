"""The transactional send API: `POST /v1/messages` queues one message to one person (201 with the
message), `GET /v1/messages/{id}` reads it back with its attempts and escalation steps. Both need an
API key. An `Idempotency-Key` header makes a retry safe: the same key (per API key) within 24 hours
answers the first answer again and sends nothing new; the unique (API key, key) pair in the
database holds that under concurrent retries too."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from smsconsole.listener import ApiError, ListenerContext
from smsconsole.listener.ingest import (
    _database_errors,
    _parse_json,
    _read_body,
    _require_key,
    _unstorable,
)
from smsconsole.services import transactional
from smsconsole.services.errors import NotFound, ValidationError
from smsconsole.services.transactional import (
    IdempotencyMismatch,
    StoredAnswer,
    Suppressed,
    TransactionalView,
)

# Printable ASCII without spaces at the ends: what clients put in such a header (UUIDs, order ids).
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")
_MESSAGE_ID = re.compile(r"[0-9]{1,18}")


def routes(context: ListenerContext) -> list[Route]:
    async def create(request: Request) -> Response:
        return await _create(request, context)

    async def read(request: Request) -> Response:
        return await _read(request, context)

    return [Route("/messages", create, methods=["POST"]), Route("/messages/{message_id}", read, methods=["GET"])]


# --- POST /v1/messages -------------------------------------------------------------------------


async def _create(request: Request, context: ListenerContext) -> Response:
    key = await _require_key(request, context)
    idempotency_key = _idempotency_key(request)
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise ApiError(415, "unsupported_media_type",
                       f"send a JSON body with Content-Type: application/json (got {media_type or 'none'!r})")
    data = _parse_json(await _read_body(request, context.limits.max_body_bytes))
    if not isinstance(data, dict):
        raise _invalid([(None, "must be a JSON object")])
    unstorable = _unstorable(0, data)
    if unstorable:
        raise _invalid([(p["field"], p["reason"]) for p in unstorable])
    digest = transactional.request_hash(data)
    if idempotency_key is not None:
        replay = await _stored(context, key.id, idempotency_key, digest)
        if replay is not None:
            return _replay(replay)
    try:
        parsed = transactional.parse_request(data)
        with _database_errors():
            async with context.factory() as session:
                prepared = await transactional.prepare_send(session, parsed)
    except ValidationError as exc:
        raise _invalid(exc.problems) from None
    except Suppressed as exc:
        raise ApiError(422, "suppressed", f"not sent: {exc.reason}; nothing was queued", reason=exc.reason) from None
    try:
        with _database_errors():
            async with context.factory() as session, session.begin():
                claimed = None
                if idempotency_key is not None:  # first, so a concurrent twin fails before writing anything
                    claimed = await transactional.claim_key(session, key.id, idempotency_key, digest)
                message_id = await transactional.queue_send(session, prepared)
                body = _message_json(await transactional.get_transactional(session, message_id))
                if claimed is not None:
                    claimed.status, claimed.response, claimed.message_id = 201, body, message_id
    except IntegrityError:
        # A concurrent request with the same key won (answer its answer), or the recipient's
        # profile or the group went away since the request was checked (retry: it is checked again).
        replay = await _stored(context, key.id, idempotency_key, digest) if idempotency_key is not None else None
        if replay is None:
            raise ApiError(409, "conflict", "the request conflicted with a concurrent change; retry",
                           headers={"Retry-After": "1"}) from None
        return _replay(replay)
    if context.poke is not None:
        context.poke()
    return JSONResponse(body, status_code=201, headers={"Location": f"/v1/messages/{message_id}"})


def _idempotency_key(request: Request) -> str | None:
    value = request.headers.get("idempotency-key")
    if value is None:
        return None
    if not _IDEMPOTENCY_KEY.fullmatch(value) or len(value) > transactional.MAX_IDEMPOTENCY_KEY:
        raise ApiError(422, "invalid", "the Idempotency-Key header is not valid",
                       errors=[{"field": "Idempotency-Key", "reason": "must be 1 to 255 printable ASCII characters "
                                "(a UUID, say) without spaces at the ends"}])
    return value


async def _stored(context: ListenerContext, api_key_id: int, key: str, digest: str) -> StoredAnswer | None:
    try:
        with _database_errors():
            async with context.factory() as session:
                return await transactional.stored_answer(session, api_key_id, key, digest)
    except IdempotencyMismatch:
        raise ApiError(422, "idempotency_key_reused",
                       "this Idempotency-Key was used with a different request body in the last 24 hours; "
                       "use a new key for a new message",
                       errors=[{"field": "Idempotency-Key", "reason": "was used with a different request body"}],
                       ) from None


def _replay(answer: StoredAnswer) -> Response:
    headers = {"Idempotent-Replayed": "true"}
    if "id" in answer.response:
        headers["Location"] = f"/v1/messages/{answer.response['id']}"
    return JSONResponse(answer.response, status_code=answer.status, headers=headers)


def _invalid(problems: list[tuple[str | None, str]]) -> ApiError:
    errors = [{"field": field or None, "reason": reason} for field, reason in problems]
    named = ", ".join(dict.fromkeys(e["field"] or "the body" for e in errors))
    return ApiError(422, "invalid", f"the message was not queued: check {named}", errors=errors)


# --- GET /v1/messages/{id} ---------------------------------------------------------------------


async def _read(request: Request, context: ListenerContext) -> Response:
    await _require_key(request, context)
    text = request.path_params["message_id"]
    if not _MESSAGE_ID.fullmatch(text):
        raise ApiError(404, "not_found", f"no message {text!r}: message ids are whole numbers")
    try:
        with _database_errors():
            async with context.factory() as session:
                view = await transactional.get_transactional(session, int(text))
    except NotFound:
        raise ApiError(404, "not_found", f"no message {text} (only messages sent through this API are shown)") from None
    return JSONResponse(_message_json(view))


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


def _message_json(view: TransactionalView) -> dict[str, Any]:
    m = view.message
    return {
        "id": m.id,
        "state": m.state,
        "reason": m.shown_reason,
        "error_code": m.error_code,
        "to": {"phone": m.to_number, "user_id": view.user_id},
        "body": m.body,
        "encoding": m.encoding,
        "segments": m.segments,
        "provider": m.provider_name,
        "group": m.group_name,
        "provider_message_id": m.provider_message_id,
        "price": None if m.price is None else {"amount": m.price, "currency": m.price_currency},
        "created_at": _iso(m.created_at),
        "sent_at": _iso(m.sent_at),
        "updated_at": _iso(m.updated_at),
        "next_attempt_at": _iso(m.next_attempt_at) if m.state == "queued" else None,
        "attempts": [{"provider": a.provider_name, "started_at": _iso(a.started_at), "finished_at": _iso(a.finished_at),
                      "outcome": a.outcome, "http_status": a.http_status, "error_code": a.error_code,
                      "error_message": a.error_message} for a in view.attempts],
        "escalations": [{"after_minutes": s.after_minutes, "action": s.action, "group": s.group,
                         "webhook": s.webhook, "due_at": _iso(s.due_at), "state": s.state, "result": s.result,
                         "message_id": s.message_id, "http_status": s.http_status, "fired_at": _iso(s.fired_at)}
                        for s in view.escalations],
        "escalation_of": view.escalation_of,
    }
