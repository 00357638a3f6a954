"""A loopback SMSC speaking SMPP 3.4 (asyncio, PDUs through smpplib's codec), for the SMPP tests
and the benchmark. It binds (bind_transmitter / bind_receiver / bind_transceiver, checking the
password and system_id), takes submit_sm (recorded, answered with a message id) and answers
enquire_link and unbind; it sends deliver_sm receipts and mobile-originated messages and records
the ESME's deliver_sm_resp status.

Knobs a test turns: `throttle` (the next N submits are answered ESME_RTHROTTLED), `refuse`
(a destination → a command status), `delay` (seconds before each submit_sm_resp; answers are
still concurrent), `drop_after` (close the connection on receiving that many submits, leaving the
unanswered ones unanswered), `receipts` (send a DELIVRD receipt for each accepted submit) and
`receipt_first` (send it before the submit_sm_resp). `max_outstanding` is the most submits it
held unanswered at once on one connection: the window the ESME really used."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from smsconsole.providers.smpp import pdu as codec

BIND_COMMANDS = {"bind_transmitter": "transmitter", "bind_receiver": "receiver", "bind_transceiver": "transceiver"}


@dataclass(frozen=True)
class Submitted:
    message_id: str | None  # None: not accepted
    destination: str
    source: str
    source_ton: int
    source_npi: int
    dest_ton: int
    dest_npi: int
    data_coding: int
    esm_class: int
    registered_delivery: int
    short_message: bytes
    message_payload: bytes | None
    status: int


@dataclass
class _Connection:
    writer: asyncio.StreamWriter
    mode: str | None = None
    outstanding: int = 0
    sequence: itertools.count = field(default_factory=lambda: itertools.count(1))
    waiting: dict[int, asyncio.Future[int]] = field(default_factory=dict)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    out: list[bytes] = field(default_factory=list)

    def send(self, raw: bytes) -> None:
        """PDUs sent in one turn of the loop leave in one write."""
        if not self.out:
            asyncio.get_running_loop().call_soon(self._flush)
        self.out.append(raw)

    def _flush(self) -> None:
        data, self.out = b"".join(self.out), []
        if data and not self.writer.is_closing():
            self.writer.write(data)


class FakeSmsc:
    def __init__(self, system_id: str = "acme", password: str = "secret") -> None:
        self.system_id, self.password = system_id, password
        self.throttle = 0
        self.refuse: dict[str, int] = {}
        self.delay = 0.0
        self.drop_after: int | None = None
        self.receipts = False
        self.receipt_first = False
        self.submits: list[Submitted] = []  # answered (or dropped) submits, in the order answered
        self.received: list[str] = []  # the destination of every submit_sm read, in order
        self.binds: list[tuple[str, str, int]] = []  # (command, system_id, status)
        self.deliver_answers: list[int] = []  # the ESME's deliver_sm_resp statuses, in order
        self.enquire_links = 0
        self.unbinds = 0
        self.max_outstanding = 0
        self.max_binds: int | None = None  # the account's limit on simultaneous binds (None: no limit)
        self.peak_bound = 0  # the most connections bound at once
        self.connections: list[_Connection] = []
        self._server: asyncio.base_events.Server | None = None
        self._ids = itertools.count(1)
        self._received = 0
        self.light = False  # the benchmark's mode: submit_sm answered from its header alone, nothing recorded

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        for connection in list(self.connections):
            connection.writer.close()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    def drop_all(self) -> None:
        """Close every connection at once (a network failure)."""
        for connection in list(self.connections):
            connection.writer.close()

    @property
    def accepted(self) -> list[Submitted]:
        return [s for s in self.submits if s.message_id]

    def bound(self) -> int:
        """Connections bound now."""
        return sum(1 for c in self.connections if c.mode is not None and not c.writer.is_closing())

    def receivers(self) -> list[_Connection]:
        return [c for c in self.connections if c.mode in ("receiver", "transceiver") and not c.writer.is_closing()]

    # --- deliver_sm towards the ESME ------------------------------------------------------

    async def deliver(self, timeout: float = 5.0, **fields: Any) -> int:
        """Send one deliver_sm on a receiving bind and return the ESME's deliver_sm_resp status."""
        for _ in range(int(timeout / 0.01)):
            if self.receivers():
                break
            await asyncio.sleep(0.01)
        connection = self.receivers()[0]
        sequence = next(connection.sequence)
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        connection.waiting[sequence] = future
        defaults = {"service_type": "", "source_addr_ton": 1, "source_addr_npi": 1, "dest_addr_ton": 1,
                    "dest_addr_npi": 1, "esm_class": 0, "data_coding": 0}
        connection.send(codec.encode("deliver_sm", sequence, **{**defaults, **fields}))
        status = await asyncio.wait_for(future, timeout)
        self.deliver_answers.append(status)
        return status

    async def send_receipt(self, message_id: str, stat: str = "DELIVRD", err: str = "000", *, recipient: str = "",
                           tlvs: bool = True, **extra: Any) -> int:
        text = (f"id:{message_id} sub:001 dlvrd:{'001' if stat == 'DELIVRD' else '000'} submit date:2612041600 "
                f"done date:2612041601 stat:{stat} err:{err} text:hello")
        fields: dict[str, Any] = {"esm_class": codec.ESM_RECEIPT, "short_message": text.encode("ascii"),
                                  "source_addr": recipient, "destination_addr": "ACME", **extra}
        if tlvs:
            states = {v: k for k, v in codec.MESSAGE_STATES.items()}
            fields.update(receipted_message_id=message_id, message_state=states.get(stat, 7))
        return await self.deliver(**fields)

    async def send_mo(self, sender: str, text: str, *, to: str = "447700900000", ucs2: bool = False,
                      **extra: Any) -> int:
        data = text.encode("utf-16-be") if ucs2 else codec.gsm_encode(text)
        return await self.deliver(source_addr=sender, destination_addr=to, short_message=data,
                                  data_coding=codec.DATA_CODING_UCS2 if ucs2 else 0, **extra)

    # --- the server -----------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = _Connection(writer)
        self.connections.append(connection)
        try:
            while True:
                raw = await codec.read_pdu(reader)
                if not self._handle(connection, raw):
                    break
        except (asyncio.IncompleteReadError, ConnectionError, codec.PduError):
            pass
        finally:
            for task in connection.tasks:
                task.cancel()
            connection._flush()
            writer.close()
            with contextlib.suppress(ValueError):
                self.connections.remove(connection)

    def _handle(self, connection: _Connection, raw: bytes) -> bool:
        _, command_id, status, sequence = codec.header(raw)
        if self.light and command_id == codec.SUBMIT_SM and connection.mode in ("transmitter", "transceiver"):
            self._received += 1
            answer = codec.encode("submit_sm_resp", sequence, message_id=f"M{next(self._ids):08d}")
            if self.delay:
                asyncio.get_running_loop().call_later(self.delay, connection.send, answer)
            else:
                connection.send(answer)
            return True
        pdu = codec.decode(raw)
        if command_id & 0x80000000:
            future = connection.waiting.pop(sequence, None)
            if future is not None and not future.done():
                future.set_result(status)
            return True
        if pdu.command in BIND_COMMANDS:
            system_id, password = codec.text(pdu.system_id), codec.text(pdu.password)
            answer = (codec.RINVSYSID if system_id != self.system_id else
                      codec.RINVPASWD if password != self.password else
                      codec.RBINDFAIL if self.max_binds is not None and self.bound() >= self.max_binds else codec.ROK)
            self.binds.append((pdu.command, system_id, answer))
            if answer == codec.ROK:
                connection.mode = BIND_COMMANDS[pdu.command]
                self.peak_bound = max(self.peak_bound, self.bound())
            connection.send(codec.encode(pdu.command + "_resp", sequence, status=answer,
                                         system_id="fake-smsc" if answer == codec.ROK else None))
            return answer == codec.ROK
        if connection.mode is None:
            connection.send(codec.encode("generic_nack", sequence, status=0x00000004))  # ESME_RINVBNDSTS
            return True
        if pdu.command == "enquire_link":
            self.enquire_links += 1
            connection.send(codec.encode("enquire_link_resp", sequence))
        elif pdu.command == "unbind":
            self.unbinds += 1
            connection.send(codec.encode("unbind_resp", sequence))
            return False
        elif pdu.command == "submit_sm":
            if connection.mode == "receiver":
                connection.send(codec.encode("submit_sm_resp", sequence, status=0x00000004))
                return True
            self._received += 1
            self.received.append(codec.text(pdu.destination_addr))
            connection.outstanding += 1
            self.max_outstanding = max(self.max_outstanding, connection.outstanding)
            if self.drop_after is not None and self._received >= self.drop_after:
                self.drop_after = None
                self._record(pdu, None, codec.RSYSERR)  # received, never answered
                connection.out.clear()  # nor is anything else queued this turn
                connection.writer.close()
                return False
            task = asyncio.create_task(self._answer(connection, pdu, sequence))
            connection.tasks.add(task)
            task.add_done_callback(connection.tasks.discard)
        else:
            connection.send(codec.encode("generic_nack", sequence, status=0x00000003))
        return True

    def _record(self, pdu: Any, message_id: str | None, status: int) -> Submitted:
        submitted = Submitted(
            message_id=message_id, destination=codec.text(pdu.destination_addr), source=codec.text(pdu.source_addr),
            source_ton=pdu.source_addr_ton or 0, source_npi=pdu.source_addr_npi or 0,
            dest_ton=pdu.dest_addr_ton or 0, dest_npi=pdu.dest_addr_npi or 0, data_coding=pdu.data_coding or 0,
            esm_class=pdu.esm_class or 0, registered_delivery=pdu.registered_delivery or 0,
            short_message=pdu.short_message or b"", message_payload=getattr(pdu, "message_payload", None),
            status=status)
        self.submits.append(submitted)
        return submitted

    async def _answer(self, connection: _Connection, pdu: Any, sequence: int) -> None:
        destination = codec.text(pdu.destination_addr)
        if self.throttle > 0:
            self.throttle -= 1
            status = codec.RTHROTTLED
        else:
            status = self.refuse.get(destination, codec.ROK)
        message_id = f"M{next(self._ids):06d}" if status == codec.ROK else None
        self._record(pdu, message_id, status)
        try:
            if message_id and self.receipt_first:
                await self.send_receipt(message_id, recipient=destination)
            if self.delay:
                await asyncio.sleep(self.delay)
            connection.outstanding -= 1
            connection.send(codec.encode("submit_sm_resp", sequence, status=status, message_id=message_id or ""))
            if message_id and self.receipts and not self.receipt_first:
                await self.send_receipt(message_id, recipient=destination)
        except (asyncio.CancelledError, TimeoutError, ConnectionError):
            pass


def provider_values(smsc: FakeSmsc, **extra: str) -> dict[str, str]:
    """An `smpp` provider's settings for this SMSC (account acme / SMSC_PASSWORD)."""
    return {"host": "127.0.0.1", "port": str(smsc.port), "system_id": "acme", "password": SMSC_PASSWORD,
            "sender": "ACME", "reconnect_backoff": "0.05", **extra}


async def started(**kwargs: Any) -> FakeSmsc:
    smsc = FakeSmsc(**kwargs)
    await smsc.start()
    return smsc


SMSC_PASSWORD = "s3cr3t!"  # the tests' account password: distinctive, so a leak into a log is found


@contextlib.asynccontextmanager
async def running_smsc(system_id: str = "acme", password: str = SMSC_PASSWORD) -> AsyncIterator[FakeSmsc]:
    """A FakeSmsc listening on a free loopback port for the block (the `smsc` fixture)."""
    fake = FakeSmsc(system_id=system_id, password=password)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


def main() -> None:
    """Run the fake SMSC as its own process (the benchmark does): `python -m tests.fakes.smsc --port N
    [--delay S]`; it prints "ready" once listening, and answers submit_sm from their header alone
    (`light`: the benchmark measures our side, not the fake's parsing)."""
    import argparse

    parser = argparse.ArgumentParser(description="a loopback SMPP 3.4 SMSC")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each submit_sm_resp")
    parser.add_argument("--system-id", default="acme")
    parser.add_argument("--password", default="secret")
    parser.add_argument("--max-binds", type=int, default=None, help="refuse binds beyond this many at once")
    args = parser.parse_args()

    async def serve() -> None:
        smsc = FakeSmsc(args.system_id, args.password)
        smsc.delay = args.delay
        smsc.light = True
        smsc.max_binds = args.max_binds
        server = await asyncio.start_server(smsc._serve, "127.0.0.1", args.port)
        print("ready", flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
