"""Add, edit or register a sender: its provider, value, type, countries and registration (US 10DLC
brand and campaign, toll-free verification, India DLT principal entity). The service checks every
field; each refused one is named under it and the form stays open. Returns the saved sender."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.widgets import Input

from smsconsole.screens.dialogs.registry_form import (
    RegistryFormDialog,
    SaveDraft,
    choices,
    select,
)
from smsconsole.screens.widgets.fields import FormField
from smsconsole.services.compliance.rules import SENDER_TYPE_LABELS
from smsconsole.services.compliance.senders import (
    SENDER_TYPES,
    TOLLFREE_STATUSES,
    SenderView,
)


class SenderFormDialog(RegistryFormDialog):
    """`sender` is the one edited; an implicit sender (the provider's configured one) opens as a new
    registration of that value. The provider does not change on edit (remove and add instead)."""

    FIRST = "#input-sender-provider"
    HELP = "A number, short code or alphanumeric id a provider sends from, with its registration."

    def __init__(self, providers: Sequence[str], save: SaveDraft, sender: SenderView | None = None, *,
                 provider: str | None = None) -> None:
        editing = sender is not None and not sender.implicit
        title = (f"Edit sender {sender.value} ({sender.provider})" if editing and sender
                 else f"Register sender {sender.value} ({sender.provider})" if sender else "New sender")
        super().__init__(title, save)
        self.providers = list(providers)
        self.sender = sender
        self.editing = editing
        self.provider = sender.provider if sender else provider
        if editing:  # the provider stays
            self.FIRST = "#input-sender-value"

    def compose_fields(self) -> ComposeResult:
        s = self.sender
        provider = select([(name, name) for name in self.providers], self.provider,
                          id="input-sender-provider", prompt="Choose a provider")
        provider.disabled = self.editing
        yield FormField("provider", "Provider", provider,
                        required=True, help="The provider that sends from it" +
                        ("; it cannot change (remove the sender and add it again)" if self.editing else ""))
        yield FormField("value", "Sender", Input(s.value if s else "", compact=True, id="input-sender-value",
                                                 placeholder="+14155550100, 45678 or ACMEIN"), required=True)
        yield FormField("type", "Type", select(choices(SENDER_TYPES, SENDER_TYPE_LABELS),
                                               s.type if self.editing and s else None, id="input-sender-type",
                                               prompt="from the value"),
                        help="Empty: read from the value (letters: alphanumeric; up to 8 digits: short code; "
                        "800/833/844/855/866/877/888: toll-free)")
        yield FormField("countries", "Countries", Input(", ".join(s.countries) if s else "", compact=True,
                                                        id="input-sender-countries", placeholder="e.g. US, CA"),
                        help="ISO codes it may send to; empty: any country")
        yield FormField("brand_id", "10DLC brand id", Input((s.brand_id or "") if s else "", compact=True,
                                                            id="input-sender-brand", placeholder="e.g. BZ3F9QX"))
        yield FormField("tendlc_campaign", "10DLC campaign id",
                        Input((s.tendlc_campaign or "") if s else "", compact=True, id="input-sender-campaign",
                              placeholder="e.g. CX4B2ZQ"),
                        help="A US long code's registered campaign; add it under 10DLC campaigns first")
        yield FormField("tollfree_status", "Toll-free verification",
                        select(choices(TOLLFREE_STATUSES), (s.tollfree_status if s else None),
                               id="input-sender-tollfree", prompt="none"),
                        help="A toll-free number's verification status")
        yield FormField("dlt_entity_id", "DLT entity id", Input((s.dlt_entity_id or "") if s else "", compact=True,
                                                                id="input-sender-entity",
                                                                placeholder="e.g. 1101234567890123456"),
                        help="India: the principal entity the header (a 6-character sender) is registered to")
        yield FormField("note", "Note", Input((s.note or "") if s else "", compact=True, id="input-sender-note"))
