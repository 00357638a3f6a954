"""SMPP 3.4 (the `smpp` provider kind): adapter.py (the Provider), session.py (the bind), pdu.py
(PDUs, text into parts, deliver_sm into receipts and replies).

The library: smpplib (python-smpplib, LGPL, the most used Python SMPP library) for the PDU codec
only — `smpplib.command` builds and parses every PDU and TLV (submit_sm excepted: pdu.py builds
that one, byte for byte the same, ~3 µs against smpplib's ~90), `smpplib.consts` names the
statuses, `smpplib.gsm` holds the GSM-7 table — under our own asyncio connection. smpplib's `Client` is
synchronous sockets (a blocking read loop), which the asyncio engine cannot host without a thread
per bind. aiosmpplib (0.7.4, asyncio) was read and set aside: it is a queue-and-hooks ESME (messages
enqueued on a broker, outcomes reported to hook callbacks, its own correlator, retries and
segmentation), so a `send()` that returns each message's outcome, "answer deliver_sm only after it
is stored" and "in flight when the bind dropped → unknown, never resent" would have to be forced
through its hooks and retry machinery; and it has no documentation beyond its README. The
connection itself (framing, window, enquire_link, re-bind) is a few hundred lines we test against
a loopback fake SMSC (tests/fakes/smsc.py)."""
