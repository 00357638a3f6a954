"""Prices reach `messages.price`: the dispatcher writes a send answer's (Vonage through its loopback
fake, every part summed), a receipt with a price sets it (the provider's later word), a part's
receipt fills in an unknown price (times the parts) and never changes a known one, nothing clears
a price; the campaign rollup sums them as cost; views say the cost in words. SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from smsconsole import clock
from smsconsole.engine.dispatcher import Dispatcher, DispatchSettings
from smsconsole.models import Campaign, CampaignRun, Message
from smsconsole.providers.base import CREDITS, SendOutcome, StatusReport
from smsconsole.runtime import Runtime
from smsconsole.services import messages, rollups
from smsconsole.services.messages import price_words
from smsconsole.services.receipts import (
    apply_pending_receipts,
    apply_status_reports,
    part_rows,
    record_parts,
)
from tests.fakes.server import Switchboard, serve
from tests.fakes.vonage import API_KEY, API_SECRET, FakeVonage
from tests.integration.dispatch_support import add_provider, message_row, queue

LONG = ("Vonage answers one entry per part of a long text. " * 6)[:300]  # 2 GSM-7 parts


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[Switchboard, str]]:
    switchboard = Switchboard()
    with serve(switchboard) as running:
        yield switchboard, running.url


@pytest.fixture
def vonage(server: tuple[Switchboard, str]) -> Iterator[FakeVonage]:
    switchboard, url = server
    fake = FakeVonage()
    fake.base_url = url
    switchboard.target = fake.app
    yield fake
    fake.close()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


async def _price(rt: Runtime, message_id: int) -> tuple[float | None, str | None]:
    async with rt.factory() as session:
        row = (await session.execute(select(Message.price, Message.price_currency)
                                     .where(Message.id == message_id))).one()
    return (None if row[0] is None else round(row[0], 6)), row[1]


async def _receipts(rt: Runtime, provider_id: int, *reports: StatusReport) -> None:
    async with rt.factory() as session, session.begin():
        await apply_status_reports(session, provider_id, "vonage", reports, "webhook")


def _dlr(pmid: str, status: str = "delivered", state: str | None = "delivered", **extra: object) -> StatusReport:
    return StatusReport(provider_message_id=pmid, provider_status=status, state=state, **extra)  # type: ignore[arg-type]


async def _sent(rt: Runtime, provider_id: int, pmid: str, *, part_ids: Sequence[str] = (),
                **fields: object) -> int:
    """A sent message (with its parts' rows when it has several ids), no price yet."""
    now = clock.now()
    [message_id] = await queue(rt, message_row(1, provider_id=provider_id, provider_name="vonage", state="sent",
                                               provider_message_id=pmid, sent_at=now,
                                               segments=max(1, len(part_ids)), **fields))
    if part_ids:
        async with rt.factory() as session, session.begin():
            outcome = SendOutcome(ref=str(message_id), provider_message_id=part_ids[0], part_ids=tuple(part_ids))
            await record_parts(session, part_rows(message_id, provider_id, outcome, now))
    return message_id


async def test_the_dispatcher_records_the_send_answers_price(
    runtime: Runtime, vonage: FakeVonage, http: httpx.AsyncClient,
) -> None:
    await add_provider(runtime, "vonage", "vonage", base_url=vonage.base_url, api_key=API_KEY,
                       api_secret=API_SECRET, sender="AcmeInc")
    async with runtime.factory() as session, session.begin():
        short = await messages.queue_test_message(session, provider_name="vonage", to="+447400123451", body="Hi",
                                                  default_region=None, actor="test")
        long = await messages.queue_test_message(session, provider_name="vonage", to="+447400123452", body=LONG,
                                                 default_region=None, actor="test")
    dispatcher = Dispatcher(runtime.factory, runtime.box, http, DispatchSettings(max_attempts=1))
    assert await dispatcher.run_once() == 2
    assert await _price(runtime, short.id) == (0.0333, "EUR")
    assert await _price(runtime, long.id) == (0.0666, "EUR")  # message-price of each of its 2 parts
    async with runtime.factory() as session:
        view = await messages.get_message(session, long.id)
    assert view.state == "sent" and view.price_text == "0.0666 EUR"


async def test_a_receipt_sets_the_price_and_none_clears_it(runtime: Runtime) -> None:
    provider_id = await add_provider(runtime, "vonage")
    message_id = await _sent(runtime, provider_id, "P1")
    await _receipts(runtime, provider_id, _dlr("P1", "accepted", "sent"))
    assert await _price(runtime, message_id) == (None, None)
    await _receipts(runtime, provider_id, _dlr("P1", price=0.01, price_currency="EUR"))
    assert await _price(runtime, message_id) == (0.01, "EUR")
    await _receipts(runtime, provider_id, _dlr("P1", "expired", "undelivered"))  # a later receipt without a price
    assert await _price(runtime, message_id) == (0.01, "EUR")
    # a late receipt of a final message moves nothing, but its price is the provider's later word
    await _receipts(runtime, provider_id, _dlr("P1", "buffered", "sent", price=0.012, price_currency="EUR"))
    assert await _price(runtime, message_id) == (0.012, "EUR")


async def test_a_receipt_that_means_nothing_new_still_prices_its_message(runtime: Runtime) -> None:
    provider_id = await add_provider(runtime, "vonage")
    message_id = await _sent(runtime, provider_id, "P2")
    await _receipts(runtime, provider_id, _dlr("P2", "unknown", None, price=0.02, price_currency="USD"))
    assert await _price(runtime, message_id) == (0.02, "USD")


async def test_part_receipts_fill_in_an_unknown_price_and_never_change_a_known_one(runtime: Runtime) -> None:
    provider_id = await add_provider(runtime, "vonage")
    unpriced = await _sent(runtime, provider_id, "U1", part_ids=("U1", "U2", "U3"))
    await _receipts(runtime, provider_id, _dlr("U2", price=0.0333, price_currency="EUR"))
    assert await _price(runtime, unpriced) == (0.0999, "EUR")  # the part's price times the 3 parts
    await _receipts(runtime, provider_id, _dlr("U1", price=0.05, price_currency="EUR"), _dlr("U3"))
    assert await _price(runtime, unpriced) == (0.0999, "EUR")  # known now: parts leave it alone

    priced = await _sent(runtime, provider_id, "K1", part_ids=("K1", "K2"), price=0.0666, price_currency="EUR")
    await _receipts(runtime, provider_id, _dlr("K1", price=0.0333, price_currency="EUR"),
                    _dlr("K2", price=0.0333, price_currency="EUR"))
    assert await _price(runtime, priced) == (0.0666, "EUR")  # the send answer already summed both parts
    async with runtime.factory() as session:
        assert await session.scalar(select(Message.state).where(Message.id == priced)) == "delivered"


async def test_a_receipt_before_its_message_prices_it_when_applied(runtime: Runtime) -> None:
    """A receipt that arrives before the send is recorded is kept with its price (even one that
    moves no state), and prices the message when the pending receipts are applied."""
    provider_id = await add_provider(runtime, "vonage")
    await _receipts(runtime, provider_id, _dlr("EARLY", price=0.04, price_currency="EUR"),
                    _dlr("EARLY2", "unknown", None, price=0.05, price_currency="EUR"))
    first = await _sent(runtime, provider_id, "EARLY")
    second = await _sent(runtime, provider_id, "EARLY2")
    assert await _price(runtime, first) == (None, None)
    async with runtime.factory() as session, session.begin():
        assert await apply_pending_receipts(session) == 2
    assert await _price(runtime, first) == (0.04, "EUR")
    assert await _price(runtime, second) == (0.05, "EUR")
    async with runtime.factory() as session:
        assert await session.scalar(select(Message.state).where(Message.id == first)) == "delivered"


async def test_an_unmatched_receipt_prices_nothing(runtime: Runtime) -> None:
    provider_id = await add_provider(runtime, "vonage")
    message_id = await _sent(runtime, provider_id, "M1")
    await _receipts(runtime, provider_id, _dlr("OTHER", price=9.0, price_currency="EUR"))
    assert await _price(runtime, message_id) == (None, None)


async def test_the_campaign_rollup_sums_the_prices_as_cost(runtime: Runtime) -> None:
    provider_id = await add_provider(runtime, "vonage")
    now = clock.now()
    async with runtime.factory() as session, session.begin():
        campaign = Campaign(name="Prices", type="one_time", state="running", document={}, created_at=now,
                            updated_at=now)
        session.add(campaign)
        await session.flush()
        run = CampaignRun(campaign_id=campaign.id, number=1, planned_at=now - timedelta(minutes=5), state="running",
                          document={}, suppressed={}, updated_at=now)
        session.add(run)
        await session.flush()
        campaign_id, run_id = campaign.id, run.id
    common = {"kind": "campaign", "campaign_id": campaign_id, "run_id": run_id, "variant": "A"}
    first = await _sent(runtime, provider_id, "C1", **common)
    await _sent(runtime, provider_id, "C2", to_number="+14155550002", **common)
    await _receipts(runtime, provider_id, _dlr("C1", price=0.04, price_currency="EUR"),
                    _dlr("C2", price=0.05, price_currency="EUR"))
    async with runtime.factory() as session:
        rows = await rollups.campaign_rows(session, campaign_id)
    delivered = [r for r in rows if r.state == "delivered"]
    assert sum(r.n for r in delivered) == 2 and round(sum(r.amount for r in delivered), 6) == 0.09
    assert await _price(runtime, first) == (0.04, "EUR")


@pytest.mark.parametrize(("price", "currency", "words"), [
    (None, None, None), (0.0333, "EUR", "0.0333 EUR"), (0.066600001, "EUR", "0.0666 EUR"), (0.5, "USD", "0.5 USD"),
    (0.0, "GBP", "0 GBP"), (1.0, CREDITS, "1 credit"), (2.5, CREDITS, "2.5 credits"), (0.01, None, "0.01"),
])
def test_prices_in_words(price: float | None, currency: str | None, words: str | None) -> None:
    assert price_words(price, currency) == words
