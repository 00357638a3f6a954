"""The SMPP 3.4 adapter against a loopback SMSC (tests/fakes/smsc.py): binds, the window, command
statuses, a dropped bind, long messages, UCS-2, receipts and replies read from deliver_sm, and
deliver_sm answered only once stored."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest

from smsconsole.providers import provider_class
from smsconsole.providers.base import (
    ErrorKind,
    InboundReport,
    OutboundMessage,
    StatusReport,
)
from smsconsole.providers.smpp import pdu as codec
from smsconsole.providers.smpp.adapter import SmppProvider
from smsconsole.providers.smpp.session import BindState
from tests.fakes.smsc import SMSC_PASSWORD, FakeSmsc

PASSWORD = SMSC_PASSWORD



@pytest.fixture
async def adapters() -> AsyncIterator[list[SmppProvider]]:
    made: list[SmppProvider] = []
    yield made
    for adapter in made:
        await adapter.aclose()


def config(smsc: FakeSmsc, **overrides: str) -> dict[str, str]:
    return {"host": "127.0.0.1", "port": str(smsc.port), "system_id": "acme", "password": PASSWORD,
            "sender": "ACME", "reconnect_backoff": "0.05", "response_timeout": "5", **overrides}


@pytest.fixture
def make(smsc: FakeSmsc, adapters: list[SmppProvider]) -> Callable[..., SmppProvider]:
    def build(**overrides: str) -> SmppProvider:
        adapter = SmppProvider(config(smsc, **overrides))
        adapters.append(adapter)
        return adapter
    return build


def messages(count: int, body: str = "hello", **extra: object) -> list[OutboundMessage]:
    return [OutboundMessage(ref=str(n), to=f"+4477009{n:05d}", body=f"{body} {n}", **extra)  # type: ignore[arg-type]
            for n in range(count)]


async def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition did not hold in time")


# --- settings ----------------------------------------------------------------------------------


def test_the_kind_is_registered() -> None:
    assert provider_class("smpp") is SmppProvider


SETTINGS = [
    pytest.param({}, [], id="good"),
    pytest.param({"host": "smpp://x:2775"}, [("host", "must be a host name or IP address")], id="host-with-scheme"),
    pytest.param({"port": "70000"}, [("port", "must be a whole number from 1 to 65535")], id="port"),
    pytest.param({"password": "ninechars"}, [("password", "must be at most 8 characters (SMPP 3.4)")], id="password"),
    pytest.param({"system_id": "a" * 16}, [("system_id", "must be at most 15 characters (SMPP 3.4)")], id="system-id"),
    pytest.param({"bind_mode": "receiver"}, [("bind_mode", "must be one of transceiver, transmitter+receiver")],
                 id="bind-mode"),
    pytest.param({"window_size": "0"}, [("window_size", "must be a whole number greater than 0")], id="window"),
    pytest.param({"throughput": "fast"}, [("throughput", "must be messages per second (0 for no limit)")],
                 id="throughput"),
    pytest.param({"source_ton": "9"}, [("source_ton", "must be a whole number from 0 to 6")], id="ton"),
    pytest.param({"source_ton": "1"}, [("source_ton", "is 1 (a number) but the sender is alphanumeric: use 5")],
                 id="ton-vs-sender"),
    pytest.param({"enquire_link_interval": "0"}, [("enquire_link_interval", "must be a number of seconds from 1 "
                                                                            "to 3600")], id="enquire-link"),
    pytest.param({"sender": "Far too long a name"}, [("sender", "must be a number (up to 20 digits, '+' optional) "
                                                                "or an alphanumeric sender ID of up to 11 characters")],
                 id="sender"),
]


@pytest.mark.parametrize(("changes", "problems"), SETTINGS)
def test_settings_are_validated_by_field_and_reason(changes: dict[str, str],
                                                     problems: list[tuple[str, str]]) -> None:
    values = {"host": "smpp.example.net", "port": "2775", "system_id": "acme", "password": "pw",
              "sender": "ACME", **changes}
    found = SmppProvider.validate_config(values)
    assert [(name, reason[:len(expected)]) for (name, reason), (_, expected) in zip(found, problems)] == problems
    assert len(found) == len(problems)


def test_a_required_setting_missing_is_named() -> None:
    assert ("host", "is required") in SmppProvider.validate_config({"system_id": "a", "password": "b",
                                                                   "sender": "ACME"})


# --- binds -------------------------------------------------------------------------------------


async def test_the_connection_test_binds_and_unbinds(smsc: FakeSmsc, make: Callable[..., SmppProvider]) -> None:
    check = await make().check_connection()
    assert check.ok, check.detail
    assert "bound to 127.0.0.1" in check.detail and "transceiver" in check.detail
    assert smsc.binds == [("bind_transceiver", "acme", 0)]
    assert smsc.unbinds == 1


async def test_a_bad_password_is_a_clear_failed_check(smsc: FakeSmsc, make: Callable[..., SmppProvider]) -> None:
    check = await make(password="wrong").check_connection()
    assert not check.ok
    assert "refused the password" in check.detail and "0x0000000E" in check.detail
    assert "wrong" not in check.detail and PASSWORD not in check.detail


async def test_an_unknown_system_id_is_named(smsc: FakeSmsc, make: Callable[..., SmppProvider]) -> None:
    check = await make(system_id="nobody").check_connection()
    assert not check.ok and "does not know this system_id" in check.detail


async def test_an_unreachable_smsc_is_a_failed_check(make: Callable[..., SmppProvider]) -> None:
    check = await make(port="1").check_connection()
    assert not check.ok and check.detail.startswith("cannot connect to SMSC 127.0.0.1:1")


async def test_transmitter_and_receiver_binds(smsc: FakeSmsc, make: Callable[..., SmppProvider]) -> None:
    adapter = make(bind_mode="transmitter+receiver")
    [outcome] = await adapter.send(messages(1))
    assert outcome.accepted
    assert sorted(command for command, _, _ in smsc.binds) == ["bind_receiver", "bind_transmitter"]
    received: list[StatusReport] = []

    async def sink(statuses: list[StatusReport], inbound: list[InboundReport]) -> None:
        received.extend(statuses)

    adapter.attach(sink)
    assert await smsc.send_receipt(outcome.provider_message_id or "") == codec.ROK
    assert [r.provider_message_id for r in received] == [outcome.provider_message_id]


async def test_a_send_with_a_refused_bind_is_a_configuration_error(smsc: FakeSmsc,
                                                                   make: Callable[..., SmppProvider]) -> None:
    adapter = make(password="wrong")
    adapter.start()
    await eventually(lambda: adapter.bind_status.last_error is not None)
    outcomes = await adapter.send(messages(2))
    assert {o.error.kind for o in outcomes if o.error} == {ErrorKind.CONFIGURATION}
    assert adapter.bind_status.state is BindState.DOWN and adapter.bind_status.configuration_error
    assert not smsc.submits


# --- sending -----------------------------------------------------------------------------------


@pytest.mark.parametrize("window", [1, 4, 10])
async def test_never_more_submits_in_flight_than_the_window(smsc: FakeSmsc, make: Callable[..., SmppProvider],
                                                            window: int) -> None:
    smsc.delay = 0.02  # answers come late, so the window fills
    adapter = make(window_size=str(window))
    outcomes = await adapter.send(messages(3 * window))
    assert all(o.accepted for o in outcomes)
    assert smsc.max_outstanding == window
    assert [o.provider_message_id for o in outcomes] != [None] * len(outcomes)
    assert sorted(s.message_id or "" for s in smsc.submits) == sorted(o.provider_message_id or "" for o in outcomes)


async def test_a_submit_carries_the_addresses_and_asks_for_a_receipt(smsc: FakeSmsc,
                                                                     make: Callable[..., SmppProvider]) -> None:
    [outcome] = await make().send([OutboundMessage(ref="1", to="+447700900123", body="Hi @ £5 {ok}")])
    [submitted] = smsc.submits
    assert outcome.provider_message_id == submitted.message_id and outcome.part_ids == ()
    assert (submitted.source, submitted.source_ton, submitted.source_npi) == ("ACME", 5, 0)
    assert (submitted.destination, submitted.dest_ton, submitted.dest_npi) == ("447700900123", 1, 1)
    assert submitted.registered_delivery == 1 and submitted.data_coding == 0 and submitted.esm_class == 0
    assert codec.decode_text(submitted.short_message, 0) == "Hi @ £5 {ok}"


async def test_a_numeric_sender_is_international(smsc: FakeSmsc, make: Callable[..., SmppProvider]) -> None:
    await make(sender="+447700900000").send(messages(1))
    assert (smsc.submits[0].source, smsc.submits[0].source_ton, smsc.submits[0].source_npi) == ("447700900000", 1, 1)


STATUSES = [
    pytest.param(codec.RTHROTTLED, ErrorKind.TRANSIENT, id="throttled"),
    pytest.param(codec.RMSGQFUL, ErrorKind.TRANSIENT, id="queue-full"),
    pytest.param(codec.RINVDSTADR, ErrorKind.PERMANENT, id="invalid-destination"),
    pytest.param(0x00000045, ErrorKind.TRANSIENT, id="submit-failed"),
    pytest.param(0x0000000A, ErrorKind.CONFIGURATION, id="invalid-source"),
    pytest.param(0x000000C4, ErrorKind.PERMANENT, id="unlisted-status"),
]


@pytest.mark.parametrize(("status", "kind"), STATUSES)
async def test_command_statuses_are_classified(smsc: FakeSmsc, make: Callable[..., SmppProvider], status: int,
                                               kind: ErrorKind) -> None:
    smsc.refuse["447700900000"] = status
    [outcome] = await make().send(messages(1))
    assert outcome.error is not None and outcome.error.kind is kind
    assert outcome.error.code == f"0x{status:08X}"


async def test_throttling_is_transient_and_the_rest_go_through(smsc: FakeSmsc,
                                                               make: Callable[..., SmppProvider]) -> None:
    smsc.throttle = 2
    outcomes = await make(window_size="1").send(messages(4))
    assert [o.error.kind if o.error else None for o in outcomes] == [ErrorKind.TRANSIENT] * 2 + [None] * 2
    assert "throttled" in str(outcomes[0].error)


async def test_a_dropped_bind_mid_window(smsc: FakeSmsc, make: Callable[..., SmppProvider]) -> None:
    """In flight when the connection drops: unknown (never resent); never submitted: transient
    (safe to send again); nothing submitted twice, nothing lost."""
    smsc.delay = 0.05
    smsc.drop_after = 7
    adapter = make(window_size="5")
    outcomes = await adapter.send(messages(12))
    by_ref = {o.ref: o for o in outcomes}
    accepted = {o.ref for o in outcomes if o.accepted}
    unknown = {o.ref for o in outcomes if o.error and o.error.kind is ErrorKind.UNKNOWN}
    retry = {o.ref for o in outcomes if o.error and o.error.kind is ErrorKind.TRANSIENT}
    assert accepted | unknown | retry == set(by_ref)  # every message has exactly one of three outcomes
    assert len(unknown) >= 1
    assert len(smsc.received) == len(set(smsc.received))  # nothing submitted twice
    submitted = {str(int(d[-5:])) for d in smsc.received}
    assert accepted <= submitted and retry.isdisjoint(submitted)  # "transient" never reached the SMSC
    for ref in accepted:
        assert by_ref[ref].provider_message_id in {s.message_id for s in smsc.accepted}
    await eventually(lambda: adapter.bind_status.state is BindState.BOUND)
    assert adapter.bind_status.rebinds == 1  # and the bind came back by itself


async def test_the_bind_comes_back_after_a_network_failure(smsc: FakeSmsc, make: Callable[..., SmppProvider]) -> None:
    adapter = make()
    await adapter.send(messages(1))
    smsc.drop_all()
    await eventually(lambda: adapter.bind_status.rebinds == 1 and adapter.bind_status.state is BindState.BOUND)
    [outcome] = await adapter.send(messages(1))
    assert outcome.accepted


async def test_an_idle_bind_sends_enquire_link(smsc: FakeSmsc, make: Callable[..., SmppProvider]) -> None:
    adapter = make(enquire_link_interval="1")
    adapter.start()
    await eventually(lambda: smsc.enquire_links >= 1, timeout=5)
    assert adapter.bind_status.state is BindState.BOUND


async def test_long_messages_go_as_udh_parts_with_an_id_each(smsc: FakeSmsc, make: Callable[..., SmppProvider]) -> None:
    body = "".join(f"{n:03d} " for n in range(100))  # 400 GSM-7 characters: 3 parts of at most 153
    [outcome] = await make().send([OutboundMessage(ref="1", to="+447700900123", body=body, segments=3)])
    assert len(smsc.submits) == 3
    assert outcome.part_ids == tuple(s.message_id for s in smsc.submits)
    assert outcome.provider_message_id == outcome.part_ids[0]
    headers = [s.short_message[:6] for s in smsc.submits]
    reference = headers[0][3]
    assert headers == [bytes((5, 0, 3, reference, 3, n)) for n in (1, 2, 3)]
    assert all(s.esm_class & codec.ESM_UDHI for s in smsc.submits)
    assert "".join(codec.decode_text(s.short_message[6:], 0) for s in smsc.submits) == body


async def test_long_messages_as_message_payload(smsc: FakeSmsc, make: Callable[..., SmppProvider]) -> None:
    body = "x" * 400
    [outcome] = await make(long_messages="message_payload").send(
        [OutboundMessage(ref="1", to="+447700900123", body=body)])
    [submitted] = smsc.submits
    assert outcome.accepted and outcome.part_ids == ()
    assert submitted.short_message == b"" and submitted.message_payload == body.encode("ascii")


async def test_ucs2(smsc: FakeSmsc, make: Callable[..., SmppProvider]) -> None:
    short, long = "Привет 👋", "Ω ünïcödé 😀 " * 10
    outcomes = await make().send([OutboundMessage(ref="s", to="+447700900001", body=short, encoding="UCS-2"),
                                  OutboundMessage(ref="l", to="+447700900002", body=long, encoding="UCS-2")])
    assert all(o.accepted for o in outcomes)
    by_destination: dict[str, list[bytes]] = {}
    for s in smsc.submits:
        assert s.data_coding == codec.DATA_CODING_UCS2
        by_destination.setdefault(s.destination, []).append(s.short_message)
    assert codec.decode_text(by_destination["447700900001"][0], 8) == short
    parts = by_destination["447700900002"]
    assert len(parts) == len(outcomes[1].part_ids) >= 2
    assert "".join(codec.decode_text(p[6:], 8) for p in sorted(parts, key=lambda p: p[5])) == long


async def test_a_later_part_throttled_is_retried_not_the_whole_message(smsc: FakeSmsc,
                                                                       make: Callable[..., SmppProvider]) -> None:
    adapter = make(window_size="1")
    adapter.start()
    await eventually(lambda: adapter.bind_status.state is BindState.BOUND)
    original = smsc._answer

    async def throttle_part_two(connection, pdu, sequence):  # type: ignore[no-untyped-def]
        if (pdu.short_message or b"")[5:6] == b"\x02" and not any(s.status for s in smsc.submits):
            smsc.throttle = 1
        await original(connection, pdu, sequence)

    smsc._answer = throttle_part_two  # type: ignore[method-assign]
    [outcome] = await adapter.send([OutboundMessage(ref="1", to="+447700900123", body="y" * 200)])
    assert outcome.accepted and len(outcome.part_ids) == 2
    assert [s.status for s in smsc.submits] == [0, codec.RTHROTTLED, 0]


# --- deliver_sm --------------------------------------------------------------------------------


RECEIPTS = [
    pytest.param("DELIVRD", "000", True, "delivered", None, id="delivered-tlv"),
    pytest.param("DELIVRD", "000", False, "delivered", None, id="delivered-text-only"),
    pytest.param("UNDELIV", "001", True, "undelivered", ErrorKind.TRANSIENT, id="undelivered"),
    pytest.param("REJECTD", "00B", False, "failed", ErrorKind.PERMANENT, id="rejected"),
    pytest.param("EXPIRED", "000", True, "undelivered", ErrorKind.TRANSIENT, id="expired"),
    pytest.param("ACCEPTD", "000", False, "sent", None, id="accepted"),
    pytest.param("UNKNOWN", "000", True, None, None, id="unknown-means-nothing-new"),
]


@pytest.mark.parametrize(("stat", "err", "tlvs", "state", "kind"), RECEIPTS)
async def test_receipts_are_read(smsc: FakeSmsc, make: Callable[..., SmppProvider], stat: str, err: str, tlvs: bool,
                                 state: str | None, kind: ErrorKind | None) -> None:
    received: list[StatusReport] = []

    async def sink(statuses: list[StatusReport], inbound: list[InboundReport]) -> None:
        received.extend(statuses)
        assert not inbound

    adapter = make()
    adapter.attach(sink)
    adapter.start()
    assert await smsc.send_receipt("M42", stat, err, recipient="447700900123", tlvs=tlvs) == codec.ROK
    [report] = received
    assert (report.provider_message_id, report.provider_status, report.state) == ("M42", stat, state)
    assert report.recipient == "+447700900123"
    assert report.at == datetime(2026, 12, 4, 16, 1, tzinfo=UTC)
    assert report.error_kind is kind
    assert report.error_code == (None if err == "000" else err)


def test_the_tlvs_win_over_the_text() -> None:
    raw = codec.encode("deliver_sm", 1, esm_class=codec.ESM_RECEIPT, source_addr="447700900123",
                       short_message=b"id:0012 sub:001 dlvrd:000 submit date:2612041600 done date:2612041601 "
                                     b"stat:ENROUTE err:000 text:", receipted_message_id="C0FFEE", message_state=5)
    report = codec.status_report(codec.decode(raw))
    assert (report.provider_message_id, report.provider_status, report.state) == ("C0FFEE", "UNDELIV", "undelivered")


MO = [
    pytest.param({"text": "STOP"}, "STOP", None, id="gsm"),
    pytest.param({"text": "Größe € ok", "ucs2": True}, "Größe € ok", None, id="ucs2"),
    pytest.param({"text": "{x} [y] €"}, "{x} [y] €", None, id="gsm-extension"),
]


@pytest.mark.parametrize(("kwargs", "text", "concat"), MO)
async def test_mobile_originated_messages_are_read(smsc: FakeSmsc, make: Callable[..., SmppProvider],
                                                   kwargs: dict[str, object], text: str, concat: object) -> None:
    received: list[InboundReport] = []

    async def sink(statuses: list[StatusReport], inbound: list[InboundReport]) -> None:
        received.extend(inbound)

    adapter = make()
    adapter.attach(sink)
    adapter.start()
    assert await smsc.send_mo("447700900123", **kwargs) == codec.ROK  # type: ignore[arg-type]
    [report] = received
    assert (report.sender, report.recipient, report.text) == ("+447700900123", "447700900000", text)


def test_a_concatenated_reply_part_says_which_part_it_is() -> None:
    raw = codec.encode("deliver_sm", 1, source_addr="447700900123", destination_addr="ACME", esm_class=codec.ESM_UDHI,
                       short_message=bytes((5, 0, 3, 77, 2, 1)) + codec.gsm_encode("first half"))
    report = codec.inbound_report(codec.decode(raw))
    assert (report.text, report.concat_ref, report.parts, report.part) == ("first half", "77", 2, 1)


async def test_deliver_sm_is_answered_only_after_the_sink_returned(smsc: FakeSmsc,
                                                                   make: Callable[..., SmppProvider]) -> None:
    entered, release = asyncio.Event(), asyncio.Event()

    async def sink(statuses: list[StatusReport], inbound: list[InboundReport]) -> None:
        entered.set()
        await release.wait()

    adapter = make()
    adapter.attach(sink)
    adapter.start()
    answer = asyncio.create_task(smsc.send_receipt("M1"))
    await asyncio.wait_for(entered.wait(), 5)
    assert not answer.done() and smsc.deliver_answers == []
    release.set()
    assert await answer == codec.ROK




async def test_a_failing_store_answers_a_temporary_error(smsc: FakeSmsc, make: Callable[..., SmppProvider]) -> None:
    async def sink(statuses: list[StatusReport], inbound: list[InboundReport]) -> None:
        raise RuntimeError("database is locked")

    adapter = make()
    adapter.attach(sink)
    adapter.start()
    assert await smsc.send_receipt("M1") == codec.RX_T_APPN
    assert "database is locked" in (adapter.bind_status.last_error or "")


async def test_with_nothing_to_store_them_deliveries_are_refused_for_now(smsc: FakeSmsc,
                                                                         make: Callable[..., SmppProvider]) -> None:
    make().start()
    assert await smsc.send_mo("447700900123", "hello") == codec.RX_T_APPN


async def test_a_receipt_before_the_submit_sm_resp_reaches_the_sink(smsc: FakeSmsc,
                                                                    make: Callable[..., SmppProvider]) -> None:
    received: list[StatusReport] = []

    async def sink(statuses: list[StatusReport], inbound: list[InboundReport]) -> None:
        received.extend(statuses)

    smsc.receipt_first = True
    adapter = make()
    adapter.attach(sink)
    [outcome] = await adapter.send(messages(1))
    assert outcome.accepted and [r.provider_message_id for r in received] == [outcome.provider_message_id]


async def test_no_secret_reaches_the_log(smsc: FakeSmsc, make: Callable[..., SmppProvider],
                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    adapter = make()
    await adapter.check_connection()
    await make(password="wrong").check_connection()
    await adapter.send(messages(2))
    assert PASSWORD not in caplog.text and "wrong" not in caplog.text
    assert PASSWORD not in adapter.bind_status.describe()


SUBMITS = [
    pytest.param({"short_message": b"Hello"}, id="gsm"),
    pytest.param({"short_message": b"\x05\x00\x03\x01\x02\x01" + "hé".encode("utf-16-be"), "data_coding": 8,
                  "esm_class": 0x40, "source_addr": "447700900000", "source_addr_ton": 1, "source_addr_npi": 1},
                 id="ucs2-udh"),
    pytest.param({"short_message": None, "message_payload": b"x" * 400}, id="message-payload"),
    pytest.param({"short_message": b"", "destination_addr": "1"}, id="empty"),
]


@pytest.mark.parametrize("changes", SUBMITS)
def test_our_submit_sm_bytes_are_smpplibs(changes: dict[str, object]) -> None:
    fields: dict[str, object] = {"source_addr_ton": 5, "source_addr_npi": 0, "source_addr": "ACME", "dest_addr_ton": 1,
                                 "dest_addr_npi": 1, "destination_addr": "14155550123", "registered_delivery": 1,
                                 "data_coding": 0, "esm_class": 0, **changes}
    assert codec.encode_submit_sm(77, **fields) == codec.encode("submit_sm", 77, service_type="", **fields)  # type: ignore[arg-type]


async def test_an_unanswered_submit_has_an_unknown_outcome(smsc: FakeSmsc, make: Callable[..., SmppProvider]) -> None:
    smsc.delay = 30  # never answers in time
    [outcome] = await make(response_timeout="1").send(messages(1))
    assert outcome.error is not None and outcome.error.kind is ErrorKind.UNKNOWN
    assert "no submit_sm_resp within 1s" in str(outcome.error)
    assert len(smsc.received) == 1
