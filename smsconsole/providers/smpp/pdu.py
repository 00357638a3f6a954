"""SMPP 3.4 PDUs as bytes, through smpplib's codec (`smpplib.command` builds and parses every PDU
and its TLVs — but submit_sm, the one on the hot path, which `encode_submit_sm` builds to the same
bytes at a thirtieth of the cost; `smpplib.consts` names the statuses), plus what the codec leaves to its caller:
framing a PDU off a stream, the meaning of each command status for us, text into short_message
parts (UDH concatenation or message_payload), and deliver_sm read as a receipt or a reply.

Text is split with smsconsole.sms (parts never split an ESC pair, a surrogate pair or a grapheme
cluster) and each part encoded with smpplib's GSM-7 table or UTF-16-BE, because smpplib's own
`gsm.make_parts` splits the encoded bytes blindly (its FIXME: an extension character may be cut)."""

from __future__ import annotations

import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from smpplib import command as smpp_command
from smpplib import consts, smpp
from smpplib.exceptions import UnknownCommandError
from smpplib.gsm import GSM_CHARACTER_TABLE, gsm_encode

from smsconsole.providers.base import (
    ErrorKind,
    ErrorRule,
    ErrorRules,
    InboundReport,
    StatusReport,
)
from smsconsole.providers.common import e164, parse_timestamp
from smsconsole.sms import is_gsm7, split_segments

HEADER = struct.Struct(">LLLL")
MAX_PDU = 64 * 1024  # no sane PDU is larger; a bigger length field means the stream is garbage

DATA_CODING_GSM7 = 0  # the SMSC default alphabet, sent unpacked (one septet per octet)
DATA_CODING_LATIN1 = 3
DATA_CODING_UCS2 = 8
ESM_UDHI = consts.SMPP_GSMFEAT_UDHI  # 0x40: short_message starts with a user data header
ESM_RECEIPT = 0x04  # esm_class message type "SMSC delivery receipt"
ESM_TYPE_MASK = 0x3C
REGISTERED_DELIVERY_FINAL = 1  # a receipt on final delivery or failure
MAX_PARTS = 255

ROK = consts.SMPP_ESME_ROK
RX_T_APPN = consts.SMPP_ESME_RX_T_APPN  # "ESME receiver temporary app error": the SMSC redelivers
RSYSERR = consts.SMPP_ESME_RSYSERR
RINVPASWD = consts.SMPP_ESME_RINVPASWD
RINVSYSID = consts.SMPP_ESME_RINVSYSID
RBINDFAIL = consts.SMPP_ESME_RBINDFAIL
RTHROTTLED = consts.SMPP_ESME_RTHROTTLED
RMSGQFUL = consts.SMPP_ESME_RMSGQFUL
RINVDSTADR = consts.SMPP_ESME_RINVDSTADR


def _rule(status: int, kind: ErrorKind, reason: str) -> ErrorRule:
    return ErrorRule(f"0x{status:08X}", kind, reason)


T, P, C = ErrorKind.TRANSIENT, ErrorKind.PERMANENT, ErrorKind.CONFIGURATION
# command_status of a response (SMPP 3.4 §5.1.3). Not listed: permanent, with smpplib's description.
ERROR_RULES = ErrorRules(
    _rule(consts.SMPP_ESME_RTHROTTLED, T, "throttled: the SMSC says we exceed the bind's message rate"),
    _rule(consts.SMPP_ESME_RMSGQFUL, T, "the SMSC's message queue is full"),
    _rule(consts.SMPP_ESME_RSYSERR, T, "the SMSC had a system error"),
    _rule(consts.SMPP_ESME_RX_T_APPN, T, "the SMSC had a temporary application error"),
    _rule(consts.SMPP_ESME_RSUBMITFAIL, T, "the SMSC could not take the message (submit_sm failed)"),
    _rule(consts.SMPP_ESME_RINVBNDSTS, T, "the bind was not in a state to submit (it is re-bound)"),
    _rule(consts.SMPP_ESME_RINVDSTADR, P, "invalid destination address"),
    _rule(consts.SMPP_ESME_RINVDSTTON, P, "invalid destination TON"),
    _rule(consts.SMPP_ESME_RINVDSTNPI, P, "invalid destination NPI"),
    _rule(consts.SMPP_ESME_RINVMSGLEN, P, "invalid message length"),
    _rule(consts.SMPP_ESME_RX_P_APPN, P, "the SMSC rejected the message (permanent application error)"),
    _rule(consts.SMPP_ESME_RX_R_APPN, P, "the SMSC rejected the message (reject all from this source)"),
    _rule(consts.SMPP_ESME_RINVSRCADR, C, "the SMSC refused the sender (source address): check the Sender setting"),
    _rule(consts.SMPP_ESME_RINVSRCTON, C, "the SMSC refused the source TON: check the Source TON setting"),
    _rule(consts.SMPP_ESME_RINVSRCNPI, C, "the SMSC refused the source NPI: check the Source NPI setting"),
    _rule(consts.SMPP_ESME_RINVSYSTYP, C, "the SMSC refused the system type: check the System type setting"),
    _rule(consts.SMPP_ESME_RINVPASWD, C, "the SMSC refused the password: check the Password setting"),
    _rule(consts.SMPP_ESME_RINVSYSID, C, "the SMSC does not know this system_id: check the System ID setting"),
    _rule(consts.SMPP_ESME_RBINDFAIL, C, "the SMSC refused the bind (bind failed): check the account and bind mode"),
    _rule(consts.SMPP_ESME_RALYBND, T, "the SMSC says this ESME is already bound"),
)
del T, P, C


def status_text(status: int) -> str:
    return f"0x{status:08X}"


def status_rule(status: int) -> ErrorRule:
    """What a non-zero command_status means for the message (unknown codes: permanent)."""
    return ERROR_RULES.find(status_text(status)) or ErrorRule(
        status_text(status), ErrorKind.PERMANENT,
        f"the SMSC rejected it: {consts.DESCRIPTIONS.get(status, 'unknown command status')}")


# --- PDUs --------------------------------------------------------------------------------------


class PduError(Exception):
    """Bytes that are not a PDU we can read (the connection is then dropped, or answered with
    generic_nack when the header was sound)."""


Pdu = smpp_command.Command


def encode(command_name: str, sequence: int, *, status: int = ROK, **fields: Any) -> bytes:
    """One PDU as bytes. smpplib takes the sequence from its own client, so it is set afterwards."""
    pdu = smpp_command.factory(command_name, sequence=sequence, status=status, **fields)
    pdu.sequence = sequence
    pdu.status = status
    return pdu.generate()


SUBMIT_SM = 0x00000004
_MESSAGE_PAYLOAD = 0x0424


def encode_submit_sm(sequence: int, *, source_addr_ton: int, source_addr_npi: int, source_addr: str,
                     dest_addr_ton: int, dest_addr_npi: int, destination_addr: str, esm_class: int,
                     registered_delivery: int, data_coding: int, short_message: bytes | None = None,
                     message_payload: bytes | None = None, service_type: str = "") -> bytes:
    """submit_sm as bytes, the same bytes smpplib's `encode("submit_sm", ...)` gives (tests hold them
    equal) at a tenth of its cost: the one PDU on the hot path, sent once per part."""
    short_message = short_message or b""
    body = b"".join((
        service_type.encode("ascii"), b"\0", bytes((source_addr_ton, source_addr_npi)),
        source_addr.encode("latin-1"), b"\0", bytes((dest_addr_ton, dest_addr_npi)),
        destination_addr.encode("ascii"), b"\0",
        bytes((esm_class, 0, 0)), b"\0\0",  # protocol_id, priority_flag; no schedule, no validity period
        bytes((registered_delivery, 0, data_coding, 0, len(short_message))), short_message,
        struct.pack(">HH", _MESSAGE_PAYLOAD, len(message_payload)) + message_payload if message_payload else b"",
    ))
    return HEADER.pack(HEADER.size + len(body), SUBMIT_SM, ROK, sequence) + body


def decode(raw: bytes) -> Pdu:
    """A whole PDU (header included) as smpplib's command object; unknown TLVs are skipped."""
    if len(raw) < HEADER.size:
        raise PduError("a PDU shorter than its 16-byte header")
    try:
        pdu = smpp.parse_pdu(raw, sequence=0, allow_unknown_opt_params=True)
    except (UnknownCommandError, struct.error, IndexError, ValueError, TypeError) as exc:
        raise PduError(f"unreadable PDU: {exc}") from None
    if pdu is None:
        raise PduError(f"unknown command id 0x{HEADER.unpack(raw[:16])[1]:08X}")
    return pdu


def header(raw: bytes) -> tuple[int, int, int, int]:
    """(length, command id, status, sequence) of a PDU's header."""
    return HEADER.unpack(raw[:HEADER.size])


async def read_pdu(reader: Any) -> bytes:
    """The next whole PDU from an asyncio StreamReader (IncompleteReadError at end of stream)."""
    head = await reader.readexactly(4)
    (length,) = struct.unpack(">L", head)
    if not HEADER.size <= length <= MAX_PDU:
        raise PduError(f"a PDU length of {length} bytes")
    return head + await reader.readexactly(length - 4)


def text(value: Any) -> str:
    """A C-octet string field as smpplib parses it (bytes) or as we set it (str)."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("latin-1").rstrip("\x00")
    return str(value)


# --- text into parts --------------------------------------------------------------------------


@dataclass(frozen=True)
class Encoded:
    """A message's text as it goes out: data_coding, and one short_message per submit_sm (with
    its UDH when there are several), or a single message_payload."""

    data_coding: int
    parts: tuple[bytes, ...]
    udh: bool
    payload: bool = False


def encode_text(body: str, encoding: str, *, reference: int, payload: bool = False) -> Encoded:
    """`body` as submit_sm user data. GSM-7 when the message was analysed so and every character
    is in smpplib's table, else UCS-2. Long texts: parts with a 6-octet concatenation UDH
    (8-bit `reference`), or one message_payload TLV when `payload`."""
    gsm = encoding != "UCS-2" and is_gsm7(body)
    if gsm:
        try:
            whole = gsm_encode(body)
        except UnicodeError:
            gsm = False
    coding = DATA_CODING_GSM7 if gsm else DATA_CODING_UCS2
    encode_part = gsm_encode if gsm else (lambda chunk: chunk.encode("utf-16-be"))
    if not gsm:
        whole = body.encode("utf-16-be")
    if payload:
        return Encoded(coding, (whole,), udh=False, payload=True)
    if gsm or not is_gsm7(body):
        chunks = split_segments(body)
    else:  # GSM-7 text sent as UCS-2 on request: 67 characters a part (every one a single code unit)
        chunks = [body] if len(body) <= 70 else [body[i:i + 67] for i in range(0, len(body), 67)]
    if len(chunks) <= 1:
        return Encoded(coding, (whole,), udh=False)
    if len(chunks) > MAX_PARTS:
        raise ValueError(f"the text needs {len(chunks)} parts; SMS concatenation allows {MAX_PARTS}")
    ref = reference & 0xFF
    parts = tuple(bytes((5, 0, 3, ref, len(chunks), index)) + encode_part(chunk)
                  for index, chunk in enumerate(chunks, start=1))
    return Encoded(coding, parts, udh=True)


_GSM_DECODE = {index: ch for index, ch in enumerate(GSM_CHARACTER_TABLE[:128]) if ch != "`"}
_GSM_EXTENSION = {index - 128: ch for index, ch in enumerate(GSM_CHARACTER_TABLE) if index >= 128 and ch != "`"}


def decode_text(data: bytes, data_coding: int) -> str:
    """short_message text: UCS-2 (8), Latin-1 (3), ASCII (1), else the GSM default alphabet
    unpacked (0, and what SMSCs mean by it most often)."""
    if data_coding == DATA_CODING_UCS2:
        return data.decode("utf-16-be", errors="replace")
    if data_coding == DATA_CODING_LATIN1:
        return data.decode("latin-1")
    if data_coding == 1:
        return data.decode("ascii", errors="replace")
    out: list[str] = []
    escape = False
    for octet in data:
        if escape:
            out.append(_GSM_EXTENSION.get(octet, "?"))
            escape = False
        elif octet == 0x1B:
            escape = True
        else:
            out.append(_GSM_DECODE.get(octet & 0x7F, "?"))
    return "".join(out)


def split_udh(data: bytes) -> tuple[bytes, tuple[str, int, int] | None]:
    """(user data without its header, (reference, total, part) of a concatenation IE or None)."""
    if not data:
        return data, None
    length = data[0]
    udh, rest = data[1:1 + length], data[1 + length:]
    pos = 0
    while pos + 2 <= len(udh):
        ie, size = udh[pos], udh[pos + 1]
        value = udh[pos + 2:pos + 2 + size]
        if ie == 0x00 and size == 3:
            return rest, (str(value[0]), value[1], value[2])
        if ie == 0x08 and size == 4:
            return rest, (str((value[0] << 8) | value[1]), value[2], value[3])
        pos += 2 + size
    return rest, None


# --- deliver_sm: receipts and replies ----------------------------------------------------------

# The stat: of a receipt's text (SMPP 3.4 Appendix B) → our message state; None means nothing new.
STATUS_MAP: dict[str, str | None] = {
    "DELIVRD": "delivered",
    "ACCEPTD": "sent",
    "ENROUTE": "sent",
    "EXPIRED": "undelivered",
    "UNDELIV": "undelivered",
    "DELETED": "failed",
    "REJECTD": "failed",
    "UNKNOWN": None,
}
# The message_state TLV (§5.2.28) as the same words.
MESSAGE_STATES: Mapping[int, str] = {
    1: "ENROUTE", 2: "DELIVRD", 3: "EXPIRED", 4: "DELETED", 5: "UNDELIV", 6: "ACCEPTD", 7: "UNKNOWN", 8: "REJECTD",
}
_RECEIPT_FIELD = re.compile(r"(id|sub|dlvrd|submit date|done date|stat|err|text):", re.IGNORECASE)


def receipt_fields(body: str) -> dict[str, str]:
    """The `name:value` fields of a receipt's text (`id:… sub:… dlvrd:… submit date:… done date:…
    stat:… err:… text:…`), names lower-case; `text` runs to the end."""
    fields: dict[str, str] = {}
    matches = list(_RECEIPT_FIELD.finditer(body))
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(body)
        name = match.group(1).lower()
        value = body[match.end():end]
        fields.setdefault(name, value if name == "text" else value.strip())
    return fields


def _receipt_time(value: str) -> datetime | None:
    """YYMMDDhhmm[ss] of a receipt (taken as UTC)."""
    if re.fullmatch(r"\d{12}", value):
        return parse_timestamp(value, "%y%m%d%H%M%S")
    if re.fullmatch(r"\d{10}", value):
        return parse_timestamp(value, "%y%m%d%H%M")
    return None


def is_receipt(pdu: Pdu) -> bool:
    return ((pdu.esm_class or 0) & ESM_TYPE_MASK) == ESM_RECEIPT


def status_report(pdu: Pdu) -> StatusReport:
    """A delivery receipt deliver_sm: the receipted_message_id / message_state TLVs when present
    (they win), else the text's id: and stat:. The receipt's destination is us; its source is the
    recipient of the original message."""
    raw = pdu.short_message or pdu.message_payload or b""
    data, _ = split_udh(raw) if (pdu.esm_class or 0) & ESM_UDHI else (raw, None)
    fields = receipt_fields(decode_text(data, pdu.data_coding or 0))
    message_id = text(getattr(pdu, "receipted_message_id", None)) or fields.get("id", "")
    state_tlv = getattr(pdu, "message_state", None)
    status = (MESSAGE_STATES.get(state_tlv) if isinstance(state_tlv, int) else None) or fields.get("stat", "").upper()
    state = STATUS_MAP.get(status)
    error = fields.get("err", "")
    code = error if error and error.strip("0") else None
    error_kind = reason = None
    if state in ("failed", "undelivered"):
        error_kind = ErrorKind.PERMANENT if state == "failed" else ErrorKind.TRANSIENT
        reason = f"SMSC receipt {status}" + (f" (err:{code})" if code else "")
    return StatusReport(
        provider_message_id=message_id or None, provider_status=status or "UNKNOWN", state=state,
        at=_receipt_time(fields.get("done date", "")), recipient=e164(text(pdu.source_addr)) or None,
        error_code=code, error_kind=error_kind, reason=reason,
    )


def inbound_report(pdu: Pdu) -> InboundReport:
    """A mobile-originated deliver_sm: who sent it (source_addr), to which of our addresses
    (destination_addr), its text, and its part of a concatenated message when it has a UDH."""
    raw = pdu.short_message or pdu.message_payload or b""
    concat = None
    if (pdu.esm_class or 0) & ESM_UDHI:
        raw, concat = split_udh(raw)
    elif getattr(pdu, "sar_msg_ref_num", None) is not None:
        concat = (str(pdu.sar_msg_ref_num), pdu.sar_total_segments or 0, pdu.sar_segment_seqnum or 0)
    sender = text(pdu.source_addr)
    return InboundReport(
        provider_message_id=None, sender=e164(sender) or sender, recipient=text(pdu.destination_addr) or None,
        text=decode_text(raw, pdu.data_coding or 0),
        concat_ref=concat[0] if concat else None, parts=concat[1] if concat else None,
        part=concat[2] if concat else None,
    )
