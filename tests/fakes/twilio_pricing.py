"""A loopback fake of Twilio's Pricing API v1, Messaging Countries resource
(https://www.twilio.com/docs/messaging/api/pricing): GET /v1/Messaging/Countries/{IsoCountry}
with HTTP Basic auth by Account SID (or API key), answering the documented shape: `country`,
`iso_country`, `price_unit`, `outbound_sms_prices` (per carrier: `carrier`, `mcc`, `mnc`,
`prices` of `number_type`, `base_price`, `current_price`), `inbound_sms_prices`, `url`; 401 with
code 20003 for refused credentials and 404 with code 20404 for a country it has no prices for."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.base import FakeProvider, reply_response
from tests.fakes.twilio import (
    ACCOUNT_SID,
    API_KEY_SECRET,
    API_KEY_SID,
    AUTH_TOKEN,
    twilio_error,
)


def carrier(name: str, mcc: str, mnc: str, **prices: str) -> dict[str, Any]:
    """One carrier's outbound prices; keyword names are number types with '_' for a space."""
    return {"carrier": name, "mcc": mcc, "mnc": mnc, "prices": [
        {"number_type": number_type.replace("_", " "), "base_price": price, "current_price": price}
        for number_type, price in prices.items()]}


# Shaped like Twilio's answers; the figures are made up for the tests.
COUNTRIES: dict[str, dict[str, Any]] = {
    "US": {"country": "United States", "price_unit": "USD", "outbound_sms_prices": [
        carrier("AT&T", "310", "410", local="0.0079", toll_free="0.0079", shortcode="0.0070"),
        carrier("Verizon", "311", "480", local="0.0083", toll_free="0.0081", shortcode="0.0070"),
    ], "inbound_sms_prices": [{"number_type": "local", "base_price": "0.0079", "current_price": "0.0079"}]},
    "CA": {"country": "Canada", "price_unit": "usd", "outbound_sms_prices": [
        carrier("Rogers", "302", "720", local="0.0083"),
        carrier("Bell", "302", "610", local="0.0075", tollfree="0.0090"),
    ], "inbound_sms_prices": []},
    "GB": {"country": "United Kingdom", "price_unit": "GBP", "outbound_sms_prices": [
        carrier("EE", "234", "30", mobile="0.0400"),
        carrier("Vodafone", "234", "15", mobile="0.0420"),
    ], "inbound_sms_prices": []},
}


class FakeTwilioPricing(FakeProvider):
    def __init__(self, credentials: dict[str, str] | None = None) -> None:
        super().__init__()
        self.credentials = credentials if credentials is not None else {ACCOUNT_SID: AUTH_TOKEN, API_KEY_SID: API_KEY_SECRET}
        self.countries = {iso: dict(body) for iso, body in COUNTRIES.items()}
        self.app = Starlette(routes=[Route("/v1/Messaging/Countries/{iso}", self._country, methods=["GET"])])

    async def _country(self, request: Request) -> Response:
        recorded, scripted = await self._record(request)
        if scripted is not None:
            return scripted
        auth = recorded.basic_auth
        if auth is None or self.credentials.get(auth[0]) != auth[1]:
            return reply_response(twilio_error(401, 20003, "Authenticate", {"WWW-Authenticate": 'Basic realm="Twilio API"'}))
        iso = request.path_params["iso"]
        body = self.countries.get(iso)
        if body is None:
            return reply_response(twilio_error(404, 20404, f"The requested resource {recorded.path} was not found"))
        return JSONResponse({**body, "iso_country": iso, "url": f"https://pricing.twilio.com/v1/Messaging/Countries/{iso}"})
