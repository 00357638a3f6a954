"""The OpenAPI description of the listener's whole HTTP API, served at /openapi.json: the health
check, the ingestion API (profiles, events), the transactional send API (messages), the provider
callbacks and the short-link redirect. Written by hand, next to the routes it describes, and
checked against the running app by schemathesis (tests/integration/test_openapi_schemathesis.py)."""

from __future__ import annotations

import copy
from typing import Any

from smsconsole.services import transactional

_NULLABLE_STRING = {"type": "string", "nullable": True}
_TIME = {"type": "string", "format": "date-time", "nullable": True}
_JSON = "application/json"

_ERROR = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "description": "A stable code: invalid, suppressed, unauthorized, not_found, "
                  "malformed_json, unsupported_media_type, too_large, conflict, idempotency_key_reused, "
                  "unavailable."},
        "message": {"type": "string", "description": "What went wrong and what to do, in a sentence."},
        "errors": {"type": "array", "items": {"$ref": "#/components/schemas/Problem"}},
        "reason": {"type": "string", "description": "Why a message was suppressed (error `suppressed`)."},
    },
}
_PROBLEM = {
    "type": "object",
    "required": ["field", "reason"],
    "properties": {
        "index": {"type": "integer", "nullable": True, "description": "The item of a batch (ingestion API)."},
        "field": {"type": "string", "nullable": True, "description": "The field, e.g. `to.phone`, "
                  "`escalate[0].group`, `properties.plan`; null for the body as a whole."},
        "reason": {"type": "string"},
    },
}

_PROFILE = {
    "type": "object",
    "description": "One person. Custom attributes go in `properties`; unknown top-level fields are refused.",
    "additionalProperties": False,
    "properties": {
        "user_id": {"type": "string", "description": "Your id for the person (the key of an update)."},
        "phone": {"type": "string", "description": "E.164 (+14155550100) or national in the default region."},
        "name": {"type": "string"},
        "timezone": {"type": "string", "description": "IANA zone, e.g. Europe/Berlin."},
        "country": {"type": "string", "description": "ISO 3166 alpha-2."},
        "optin_at": {"type": "string", "format": "date-time"},
        "optout_at": {"type": "string", "format": "date-time"},
        "properties": {"type": "object", "additionalProperties": True},
    },
}
_EVENT = {
    "type": "object",
    "description": "Something a person did. `sms_optin` / `sms_optout` also (un)subscribe them.",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {
        "user_id": {"type": "string"},
        "phone": {"type": "string"},
        "name": {"type": "string"},
        "at": {"type": "string", "format": "date-time", "description": "When it happened; now when left out."},
        "properties": {"type": "object", "additionalProperties": True},
    },
}

_STEP = {
    "type": "object",
    "additionalProperties": False,
    "required": ["after_minutes"],
    "description": "If the message is not delivered `after_minutes` after it was accepted (or after its quiet "
                   "hours end), send it again through `group` (through a provider it has not gone through) "
                   "or POST an alert to `webhook`. Exactly one of group and webhook.",
    "properties": {
        "after_minutes": {"type": "integer", "minimum": 1, "maximum": transactional.MAX_AFTER_MINUTES},
        "group": {"type": "string", "description": "A provider group name."},
        "webhook": {"type": "string", "format": "uri", "description": "An http(s) URL."},
    },
}
_SEND = {
    "type": "object",
    "additionalProperties": False,
    "required": ["to"],
    "description": "A `body`, or the name of a saved `template` (not both).",
    "anyOf": [{"required": ["body"]}, {"required": ["template"]}],
    "properties": {
        "to": {
            "type": "object", "additionalProperties": False,
            "description": "Exactly one of `user_id` (a profile) and `phone` (E.164, or national in the default region).",
            "properties": {"user_id": {"type": "string", "minLength": 1}, "phone": {"type": "string", "minLength": 1}},
        },
        "body": {"type": "string", "minLength": 1, "description": "Liquid: `{{ profile.name }}`, `{{ data.order }}`; "
                 f"at most {transactional.MAX_BODY_CHARS} characters once rendered."},
        "template": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.\\-]{0,63}$",
                     "description": "A saved message template's name (`smsconsole message-templates`), instead of "
                                    "`body`; it reads the profile and `data` the same way."},
        "data": {"type": "object", "additionalProperties": True,
                 "description": "Values the body or template reads as `data.<key>`."},
        "group": {"type": "string", "description": "A provider group to send through (else the usual routing)."},
        "provider": {"type": "string", "description": "One provider to send through (not with `group`)."},
        "priority": {"type": "integer", "minimum": 0, "maximum": transactional.MAX_PRIORITY,
                     "default": transactional.DEFAULT_PRIORITY},
        "sender": {"type": "string", "minLength": 1, "maxLength": transactional.MAX_SENDER},
        "respect": {"type": "array", "items": {"type": "string", "enum": list(transactional.RESPECT)},
                    "description": "Guards to apply beyond opt-out (always applied): the frequency caps, quiet hours."},
        "quiet_hours": {
            "type": "object", "additionalProperties": False, "required": ["start", "end"],
            "description": "With respect quiet_hours: the window on the recipient's clock (default 21:00-08:00, delay).",
            "properties": {"start": {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"},
                           "end": {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"},
                           "action": {"type": "string", "enum": ["delay", "discard"]}},
        },
        "escalate": {"type": "array", "maxItems": transactional.MAX_STEPS, "items": {"$ref": "#/components/schemas/EscalationStep"}},
    },
}
_MESSAGE = {
    "type": "object",
    "required": ["id", "state", "to", "body", "attempts", "escalations", "created_at"],
    "properties": {
        "id": {"type": "integer"},
        "state": {"type": "string", "enum": ["queued", "claimed", "sending", "sent", "delivered", "undelivered",
                                             "failed", "suppressed", "unknown"]},
        "reason": _NULLABLE_STRING,
        "error_code": _NULLABLE_STRING,
        "to": {"type": "object", "properties": {"phone": {"type": "string"}, "user_id": _NULLABLE_STRING}},
        "body": {"type": "string"},
        "encoding": {"type": "string"},
        "segments": {"type": "integer"},
        "provider": _NULLABLE_STRING,
        "group": _NULLABLE_STRING,
        "provider_message_id": _NULLABLE_STRING,
        "price": {"type": "object", "nullable": True, "properties": {"amount": {"type": "number"},
                                                                     "currency": _NULLABLE_STRING}},
        "created_at": {"type": "string", "format": "date-time"},
        "sent_at": _TIME,
        "updated_at": _TIME,
        "next_attempt_at": _TIME,
        "attempts": {"type": "array", "items": {"type": "object", "properties": {
            "provider": _NULLABLE_STRING, "started_at": _TIME, "finished_at": _TIME,
            "outcome": {"type": "string", "enum": ["sent", "transient", "permanent", "configuration", "unknown"]},
            "http_status": {"type": "integer", "nullable": True}, "error_code": _NULLABLE_STRING,
            "error_message": _NULLABLE_STRING}}},
        "escalations": {"type": "array", "items": {"type": "object", "properties": {
            "after_minutes": {"type": "integer"}, "action": {"type": "string", "enum": ["group", "webhook"]},
            "group": _NULLABLE_STRING, "webhook": _NULLABLE_STRING, "due_at": _TIME,
            "state": {"type": "string", "enum": ["pending", "firing", "fired", "skipped", "failed", "cancelled"]},
            "result": _NULLABLE_STRING, "message_id": {"type": "integer", "nullable": True},
            "http_status": {"type": "integer", "nullable": True}, "fired_at": _TIME}}},
        "escalation_of": {"type": "integer", "nullable": True,
                          "description": "The message this one re-sends, when an escalation step sent it."},
    },
}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {_JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}}


_UNAUTHORIZED = {**_error("No, an invalid or a revoked API key."),
                 "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}}}
_UNAVAILABLE = {**_error("The database is busy or unreachable; retry after Retry-After seconds."),
                "headers": {"Retry-After": {"schema": {"type": "string"}}}}
_BODY_ERRORS = {
    "400": _error("The body is not JSON (`malformed_json`, with line and column)."),
    "401": _UNAUTHORIZED,
    "413": _error("The body is over 1 MiB, or a batch over 1000 items."),
    "415": _error("The Content-Type is not application/json."),
    "422": _error("Invalid fields (`invalid`, every one in `errors`); nothing was written."),
    "503": _UNAVAILABLE,
}


def _batch(item_ref: str, plural: str) -> dict[str, Any]:
    return {"oneOf": [{"$ref": item_ref}, {"type": "array", "minItems": 1, "maxItems": 1000, "items": {"$ref": item_ref}},
                      {"type": "object", "additionalProperties": False, "required": [plural],
                       "properties": {plural: {"type": "array", "minItems": 1, "maxItems": 1000,
                                               "items": {"$ref": item_ref}}}}]}


def _ingest(summary: str, item_ref: str, plural: str, result: dict[str, Any]) -> dict[str, Any]:
    ok = {"description": "Written (201 when something was created or recorded, 200 otherwise).",
          "content": {_JSON: {"schema": result}}}
    return {"post": {
        "summary": summary, "operationId": f"ingest_{plural}", "tags": ["ingestion"],
        "requestBody": {"required": True, "content": {_JSON: {"schema": _batch(item_ref, plural)}}},
        "responses": {"200": ok, "201": ok, **_BODY_ERRORS,
                      "409": _error("A concurrent request wrote the same profiles; retry.")},
    }}


def _callback(kind: str) -> dict[str, Any]:
    what = "a delivery receipt" if kind == "status" else "a reply (inbound SMS)"
    answer = {"description": "Taken (committed before the answer). The body is what the provider expects "
                             "(e.g. TwiML for Twilio, empty for most).", "content": {"*/*": {"schema": {"type": "string"}}}}
    operation = {
        "summary": f"The provider's callback with {what}",
        "description": "Verified by the provider's adapter (its signature scheme, or `?token=` with the provider's "
                       "secret) against the Public callback URL in Settings, then parsed. The body is the "
                       "provider's own: form-encoded or JSON. No API key.",
        "tags": ["callbacks"],
        "parameters": [{"name": "provider", "in": "path", "required": True, "schema": {"type": "string"},
                        "description": "The provider's name in smsconsole."}],
        "responses": {"200": answer, "204": {"description": "Taken; nothing to say."},
                      "400": _error("The callback could not be read or was refused (`rejected`)."),
                      "401": _error("The signature or token did not match (`rejected`)."),
                      "403": _error("Refused by the adapter (`rejected`)."),
                      "404": _error("No provider with that name (`unknown_provider`)."),
                      "413": _error("The body is over the callback limit."),
                      "503": _UNAVAILABLE},
    }
    body = {"content": {"application/x-www-form-urlencoded": {"schema": {"type": "object", "additionalProperties": True}},
                        _JSON: {"schema": {"type": "object", "additionalProperties": True}}}}
    return {"get": {**operation, "operationId": f"callback_{kind}_get"},
            "post": {**operation, "operationId": f"callback_{kind}_post", "requestBody": body}}


def spec() -> dict[str, Any]:
    """The description (a fresh copy: callers may change it)."""
    return copy.deepcopy(_SPEC)


_SPEC: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {
        "title": "smsconsole listener",
        "version": "1",
        "description": "The HTTP API of the smsconsole engine's listener: ingestion of profiles and events, "
                       "transactional messages, provider callbacks and short links. Every answer of /v1 is JSON; "
                       "an error is {\"error\": code, \"message\": text}, with `errors` naming each bad field.",
    },
    "security": [{"apiKey": []}],
    "tags": [{"name": "ingestion"}, {"name": "messages"}, {"name": "callbacks"}, {"name": "links"},
             {"name": "service"}],
    "paths": {
        "/healthz": {"get": {
            "summary": "Whether the engine runs and the database answers", "operationId": "health",
            "tags": ["service"], "security": [],
            "responses": {code: {"description": text, "content": {_JSON: {"schema": {
                "type": "object", "required": ["status", "engine", "database"],
                "properties": {"status": {"type": "string", "enum": ["ok", "unavailable"]},
                               "engine": {"type": "string"}, "database": {"type": "string", "enum": ["ok", "unavailable"]}},
            }}}} for code, text in (("200", "Healthy."), ("503", "The engine stopped or the database is unavailable."))},
        }},
        "/openapi.json": {"get": {
            "summary": "This description", "operationId": "openapi", "tags": ["service"], "security": [],
            "responses": {"200": {"description": "OpenAPI 3", "content": {_JSON: {"schema": {"type": "object"}}}}},
        }},
        "/v1/profiles": _ingest(
            "Create or update profiles: one object, an array, or {\"profiles\": [...]}; all or nothing",
            "#/components/schemas/Profile", "profiles",
            {"type": "object", "required": ["created", "updated", "unchanged", "warnings"], "properties": {
                "created": {"type": "integer"}, "updated": {"type": "integer"}, "unchanged": {"type": "integer"},
                "warnings": {"type": "array", "items": {"$ref": "#/components/schemas/Problem"}}}}),
        "/v1/events": _ingest(
            "Record events: one object, an array, or {\"events\": [...]}; all or nothing",
            "#/components/schemas/Event", "events",
            {"type": "object", "required": ["recorded", "duplicates", "profiles_created"], "properties": {
                "recorded": {"type": "integer"}, "duplicates": {"type": "integer"},
                "profiles_created": {"type": "integer"}}}),
        "/v1/messages": {"post": {
            "summary": "Send one transactional message", "operationId": "send_message", "tags": ["messages"],
            "description": "Queued in the outbox and sent by the engine at once. Opt-out is always enforced; "
                           "frequency caps and quiet hours only when `respect` names them.",
            "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False,
                            "description": "The same key (per API key) within 24 hours answers the first answer "
                                           "again (header Idempotent-Replayed: true) and sends nothing new.",
                            "schema": {"type": "string", "minLength": 1,
                                       "maxLength": transactional.MAX_IDEMPOTENCY_KEY}}],
            "requestBody": {"required": True, "content": {_JSON: {"schema": {"$ref": "#/components/schemas/SendMessage"}}}},
            "responses": {
                "201": {"description": "Queued (or the first answer, replayed).",
                        "headers": {"Location": {"schema": {"type": "string"}}},
                        "content": {_JSON: {"schema": {"$ref": "#/components/schemas/Message"}}}},
                **_BODY_ERRORS,
                "409": _error("A request with this Idempotency-Key is in progress; retry."),
                "422": _error("Invalid fields (`invalid`, every one in `errors`), a recipient who may not get it "
                              "(`suppressed`, with `reason`), or an Idempotency-Key used with another body "
                              "(`idempotency_key_reused`). Nothing was queued."),
            },
        }},
        "/v1/messages/{message_id}": {"get": {
            "summary": "A transactional message: its state, attempts and escalation steps",
            "operationId": "get_message", "tags": ["messages"],
            "parameters": [{"name": "message_id", "in": "path", "required": True,
                            "schema": {"type": "integer", "minimum": 1}}],
            "responses": {"200": {"description": "The message.",
                                  "content": {_JSON: {"schema": {"$ref": "#/components/schemas/Message"}}}},
                          "401": _UNAUTHORIZED,
                          "404": _error("No message sent through this API has that id."),
                          "503": _UNAVAILABLE},
        }},
        "/callbacks/{provider}/status": _callback("status"),
        "/callbacks/{provider}/inbound": _callback("inbound"),
        "/{code}": {"get": {
            "summary": "A short link: redirect to its long URL", "operationId": "short_link", "tags": ["links"],
            "security": [],
            "description": "Answers are for browsers: a click is recorded (link previews are not).",
            "parameters": [{"name": "code", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {
                "302": {"description": "To the long URL.", "headers": {"Location": {"schema": {"type": "string"}}}},
                "404": {"description": "Unknown code (an HTML page).", "content": {"text/html": {"schema": {"type": "string"}}}},
                "410": {"description": "The link expired (an HTML page).",
                        "content": {"text/html": {"schema": {"type": "string"}}}},
                "503": {"description": "The database did not answer (an HTML page); try again.",
                        "content": {"text/html": {"schema": {"type": "string"}}}},
            },
        }},
    },
    "components": {
        "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer",
                                       "description": "An API key from Settings → API keys (smsc_…); "
                                                      "X-API-Key: <key> works too."}},
        "schemas": {"Error": _ERROR, "Problem": _PROBLEM, "Profile": _PROFILE, "Event": _EVENT,
                    "SendMessage": _SEND, "EscalationStep": _STEP, "Message": _MESSAGE},
    },
}
