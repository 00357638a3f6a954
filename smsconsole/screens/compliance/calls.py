"""Settings → Compliance: the service call behind each tab's save, remove and import. A save runs
in the form's worker, so a ValidationError shows each reason under its field."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from smsconsole.screens.base import ACTOR
from smsconsole.screens.dialogs.registry_form import Draft
from smsconsole.services.compliance import prices, senders, templates
from smsconsole.services.compliance.prices import PriceView
from smsconsole.services.compliance.senders import SenderView
from smsconsole.services.compliance.templates import DltTemplateView, TenDlcCampaignView

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


def _text(draft: Draft, name: str) -> str | None:
    return draft.get(name, "").strip() or None


async def _save_sender(session: AsyncSession, draft: Draft, view: SenderView | None) -> SenderView:
    fields = {"value": draft.get("value", ""), "type": _text(draft, "type"), "countries": draft.get("countries", ""),
              "brand_id": _text(draft, "brand_id"), "tendlc_campaign": _text(draft, "tendlc_campaign"),
              "tollfree_status": _text(draft, "tollfree_status"), "dlt_entity_id": _text(draft, "dlt_entity_id"),
              "note": _text(draft, "note")}
    if view is None or view.implicit or view.id is None:
        return await senders.add_sender(session, provider=draft.get("provider", ""), actor=ACTOR, **fields)
    return await senders.update_sender(session, view.id, actor=ACTOR, **fields)


async def _save_dlt(session: AsyncSession, draft: Draft, view: DltTemplateView | None) -> DltTemplateView:
    fields = {"template_id": draft.get("template_id", ""), "header": draft.get("header", ""),
              "category": draft.get("category", ""), "content": draft.get("content", ""),
              "name": _text(draft, "name"), "entity_id": _text(draft, "entity_id")}
    if view is None:
        return await templates.add_dlt_template(session, actor=ACTOR, **fields)
    return await templates.update_dlt_template(session, view.id, actor=ACTOR, **fields)


async def _save_tendlc(session: AsyncSession, draft: Draft, view: TenDlcCampaignView | None) -> TenDlcCampaignView:
    samples = [line.strip() for line in draft.get("samples", "").splitlines() if line.strip()]
    fields = {"brand_id": draft.get("brand_id", ""), "use_case": draft.get("use_case", ""), "samples": samples,
              "description": _text(draft, "description"), "status": draft.get("status") or "active"}
    if view is None:
        return await templates.add_tendlc_campaign(session, campaign_id=draft.get("campaign_id", ""), actor=ACTOR,
                                                   **fields)
    return await templates.update_tendlc_campaign(session, view.id, actor=ACTOR, **fields)


async def _save_price(session: AsyncSession, draft: Draft, view: PriceView | None) -> PriceView:
    saved = await prices.set_price(session, provider=draft.get("provider", ""), country=draft.get("country", ""),
                                   amount=draft.get("amount", ""), currency=draft.get("currency") or "USD",
                                   unit=draft.get("unit") or "segment", sender_type=draft.get("sender_type", ""),
                                   actor=ACTOR)
    if view is not None and saved.id != view.id:  # moved to another provider, country or type: one row, not two
        await prices.remove_price(session, view.id, actor=ACTOR)
    return saved


SaveCall = Callable[["AsyncSession", Draft, Any], Any]
SAVES: dict[str, SaveCall] = {"senders": _save_sender, "dlt": _save_dlt, "tendlc": _save_tendlc, "prices": _save_price}
REMOVES: dict[str, Callable[[AsyncSession, Any], Any]] = {
    "senders": lambda session, v: senders.remove_sender(session, v.id, actor=ACTOR),
    "dlt": lambda session, v: templates.remove_dlt_template(session, v.id, actor=ACTOR),
    "tendlc": lambda session, v: templates.remove_tendlc_campaign(session, v.id, actor=ACTOR),
    "prices": lambda session, v: prices.remove_price(session, v.id, actor=ACTOR),
}
IMPORTERS: dict[str, Callable[..., Any]] = {"dlt": templates.import_dlt_templates, "prices": prices.import_prices}
