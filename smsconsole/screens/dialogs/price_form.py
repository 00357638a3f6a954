"""A price per provider, country and sender type (per segment or per message), entered by hand;
and the question for fetching prices from a provider's pricing API (Twilio). The service checks
every field; each refused one is named under it. Returns the saved price, or the fetch's report."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Input

from smsconsole.screens.dialogs.registry_form import (
    RegistryFormDialog,
    SaveDraft,
    choices,
    select,
)
from smsconsole.screens.widgets.fields import FormField
from smsconsole.services.compliance.prices import SENDER_TYPES, UNITS, PriceView
from smsconsole.services.compliance.rules import SENDER_TYPE_LABELS


class PriceFormDialog(RegistryFormDialog):
    FIRST = "#input-price-provider"
    HELP = "What the provider charges to one country; a price for one sender type wins over the any-type one."

    def __init__(self, providers: Sequence[str], save: SaveDraft, price: PriceView | None = None) -> None:
        super().__init__(f"Edit price {price.provider} → {price.country}" if price else "New price", save)
        self.providers = list(providers)
        self.price = price

    def compose_fields(self) -> ComposeResult:
        p = self.price
        yield FormField("provider", "Provider", select([(name, name) for name in self.providers],
                                                       p.provider if p else None, id="input-price-provider",
                                                       prompt="Choose a provider"), required=True)
        yield FormField("country", "Country", Input(p.country if p else "", compact=True, id="input-price-country",
                                                    max_length=8, placeholder="e.g. US"), required=True)
        yield FormField("sender_type", "Sender type", select(choices(SENDER_TYPES, SENDER_TYPE_LABELS),
                                                             p.sender_type if p else None, id="input-price-type",
                                                             prompt="any"),
                        help="Empty: any sender type")
        yield FormField("amount", "Unit price", Input(f"{p.amount:g}" if p else "", compact=True,
                                                      id="input-price-amount", placeholder="e.g. 0.0079"),
                        required=True)
        yield FormField("unit", "Per", select(choices(UNITS), p.unit if p else "segment", id="input-price-unit",
                                              allow_blank=False),
                        help="segment: each part of a long message is charged; message: one charge")
        yield FormField("currency", "Currency", Input(p.currency if p else "USD", compact=True,
                                                      id="input-price-currency", max_length=8),
                        help="ISO 4217, e.g. USD, EUR, INR")


class FetchPricesDialog(RegistryFormDialog):
    FIRST = "#input-fetch-countries"
    SAVE_LABEL = "Fetch"
    SHORT = True
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="fetch-prices.cancel", tooltip="Close without fetching"),
        Binding("ctrl+s", "save", "Fetch", id="fetch-prices.fetch", tooltip="Ask the provider's pricing API now"),
    ]
    HELP = ("Asks the provider's pricing API (Twilio's Pricing API) for its current outbound SMS prices to "
            "these countries and keeps them with the time they were fetched. Other providers: import a CSV.")

    def __init__(self, providers: Sequence[str], save: SaveDraft, *, provider: str | None = None,
                 countries: str = "") -> None:
        super().__init__("Fetch prices", save)
        self.providers = list(providers)
        self.provider = provider
        self.countries = countries

    def compose_fields(self) -> ComposeResult:
        yield FormField("provider", "Provider", select([(name, name) for name in self.providers], self.provider,
                                                       id="input-fetch-provider", prompt="Choose a provider"),
                        required=True)
        yield FormField("countries", "Countries", Input(self.countries, compact=True, id="input-fetch-countries",
                                                        placeholder="e.g. US, CA, IN"),
                        required=True, help="ISO codes, separated by commas or spaces")
