"""Reading receipts and replies by a field mapping, for gateways whose callbacks we only know by
their field names (Generic HTTP; Netcore until its format is documented). A field is a form or
query parameter name, or a dotted JSON path (`results[0].status`, `data.msgid`) when the body is
JSON; a JSON array body (or an array at `items`) holds one report per element."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from smsconsole.providers.base import (
    RECEIPT_STATES,
    CallbackRejected,
    CallbackRequest,
    ConfigField,
    InboundReport,
    StatusReport,
)
from smsconsole.providers.common import e164
from smsconsole.providers.generic.templating import reason_from

logger = logging.getLogger(__name__)

DEFAULT_STATUS_VALUES = ("delivered=delivered, DELIVRD=delivered, sent=sent, ACCEPTD=sent, undelivered=undelivered, "
                         "UNDELIV=undelivered, EXPIRED=undelivered, failed=failed, REJECTD=failed")
_FIELD = re.compile(r"[A-Za-z0-9_\-]+(\[\d+\])?(\.[A-Za-z0-9_\-]+(\[\d+\])?)*")


def _field_name(value: str) -> str | None:
    return None if _FIELD.fullmatch(value) else "must be a parameter name or a dotted JSON path such as data.msgid"


def parse_status_values(text: str) -> dict[str, str]:
    """"DELIVRD=delivered, UNDELIV=undelivered" → {provider value: our state}; ValueError on a bad pair."""
    values: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in text.replace("\n", ",").split(","))):
        raw, equals, state = pair.partition("=")
        if not equals or not raw.strip() or state.strip() not in RECEIPT_STATES:
            raise ValueError(f"{pair!r} must be VALUE=STATE with STATE one of {', '.join(RECEIPT_STATES)}")
        values[raw.strip()] = state.strip()
    return values


_status_values = reason_from(parse_status_values)


MAPPING_FIELDS: tuple[ConfigField, ...] = (
    ConfigField("receipt_items", "Receipt list path", validator=_field_name, placeholder="results",
                help="When one callback carries many receipts: the JSON key holding the list (empty: the body itself)"),
    ConfigField("receipt_id_field", "Receipt message id field", validator=_field_name, default="id",
                help="The field of a receipt holding the message id the send answer gave"),
    ConfigField("receipt_status_field", "Receipt status field", validator=_field_name, default="status",
                help="The field holding the delivery status"),
    ConfigField("receipt_number_field", "Receipt number field", validator=_field_name, placeholder="to",
                help="Optional: the field holding the recipient's number"),
    ConfigField("receipt_error_field", "Receipt error field", validator=_field_name, placeholder="error_code",
                help="Optional: the field holding the failure code"),
    ConfigField("receipt_status_values", "Receipt status values", kind="multiline", validator=_status_values,
                default=DEFAULT_STATUS_VALUES,
                help="VALUE=STATE pairs, comma-separated; STATE is sent, delivered, undelivered or failed. "
                     "Other values are logged and ignored"),
    ConfigField("inbound_from_field", "Reply sender field", validator=_field_name, default="from",
                help="The field of an inbound callback holding the sender's number"),
    ConfigField("inbound_text_field", "Reply text field", validator=_field_name, default="text",
                help="The field holding the message text"),
    ConfigField("inbound_to_field", "Reply recipient field", validator=_field_name, placeholder="to",
                help="Optional: the field holding our number"),
    ConfigField("inbound_id_field", "Reply id field", validator=_field_name, placeholder="id",
                help="Optional: the field holding the provider's id of the reply"),
)


@dataclass(frozen=True)
class FieldMapping:
    items: str
    receipt_id: str
    receipt_status: str
    receipt_number: str
    receipt_error: str
    status_values: dict[str, str]
    inbound_from: str
    inbound_text: str
    inbound_to: str
    inbound_id: str

    @classmethod
    def from_settings(cls, setting: Any) -> FieldMapping:
        """From a provider's `setting(name)` (defaults applied)."""
        try:
            values = parse_status_values(setting("receipt_status_values"))
        except ValueError:
            values = parse_status_values(DEFAULT_STATUS_VALUES)
        return cls(setting("receipt_items"), setting("receipt_id_field"), setting("receipt_status_field"),
                   setting("receipt_number_field"), setting("receipt_error_field"), values,
                   setting("inbound_from_field"), setting("inbound_text_field"), setting("inbound_to_field"),
                   setting("inbound_id_field"))

    def statuses(self, request: CallbackRequest) -> list[StatusReport]:
        reports = []
        for index, item in enumerate(self._items(request)):
            message_id, status = _text(item, self.receipt_id), _text(item, self.receipt_status)
            if not message_id or not status:
                raise CallbackRejected(400, f"receipt {index + 1}: {self.receipt_id!r} and {self.receipt_status!r} "
                                            "are required")
            state = self.status_values.get(status)
            if state is None:
                logger.info("mapped receipt: ignoring unknown status %r of %r", status, message_id)
            error = _text(item, self.receipt_error) if self.receipt_error else None
            reports.append(StatusReport(
                provider_message_id=message_id, provider_status=status, state=state,
                recipient=e164(_text(item, self.receipt_number)) if self.receipt_number else None,
                error_code=error or None, reason=f"provider status {status}" if state in ("failed", "undelivered")
                else None,
            ))
        return reports

    def inbound(self, request: CallbackRequest) -> list[InboundReport]:
        reports = []
        for index, item in enumerate(self._items(request)):
            sender, text = _text(item, self.inbound_from), _text(item, self.inbound_text)
            if not sender or text is None:
                raise CallbackRejected(400, f"reply {index + 1}: {self.inbound_from!r} and {self.inbound_text!r} "
                                            "are required")
            reports.append(InboundReport(
                provider_message_id=_text(item, self.inbound_id) if self.inbound_id else None,
                sender=e164(sender) or sender, recipient=_text(item, self.inbound_to) if self.inbound_to else None,
                text=text,
            ))
        return reports

    def _items(self, request: CallbackRequest) -> list[Mapping[str, Any]]:
        if request.content_type == "application/json" or (
                not request.content_type and request.body.lstrip()[:1] in (b"{", b"[")):
            document = request.json()
            if self.items:
                document = _walk(document, self.items)
            items = document if isinstance(document, list) else [document]
            if not items or not all(isinstance(item, Mapping) for item in items):
                raise CallbackRejected(400, "the JSON body holds no receipt objects")
            return list(items)
        params = request.params()
        params.pop("token", None)
        if not params:
            raise CallbackRejected(400, "the callback carries no fields")
        return [params]


def _walk(document: Any, path: str) -> Any:
    for step in path.split("."):
        name, _, index = step.partition("[")
        if isinstance(document, Mapping):
            document = document.get(name)
        else:
            return None
        if index:
            position = int(index.rstrip("]"))
            document = document[position] if isinstance(document, list) and position < len(document) else None
    return document


def _text(item: Mapping[str, Any], path: str) -> str | None:
    if not path:
        return None
    value = item.get(path) if path in item else _walk(item, path)
    if value is None or isinstance(value, (dict, list)):
        return None
    return str(value)
