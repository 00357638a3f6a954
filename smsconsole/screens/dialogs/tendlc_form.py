"""Add or edit a US 10DLC campaign as registered with The Campaign Registry: campaign id, brand id,
use case, status, description and up to five sample messages (one per line). The campaign id does
not change once saved (senders name it). Returns the saved campaign."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Input, TextArea

from smsconsole.screens.dialogs.registry_form import (
    RegistryFormDialog,
    SaveDraft,
    choices,
    select,
)
from smsconsole.screens.widgets.fields import FormField
from smsconsole.services.compliance.templates import (
    MAX_SAMPLES,
    TENDLC_STATUSES,
    TENDLC_USE_CASES,
    TenDlcCampaignView,
)


class TenDlcFormDialog(RegistryFormDialog):
    FIRST = "#input-tendlc-id"
    HELP = "A US long code sends only under a registered 10DLC campaign; set it on the sender afterwards."

    def __init__(self, save: SaveDraft, campaign: TenDlcCampaignView | None = None) -> None:
        super().__init__(f"Edit 10DLC campaign {campaign.campaign_id}" if campaign else "New 10DLC campaign", save)
        self.campaign = campaign
        if campaign is not None:  # its id stays; the brand is the first field to change
            self.FIRST = "#input-tendlc-brand"

    def compose_fields(self) -> ComposeResult:
        c = self.campaign
        campaign_id = Input(c.campaign_id if c else "", compact=True, id="input-tendlc-id", placeholder="e.g. CX4B2ZQ")
        campaign_id.disabled = c is not None
        yield FormField("campaign_id", "Campaign id", campaign_id, required=True,
                        help="The id The Campaign Registry gave" + ("; it does not change" if c else ""))
        yield FormField("brand_id", "Brand id", Input(c.brand_id if c else "", compact=True, id="input-tendlc-brand",
                                                      placeholder="e.g. BZ3F9QX"), required=True)
        yield FormField("use_case", "Use case", select(choices(TENDLC_USE_CASES), c.use_case if c else None,
                                                       id="input-tendlc-use-case", prompt="Choose"),
                        required=True)
        yield FormField("status", "Status", select(choices(TENDLC_STATUSES), c.status if c else "active",
                                                   id="input-tendlc-status", allow_blank=False))
        yield FormField("description", "Description", Input((c.description or "") if c else "", compact=True,
                                                            id="input-tendlc-description"))
        yield FormField("samples", "Sample messages", TextArea("\n".join(c.samples) if c else "", compact=True,
                                                               soft_wrap=False, id="input-tendlc-samples"),
                        help=f"One per line, at most {MAX_SAMPLES}, as registered")
