"""What a message cost, as each provider says it: the send answer (Vonage per part, Textlocal per
request), delivery receipts (Vonage `price`, Infobip `price.pricePerMessage` × parts, Plivo
`TotalAmount`) and looked-up statuses (Vonage Reports `total_price`, Twilio `price`/`price_unit`,
Plivo `total_amount`, BulkSMS `creditCost`), against the loopback fakes (whose fixtures check every
request against the provider's spec where the provider tests do). No price said: None, never 0."""

# ruff: noqa: F811 - the provider tests' fixtures (imported below) are the tests' parameters

from __future__ import annotations

import json
from urllib.parse import urlencode

import httpx
import pytest

from smsconsole.providers.base import CREDITS, CallbackRequest, OutboundMessage
from smsconsole.providers.common import currency_code, parse_price
from tests.fakes.base import Reply
from tests.fakes.bulksms import FakeBulkSms
from tests.fakes.infobip import FakeInfobip
from tests.fakes.plivo import FakePlivo
from tests.fakes.textlocal import FakeTextlocal
from tests.fakes.twilio import FakeTwilio
from tests.fakes.vonage import FakeVonage
from tests.providers.test_bulksms import fake as bulksms_fake  # noqa: F401 - fixtures
from tests.providers.test_bulksms import make_provider as make_bulksms
from tests.providers.test_infobip import fake as infobip_fake  # noqa: F401
from tests.providers.test_infobip import make as make_infobip
from tests.providers.test_plivo import make_provider as make_plivo
from tests.providers.test_plivo import plivo_fake  # noqa: F401
from tests.providers.test_textlocal import fake as textlocal_fake  # noqa: F401
from tests.providers.test_textlocal import make_provider as make_textlocal
from tests.providers.test_twilio import make_provider as make_twilio
from tests.providers.test_twilio import twilio_client, twilio_fake  # noqa: F401
from tests.providers.test_vonage import make_provider as make_vonage
from tests.providers.test_vonage import vonage_fake  # noqa: F401

LONG = ("Vonage answers one entry per part of a long text. " * 6)[:300]  # 2 GSM-7 parts


def message(ref: str = "m-1", to: str = "+447700900001", body: str = "Hello") -> OutboundMessage:
    return OutboundMessage(ref=ref, to=to, body=body)


@pytest.mark.parametrize(("value", "expected"), [
    ("0.03330000", 0.0333), (0.01, 0.01), ("-0.00750", 0.0075), (2, 2.0), ("0", 0.0),
    (None, None), ("", None), ("n/a", None), (True, None), ("nan", None), ("inf", None),
])
def test_prices_read_as_positive_numbers_or_none(value: object, expected: float | None) -> None:
    assert parse_price(value) == expected


@pytest.mark.parametrize(("value", "expected"), [("usd", "USD"), (" EUR ", "EUR"), ("€", None), ("", None),
                                                  (None, None), ("EURO", None)])
def test_currencies_are_three_letter_codes(value: object, expected: str | None) -> None:
    assert currency_code(value) == expected


# --- Vonage: message-price per part, DLR price, Reports total_price --------------------------------


async def test_vonage_send_sums_the_price_of_every_part(vonage_fake: FakeVonage, client: httpx.AsyncClient) -> None:
    provider = make_vonage(vonage_fake, client)
    [short] = await provider.send([message()])
    [long] = await provider.send([message(ref="m-2", body=LONG)])
    assert (short.price, short.price_currency) == (0.0333, "EUR")
    assert len(long.part_ids) == 2 and (long.price, long.price_currency) == (pytest.approx(0.0666), "EUR")


async def test_vonage_send_without_a_price_says_none(vonage_fake: FakeVonage, client: httpx.AsyncClient) -> None:
    vonage_fake.answer_next(Reply(200, {"message-count": "1", "messages": [
        {"to": "447700900001", "message-id": "0A0000001234567B", "status": "0"}]}))
    [outcome] = await make_vonage(vonage_fake, client).send([message()])
    assert outcome.accepted and (outcome.price, outcome.price_currency) == (None, None)


def test_vonage_receipt_price_is_its_part_price_in_eur(vonage_fake: FakeVonage, client: httpx.AsyncClient) -> None:
    provider = make_vonage(vonage_fake, client)
    params = {"msisdn": "447700900001", "to": "AcmeInc", "messageId": "0A0000001234567B", "price": "0.03330000",
              "status": "delivered", "err-code": "0", "message-timestamp": "2026-11-23 10:15:02"}
    [report] = provider.parse_status_callback(CallbackRequest("GET", "https://h.example/s?" + urlencode(params)))
    assert (report.state, report.price, report.price_currency) == ("delivered", 0.0333, "EUR")
    del params["price"]
    [bare] = provider.parse_status_callback(CallbackRequest("GET", "https://h.example/s?" + urlencode(params)))
    assert (bare.price, bare.price_currency) == (None, None)


async def test_vonage_reports_records_carry_total_price_and_currency(
    vonage_fake: FakeVonage, client: httpx.AsyncClient,
) -> None:
    provider = make_vonage(vonage_fake, client)
    [outcome] = await provider.send([message()])
    [report] = await provider.fetch_statuses([outcome.provider_message_id or ""])
    assert (report.price, report.price_currency) == (0.0333, "EUR")


# --- Infobip: price.pricePerMessage × parts, in price.currency ----------------------------------------


def test_infobip_receipt_price_is_per_sms_times_the_parts() -> None:
    from smsconsole.providers.infobip import report_from_result

    result = {"messageId": "M1", "to": "41793026727", "smsCount": 3, "doneAt": "2019-11-09T16:00:00.000+0000",
              "price": {"pricePerMessage": 0.01, "currency": "EUR"},
              "status": {"groupId": 3, "groupName": "DELIVERED", "id": 5, "name": "DELIVERED_TO_HANDSET"}}
    report = report_from_result(result)
    assert (report.price, report.price_currency) == (0.03, "EUR")
    assert report_from_result({**result, "smsCount": None, "messageCount": 2}).price == 0.02
    assert report_from_result({**result, "smsCount": None}).price == 0.01
    assert (report_from_result({k: v for k, v in result.items() if k != "price"}).price) is None


async def test_infobip_pulled_reports_and_logs_carry_the_price(
    infobip_fake: FakeInfobip, client: httpx.AsyncClient,
) -> None:
    provider = make_infobip(infobip_fake, client)
    [outcome] = await provider.send([message()])
    pmid = outcome.provider_message_id or ""
    infobip_fake.deliver(pmid, price={"pricePerMessage": 0.0125, "currency": "GBP"}, message_count=2)
    page = await provider.poll_statuses(None)
    assert [(r.provider_message_id, r.price, r.price_currency) for r in page.reports] == [(pmid, 0.025, "GBP")]
    [logged] = await provider.fetch_statuses([pmid])
    assert (logged.price, logged.price_currency) == (0.025, "GBP")


# --- Plivo: TotalAmount (receipt) and total_amount (record), USD ----------------------------------------


def test_plivo_receipt_price_is_the_total_amount(plivo_fake: FakePlivo, client: httpx.AsyncClient) -> None:
    provider = make_plivo(plivo_fake, client)
    form = {"MessageUUID": "db3ce55a-7f1d-11e1-8ea7-1231380bc196", "To": "14155550123", "Status": "delivered",
            "Units": "2", "TotalRate": "0.00350", "TotalAmount": "0.00700"}
    request = CallbackRequest("POST", "https://h.example/s", {"content-type": "application/x-www-form-urlencoded"},
                              urlencode(form).encode())
    [report] = provider.parse_status_callback(request)
    assert (report.state, report.price, report.price_currency) == ("delivered", 0.007, "USD")


async def test_plivo_records_carry_the_total_amount(plivo_fake: FakePlivo, client: httpx.AsyncClient) -> None:
    provider = make_plivo(plivo_fake, client)
    [outcome] = await provider.send([message(to="+14155550123")])
    assert outcome.price is None  # Plivo's send answer names no price
    [report] = await provider.fetch_statuses([outcome.provider_message_id or ""])
    assert (report.price, report.price_currency) == (0.005, "USD")


# --- Twilio: null at creation and in callbacks; the resource's price once rated ---------------------------


async def test_twilio_price_comes_only_from_the_rated_resource(
    twilio_fake: FakeTwilio, twilio_client: httpx.AsyncClient,
) -> None:
    provider = make_twilio(twilio_fake, twilio_client)
    [outcome] = await provider.send([message(to="+14155550123")])
    assert outcome.accepted and outcome.price is None  # "price": null at creation
    sid = outcome.provider_message_id or ""
    twilio_fake.set_status(sid, "sent")
    [unrated] = await provider.fetch_statuses([sid])
    assert (unrated.state, unrated.price) == ("sent", None)
    twilio_fake.set_status(sid, "delivered", price="-0.00790", price_unit="USD")
    [rated] = await provider.fetch_statuses([sid])
    assert (rated.state, rated.price, rated.price_currency) == ("delivered", 0.0079, "USD")  # the poller reads the same resource
    callback = {"MessageSid": sid, "MessageStatus": "delivered", "To": "+14155550123"}
    [report] = provider.parse_status_callback(CallbackRequest(
        "POST", "https://h.example/s", {"content-type": "application/x-www-form-urlencoded"},
        urlencode(callback).encode()))
    assert report.price is None


# --- credits: Textlocal's cost per request, BulkSMS creditCost ---------------------------------------------


async def test_textlocal_cost_is_shared_by_the_numbers_of_a_request(
    textlocal_fake: FakeTextlocal, client: httpx.AsyncClient,
) -> None:
    provider = make_textlocal(textlocal_fake, client)
    outcomes = await provider.send([message("m-1", "+447700900001"), message("m-2", "+447700900002")])
    answer = textlocal_fake.requests[-1]
    assert answer.form["numbers"] == "447700900001,447700900002"  # one request; the fake charges 1 credit each
    assert [(o.price, o.price_currency) for o in outcomes] == [(1.0, CREDITS), (1.0, CREDITS)]


async def test_textlocal_test_mode_records_no_price(textlocal_fake: FakeTextlocal, client: httpx.AsyncClient) -> None:
    [outcome] = await make_textlocal(textlocal_fake, client, test_mode="true").send([message()])
    assert outcome.accepted and outcome.price is None


async def test_bulksms_credit_cost_once_filled(bulksms_fake: FakeBulkSms, client: httpx.AsyncClient) -> None:
    provider = make_bulksms(bulksms_fake, client)
    [outcome] = await provider.send([message()])
    pmid = outcome.provider_message_id or ""
    assert outcome.price is None  # creditCost is empty in the submit answer
    bulksms_fake.set_status(pmid, "DELIVERED", credit_cost=1.5)
    [report] = await provider.fetch_statuses([pmid])
    assert (report.state, report.price, report.price_currency) == ("delivered", 1.5, CREDITS)
    webhook = json.dumps([{**bulksms_fake.messages[pmid]}]).encode()
    [pushed] = provider.parse_status_callback(CallbackRequest("POST", "https://h.example/s",
                                                              {"content-type": "application/json"}, webhook))
    assert (pushed.price, pushed.price_currency) == (1.5, CREDITS)
