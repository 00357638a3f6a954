"""The `smpp` provider kind: an SMPP 3.4 bind straight to an SMSC or aggregator (package docstring
says why smpplib's codec under our own asyncio connection).

One adapter owns one long-lived bind (`SmppSession`), started by the first send or by `start()`,
so the engine's adapter cache (services.adapters.Adapters: one adapter per provider) keeps one
bind per provider and process. `send()` submits every message of its batch at once through the
bind's window; a long message goes part by part (UDH concatenation, or one message_payload), and
every part's message id is kept (receipts come per part). Receipts and replies arrive as
deliver_sm on the bind: `attach(sink)` gives the bind the function that stores them; each
deliver_sm is answered only after the sink returned (its transaction committed)."""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from smsconsole.providers.base import (
    ERROR_CLASSES,
    Capabilities,
    ConfigField,
    ConfigurationError,
    ConnectionCheck,
    ErrorKind,
    InboundReport,
    OutboundMessage,
    OutcomeUnknownError,
    PermanentError,
    Provider,
    ProviderError,
    SendOutcome,
    StatusReport,
    TransientError,
)
from smsconsole.providers.common import digits
from smsconsole.providers.smpp import pdu as codec
from smsconsole.providers.smpp.pdu import ERROR_RULES, STATUS_MAP  # the tables, where every adapter has them
from smsconsole.providers.smpp.session import (
    BindRefused,
    BindState,
    BindStatus,
    NotSent,
    OutcomeLost,
    SessionSettings,
    SmppSession,
)

log = logging.getLogger("smsconsole.providers.smpp")
__all__ = ["ERROR_RULES", "STATUS_MAP", "ReportSink", "SmppProvider"]

ReportSink = Callable[[list[StatusReport], list[InboundReport]], Awaitable[None]]
BIND_MODES = ("transceiver", "transmitter+receiver")
LONG_MESSAGES = ("udh", "message_payload")
PART_RETRIES = 3  # a later part refused for a transient reason is tried again this often (earlier parts are out)
PART_RETRY_DELAY = 0.5


def _range(low: int, high: int, what: str = "a whole number") -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        return None if value.isdigit() and low <= int(value) <= high else f"must be {what} from {low} to {high}"
    return check


def _seconds(low: float, high: float) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        try:
            number = float(value)
        except ValueError:
            return f"must be a number of seconds from {low:g} to {high:g}"
        return None if low <= number <= high else f"must be a number of seconds from {low:g} to {high:g}"
    return check


def _rate(value: str) -> str | None:
    try:
        number = float(value)
    except ValueError:
        return "must be messages per second (0 for no limit)"
    return None if 0 <= number <= 100000 else "must be from 0 (no limit) to 100000 messages per second"


def _host(value: str) -> str | None:
    if re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,252})|\[?[0-9A-Fa-f:]+\]?", value):
        return None
    return "must be a host name or IP address, without a scheme or port (e.g. smpp.example.net)"


def _c_string(longest: int) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        if not value.isascii() or not value.isprintable():
            return "must be printable ASCII"
        return None if len(value) <= longest else f"must be at most {longest} characters (SMPP 3.4)"
    return check


def _sender(value: str) -> str | None:
    if re.fullmatch(r"\+?\d{1,20}", value):
        return None
    if re.fullmatch(r"[A-Za-z0-9 .\-_&]{1,11}", value):
        return None
    return "must be a number (up to 20 digits, '+' optional) or an alphanumeric sender ID of up to 11 characters"


class SmppProvider(Provider):
    kind = "smpp"
    display_name = "SMPP 3.4"
    description = "A direct SMPP 3.4 bind to an SMSC or aggregator: windowed submits, receipts and replies on the bind."
    config_fields = (
        ConfigField("host", "Host", required=True, validator=_host, placeholder="smpp.example.net",
                    help="The SMSC's host name or IP address"),
        ConfigField("port", "Port", kind="int", default="2775", validator=_range(1, 65535),
                    help="The SMSC's port (2775 is the usual one; TLS often has a port of its own: ask the SMSC)"),
        ConfigField("tls", "TLS", kind="bool", default="false",
                    help="Connect with TLS (the SMSC must offer SMPP over TLS on this port)"),
        ConfigField("tls_verify", "Verify TLS certificate", kind="bool", default="true",
                    help="Check the SMSC's certificate and host name (turn off only for a private test SMSC)"),
        ConfigField("system_id", "System ID", required=True, validator=_c_string(15), placeholder="acme",
                    help="The account name the SMSC gave you (system_id, up to 15 characters)"),
        ConfigField("password", "Password", required=True, secret=True, placeholder="env:SMPP_PASSWORD",
                    validator=_c_string(8), help="The bind password (up to 8 characters); env:NAME reads it from "
                                                 "the environment"),
        ConfigField("system_type", "System type", validator=_c_string(12),
                    help="Only when the SMSC asks for one (system_type, up to 12 characters)"),
        ConfigField("bind_mode", "Bind mode", kind="choice", choices=BIND_MODES, default="transceiver",
                    help="One transceiver bind, or a transmitter and a receiver bind (two connections)"),
        ConfigField("bind_limit", "Bind limit (processes)", kind="int", default="1", validator=_range(1, 64),
                    help="How many engine processes may bind at once (the account's limit on simultaneous "
                         "binds; transmitter + receiver makes two connections per process). Processes beyond "
                         "it leave this provider's messages to the bound ones"),
        ConfigField("sender", "Sender", required=True, validator=_sender, placeholder="ACME",
                    help="The source address: a number, or an alphanumeric sender ID where the route allows one"),
        ConfigField("source_ton", "Source TON", validator=_range(0, 6),
                    help="Type of number of the sender (empty: 5 alphanumeric, 1 international for a number "
                         "with '+' or of more than 8 digits, 3 short code otherwise)"),
        ConfigField("source_npi", "Source NPI", validator=_range(0, 18),
                    help="Numbering plan of the sender (empty: 0 for alphanumeric, 1 ISDN otherwise)"),
        ConfigField("dest_ton", "Destination TON", default="1", validator=_range(0, 6),
                    help="Type of number of recipients (1: international, E.164 without '+')"),
        ConfigField("dest_npi", "Destination NPI", default="1", validator=_range(0, 18),
                    help="Numbering plan of recipients (1: ISDN / E.164)"),
        ConfigField("window_size", "Window size", kind="int", default="10", validator=_range(1, 1000),
                    help="submit_sm in flight at once, awaiting their submit_sm_resp (the SMSC's limit)"),
        ConfigField("throughput", "Throughput limit (msg/s)", default="0", validator=_rate,
                    help="submit_sm per second on this bind (each part counts); 0: no limit"),
        ConfigField("enquire_link_interval", "enquire_link interval (s)", default="30", validator=_seconds(1, 3600),
                    help="Seconds of silence before an enquire_link; an unanswered one drops and re-binds"),
        ConfigField("reconnect_backoff", "Reconnect backoff (s)", default="1", validator=_seconds(0.05, 600),
                    help="Seconds before re-binding after a loss, doubling up to a minute (or this, if longer)"),
        ConfigField("response_timeout", "Response timeout (s)", default="30", validator=_seconds(1, 600),
                    help="A submit_sm unanswered this long has an unknown outcome (never resent blindly)"),
        ConfigField("long_messages", "Long messages", kind="choice", choices=LONG_MESSAGES, default="udh",
                    help="udh: one submit_sm per part with a concatenation header (an id per part); "
                         "message_payload: the whole text in one submit_sm (the SMSC splits it)"),
    )
    capabilities = Capabilities(max_batch=10, max_body_chars=1600)

    def __init__(self, config: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self._session: SmppSession | None = None
        self._sink: ReportSink | None = None
        self._rng = random.Random()

    @classmethod
    def check_config(cls, values: Mapping[str, str]) -> list[tuple[str, str]]:
        problems = []
        sender = (values.get("sender") or "").strip()
        ton = (values.get("source_ton") or "").strip()
        if ton == "5" and sender and re.fullmatch(r"\+?\d+", sender):
            problems.append(("source_ton", "is 5 (alphanumeric) but the sender is a number"))
        if ton in ("1", "2", "3") and sender and not re.fullmatch(r"\+?\d+", sender):
            problems.append(("source_ton", f"is {ton} (a number) but the sender is alphanumeric: use 5"))
        return problems

    # --- the bind --------------------------------------------------------------------------

    @property
    def max_batch(self) -> int:
        """A send() takes a window's worth, so one call fills the window."""
        return max(1, int(self.setting("window_size") or 10))

    def session_settings(self) -> SessionSettings:
        return SessionSettings(
            host=self.setting("host").strip(), port=int(self.setting("port")),
            system_id=self.setting("system_id").strip(), password=self.setting("password"),
            system_type=self.setting("system_type").strip(), tls=self.flag("tls"),
            tls_verify=self.setting("tls_verify").lower() not in ("false", "no", "0"),
            transceiver=self.setting("bind_mode") != "transmitter+receiver",
            window=self.max_batch, throughput=float(self.setting("throughput") or 0),
            enquire_link_interval=float(self.setting("enquire_link_interval")),
            reconnect_backoff=float(self.setting("reconnect_backoff")),
            response_timeout=float(self.setting("response_timeout")),
        )

    @property
    def session(self) -> SmppSession:
        if self._session is None:
            self._session = SmppSession(self.session_settings(), self._deliveries)
        return self._session

    def attach(self, sink: ReportSink | None) -> None:
        """Where receipts and replies go: `sink(statuses, inbound)` stores them and returns once
        committed. Until one is attached every deliver_sm is refused (ESME_RX_T_APPN) and comes again."""
        self._sink = sink

    def start(self) -> None:
        """Bind now (in the background) rather than at the first send: to receive."""
        self.session.start()

    @property
    def bind_status(self) -> BindStatus:
        """The bind's state for screens (down before anything started it)."""
        if self._session is None:
            return BindStatus(BindState.DOWN, self.max_batch, 0, None, None, 0)
        return self._session.status

    async def aclose(self) -> None:
        """Unbind and close (the engine calls it when the adapter is dropped or the tenure ends)."""
        if self._session is not None:
            await self._session.close()

    async def _deliveries(self, pdus: Sequence[codec.Pdu]) -> None:
        if self._sink is None:
            raise RuntimeError("no receipt store is attached to this bind")
        statuses: list[StatusReport] = []
        inbound: list[InboundReport] = []
        for pdu in pdus:
            if codec.is_receipt(pdu):
                statuses.append(codec.status_report(pdu))
            else:
                inbound.append(codec.inbound_report(pdu))
        await self._sink(statuses, inbound)

    # --- sending ---------------------------------------------------------------------------

    async def send(self, messages: Sequence[OutboundMessage]) -> list[SendOutcome]:
        return list(await asyncio.gather(*(self._send_one(message) for message in messages)))

    def _addresses(self, message: OutboundMessage) -> dict[str, Any]:
        sender = (message.sender or self.setting("sender")).strip()
        numeric = bool(re.fullmatch(r"\+?\d+", sender))
        ton = self.setting("source_ton").strip()
        npi = self.setting("source_npi").strip()
        if not ton:
            ton = "5" if not numeric else "1" if sender.startswith("+") or len(sender) > 8 else "3"
        if not npi:
            npi = "0" if not numeric else "1"
        return {
            "source_addr_ton": int(ton), "source_addr_npi": int(npi), "source_addr": sender.lstrip("+"),
            "dest_addr_ton": int(self.setting("dest_ton")), "dest_addr_npi": int(self.setting("dest_npi")),
            "destination_addr": digits(message.to),
            "registered_delivery": codec.REGISTERED_DELIVERY_FINAL,
        }

    async def _send_one(self, message: OutboundMessage) -> SendOutcome:
        try:
            encoded = codec.encode_text(message.body, message.encoding, reference=self._rng.randrange(256),
                                        payload=self.setting("long_messages") == "message_payload")
        except ValueError as exc:
            return SendOutcome(ref=message.ref, error=PermanentError(str(exc)))
        fields = self._addresses(message)
        fields["data_coding"] = encoded.data_coding
        part_ids: list[str] = []
        for index, data in enumerate(encoded.parts, start=1):
            if encoded.payload:
                part = {**fields, "esm_class": 0, "short_message": None, "message_payload": data}
            else:
                part = {**fields, "esm_class": codec.ESM_UDHI if encoded.udh else 0, "short_message": data}
            error = await self._submit_part(part, index, len(encoded.parts), part_ids)
            if error is not None:
                log.debug("smpp: message %s part %d: %s", message.ref, index, error)
                return SendOutcome(ref=message.ref, error=error)
        log.debug("smpp: message %s accepted as %s", message.ref, ", ".join(part_ids))
        return SendOutcome(ref=message.ref, provider_message_id=part_ids[0], provider_status="ESME_ROK",
                           part_ids=tuple(part_ids) if len(part_ids) > 1 else ())

    async def _submit_part(self, fields: dict[str, Any], index: int, total: int,
                           part_ids: list[str]) -> ProviderError | None:
        """Submit one part; its id joins `part_ids`, or the error that ends the message. A part
        after the first that is refused for a transient reason is tried again (the first parts
        are out: resending the whole message would send them twice)."""
        accepted = f"; parts 1–{len(part_ids)} were accepted as {', '.join(part_ids)}" if part_ids else ""
        for attempt in range(PART_RETRIES + 1):
            try:
                answer = await self.session.submit(**fields)
            except NotSent as exc:
                if part_ids:
                    return OutcomeUnknownError(f"part {index} of {total} not sent: {exc}{accepted}")
                if self.session.configuration_error:
                    return ConfigurationError(str(exc))
                return TransientError(f"not sent: {exc}")
            except OutcomeLost as exc:
                return OutcomeUnknownError(f"submit_sm{_of(index, total)} left but {exc}{accepted}")
            if answer.status == codec.ROK:
                message_id = codec.text(answer.message_id)
                if not message_id:
                    return OutcomeUnknownError(f"the SMSC accepted part {index} without a message id{accepted}")
                part_ids.append(message_id)
                return None
            rule = codec.status_rule(answer.status)
            code = codec.status_text(answer.status)
            if rule.kind is ErrorKind.TRANSIENT and part_ids and attempt < PART_RETRIES:
                await asyncio.sleep(PART_RETRY_DELAY * (2 ** attempt))
                continue
            if rule.kind is ErrorKind.CONFIGURATION:
                self.session.last_error = f"[{code}] {rule.reason}"
            if part_ids:  # a partial message cannot be retried whole
                return PermanentError(f"part {index} of {total} refused: {rule.reason}{accepted}", code=code)
            return ERROR_CLASSES[rule.kind](rule.reason, code=code)
        return None  # pragma: no cover - the loop always returns

    # --- the connection test ---------------------------------------------------------------

    async def check_connection(self) -> ConnectionCheck:
        settings = self.session_settings()
        where = f"{settings.host}:{settings.port}"
        try:
            bound = await SmppSession(settings).check()
        except BindRefused as exc:
            return ConnectionCheck(ok=False, detail=f"SMSC {where} refused the bind of {settings.system_id!r}: "
                                                    f"{exc.rule.reason} ({codec.status_text(exc.status)})")
        except (OSError, TimeoutError) as exc:
            return ConnectionCheck(ok=False, detail=f"cannot connect to SMSC {where}: {str(exc) or type(exc).__name__}")
        except (NotSent, OutcomeLost, codec.PduError) as exc:
            return ConnectionCheck(ok=False, detail=f"SMSC {where} did not answer the bind: {exc}")
        return ConnectionCheck(ok=True, detail=f"bound to {where} as {settings.system_id!r} ({bound}) and unbound")


def _of(index: int, total: int) -> str:
    return f" (part {index} of {total})" if total > 1 else ""
