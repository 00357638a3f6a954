"""GenericHttpProvider: the adapter over a compiled Generic HTTP config (see the package's
docstring for placeholders, batching and answers)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

import httpx

from smsconsole.providers.base import (
    WEBHOOK_TOKEN_FIELD,
    CallbackRequest,
    Capabilities,
    ConfigField,
    ConfigurationError,
    ConnectionCheck,
    ErrorRules,
    InboundReport,
    OutboundMessage,
    OutcomeUnknownError,
    PermanentError,
    Provider,
    ProviderError,
    SendOutcome,
    StatusReport,
)
from smsconsole.providers.common import snippet
from smsconsole.providers.generic.compiled import CompiledRequest
from smsconsole.providers.generic.preview import preview_curl
from smsconsole.providers.generic.receipts import MAPPING_FIELDS, FieldMapping
from smsconsole.providers.generic.request import (
    GenericRequestError,
    GenericSpec,
    Problems,
    compile_config,
    render_request,
    sample_values,
)
from smsconsole.providers.generic.responses import BodyRule, IdRule, StatusRule, read_response
from smsconsole.providers.generic.templating import (
    BODY_TYPES,
    MAX_BATCH,
    METHODS,
    SAMPLE_MESSAGE,
    reason_from,
    url_quote,
    fill,
    parse_custom_keys,
    parse_header_lines,
    parse_param_lines,
)

logger = logging.getLogger(__name__)

# A gateway the operator describes has no error codes we know: its answers are classified by HTTP
# status (Provider.classify_http).
ERROR_RULES = ErrorRules()

class GenericHttpProvider(Provider):
    kind = "generic"
    display_name = "Generic HTTP"
    description = "Any SMS gateway with an HTTP API: a request template with $$To and $$Body placeholders."
    config_fields = (
        ConfigField(
            "method", "Method", kind="choice", choices=METHODS, default="POST",
            help="HTTP method; GET sends Params in the query string",
        ),
        ConfigField(
            "url", "URL", required=True, kind="url", placeholder="https://api.example.com/sms/send",
            help="Endpoint; placeholders are percent-encoded, e.g. https://gw.example.com/send/$$To",
        ),
        ConfigField("username", "Username", help="HTTP Basic auth user; leave empty for no Basic auth"),
        ConfigField("password", "Password", secret=True, help="HTTP Basic auth password"),
        ConfigField(
            "sender", "Sender", placeholder="MYBRND",
            help="$$From when a message names no sender: your number, short code, alphanumeric ID or DLT header",
        ),
        ConfigField(
            "api_key", "API key", secret=True, placeholder="env:GATEWAY_API_KEY",
            help="A key or token the request carries: put $$ApiKey where it goes (a header, a param, the URL)",
        ),
        ConfigField(
            "headers", "Headers", kind="multiline", validator=reason_from(parse_header_lines),
            placeholder="X-Api-Key: abc123",
            help='One "Name: value" per line; placeholders allowed in values. '
                 "A Content-Type here replaces the one the body type sets",
        ),
        ConfigField(
            "body_type", "Body type", kind="choice", choices=BODY_TYPES, default="form",
            help="form: Params as a URL-encoded body; json or text: Raw body, and Params go in the query string",
        ),
        ConfigField(
            "params", "Params", kind="multiline", validator=reason_from(parse_param_lines),
            placeholder="to=$$To\ntext=$$Body",
            help='One "key=value" per line, values typed plain (encoded for you): the body of a form '
                 "POST/PUT, else the query string",
        ),
        ConfigField(
            "raw_body", "Raw body", kind="multiline", placeholder='{"to": "$$To", "text": "$$Body"}',
            help='Body template for the json and text body types; in JSON put placeholders in strings ("$$Body"), '
                 "they are escaped for you",
        ),
        ConfigField(
            "custom_keys", "Custom keys", validator=reason_from(parse_custom_keys),
            placeholder="CampaignName, Priority",
            help="Extra placeholder names, comma-separated: CampaignName allows $$CampaignName, "
                 "filled from the message's key/values",
        ),
        ConfigField(
            "batch_key", "Batch key", placeholder="messages",
            help="Enables batching: for json, the key (or dotted path) in Raw body that receives the array "
                 "of Batch items; for form or GET, the Params key whose values are comma-joined",
        ),
        ConfigField(
            "batch_size", "Batch size", kind="int", default="1",
            help=f"Recipients per request, 1 to {MAX_BATCH}; 1 sends one request per message",
        ),
        ConfigField(
            "batch_item", "Batch item", kind="multiline", placeholder='{"to": "$$To", "text": "$$Body"}',
            help="JSON template of one recipient's entry in the batch array (json body type)",
        ),
        ConfigField(
            "success_status", "Success status", validator=reason_from(StatusRule.parse), default="2xx",
            placeholder="2xx", help="HTTP statuses that mean accepted: 2xx, 200, 200-204, comma-separated",
        ),
        ConfigField(
            "success_body_contains", "Success body contains", validator=reason_from(BodyRule.parse),
            placeholder='"status":"ok"',
            help="Text the answer must contain to count as accepted; prefix re: for a regular expression",
        ),
        ConfigField(
            "message_id_path", "Message id path", validator=reason_from(IdRule.parse),
            placeholder="messages[0].id",
            help="Where the provider's message id is: a JSON path (messages[0].id, $.data.id, results[*].id "
                 "for one per recipient), or re: and a regex whose group is the id",
        ),
        ConfigField(
            "check_url", "Check URL", kind="url", placeholder="https://api.example.com/account",
            help="Optional: Test connection GETs it with the same auth and headers; 2xx means OK",
        ),
        WEBHOOK_TOKEN_FIELD,
        *MAPPING_FIELDS,
    )
    capabilities = Capabilities(max_batch=1, max_body_chars=1600, status_webhook=True, inbound_webhook=True)

    @classmethod
    def check_config(cls, values: Mapping[str, str]) -> list[tuple[str, str]]:
        return compile_config(values)[1]

    def _compiled(self) -> tuple[GenericSpec | None, Problems]:
        """The settings compiled once per adapter (its config does not change after creation)."""
        cached = getattr(self, "_compiled_config", None)
        if cached is None:
            cached = self._compiled_config = compile_config(self.config)
        return cached

    def _renderer(self, spec: GenericSpec) -> CompiledRequest:
        """The spec's templates compiled for sending (compiled.py), once per adapter."""
        renderer = getattr(self, "_compiled_renderer", None)
        if renderer is None or renderer.spec is not spec:
            renderer = self._compiled_renderer = CompiledRequest(spec)
        return renderer

    @property
    def max_batch(self) -> int:
        """Messages per send call that fit one request, from the batch settings."""
        spec, _ = self._compiled()
        return spec.max_batch if spec else 1

    def preview_curl(self, sample: OutboundMessage | None = None) -> str:
        return preview_curl(self.config, sample)

    # Receipts and replies: by the field mapping, verified by the webhook token ----------------

    def parse_status_callback(self, request: CallbackRequest) -> list[StatusReport]:
        return FieldMapping.from_settings(self.setting).statuses(request)

    def parse_inbound_callback(self, request: CallbackRequest) -> list[InboundReport]:
        return FieldMapping.from_settings(self.setting).inbound(request)

    # Sending ----------------------------------------------------------------------------------

    async def send(self, messages: Sequence[OutboundMessage]) -> list[SendOutcome]:
        spec, problems = self._compiled()
        if spec is None:
            error = ConfigurationError(f"the Generic HTTP settings are invalid: {GenericRequestError(problems)}")
            return [SendOutcome(ref=message.ref, error=error) for message in messages]
        callbacks: dict[str, str] = {}  # one URL per provider: its token added once, not per message
        for message in messages:
            url = message.status_callback_url
            if url and url not in callbacks:
                callbacks[url] = self.callback_url(url)
        if any(url != with_token for url, with_token in callbacks.items()):
            messages = [dataclasses.replace(m, status_callback_url=callbacks[m.status_callback_url])
                        if m.status_callback_url else m for m in messages]
        renderer = self._renderer(spec)
        outcomes: dict[str, SendOutcome] = {}
        for batch in renderer.batches(messages):
            for outcome in await self._send_batch(spec, renderer, batch):
                outcomes[outcome.ref] = outcome
        return [outcomes[message.ref] for message in messages]

    async def _send_batch(self, spec: GenericSpec, renderer: CompiledRequest,
                          batch: list[OutboundMessage]) -> list[SendOutcome]:
        refs = [message.ref for message in batch]
        try:
            request = renderer.render(batch)
        except GenericRequestError as exc:
            error = PermanentError("; ".join(reason for _, reason in exc.problems))
            return [SendOutcome(ref=ref, error=error) for ref in refs]
        host = urlsplit(request.url).netloc
        logger.debug("generic: %s %s for %d message(s)", request.method, host, len(refs))
        try:
            response = await self.request(
                request.method, request.url,
                headers=[(name, value.encode("utf-8")) for name, value in request.headers],
                content=request.body.encode("utf-8") if request.body is not None else None,
                auth=httpx.BasicAuth(spec.username, spec.password) if spec.username or spec.password else None,
            )
        except ProviderError as error:
            failure = error
        except httpx.LocalProtocolError as exc:  # the request could not be formed, nothing left
            failure = ConfigurationError(f"cannot send to {host}: {exc}")
        except httpx.HTTPError as exc:
            failure = OutcomeUnknownError(f"request to {host} failed: {type(exc).__name__}")
        else:
            outcomes = read_response(spec, response, refs)
            logger.debug("generic: %s answered HTTP %d: %d accepted of %d", host, response.status_code,
                         sum(o.accepted for o in outcomes), len(outcomes))
            return outcomes
        logger.debug("generic: %d message(s) not sent: %s", len(refs), failure)
        return [SendOutcome(ref=ref, error=failure) for ref in refs]

    # Connection check -------------------------------------------------------------------------

    async def check_connection(self) -> ConnectionCheck:
        """Renders a sample request (nothing is sent) and GETs the check URL when there is one."""
        spec, problems = self._compiled()
        if spec is None:
            return ConnectionCheck(ok=False, detail=f"the settings have problems: {GenericRequestError(problems)}")
        try:
            request = render_request(spec, [SAMPLE_MESSAGE])
        except GenericRequestError as exc:
            return ConnectionCheck(ok=False, detail=f"the request does not render: {exc}")
        if not spec.check_url:
            detail = ("no Check URL (check_url) configured, so nothing was contacted; "
                      "the request renders with sample values")
            return ConnectionCheck(ok=True, detail=detail, checked=False)
        url = fill(spec.check_url, {**sample_values(spec.custom_keys), "ApiKey": spec.api_key}, url_quote)
        headers = [(n, v.encode("utf-8")) for n, v in request.headers if n.lower() != "content-type"]
        auth = httpx.BasicAuth(spec.username, spec.password) if spec.username or spec.password else None
        try:
            response = await self.request("GET", url, headers=headers, auth=auth)
        except ProviderError as exc:
            return ConnectionCheck(ok=False, detail=f"the Check URL is unreachable: {exc}")
        except httpx.HTTPError as exc:
            return ConnectionCheck(ok=False, detail=f"the Check URL is unreachable: {type(exc).__name__}")
        status = response.status_code
        if response.is_success:
            return ConnectionCheck(ok=True, detail=f"the Check URL answered HTTP {status}; no message was sent")
        hint = " (check the username, password and headers)" if status in (401, 403) else ""
        body = snippet(response.text)
        detail = f"the Check URL answered HTTP {status}{hint}" + (f": {body}" if body else "")
        return ConnectionCheck(ok=False, detail=detail)
