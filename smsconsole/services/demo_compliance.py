"""The demo's compliance data: senders, a 10DLC campaign, DLT templates and prices on the Sandbox,
chosen so a promotional campaign to the whole demo audience gets a preflight worth reading.

What the preflight of such a campaign (the demo's "Winter sale A/B", or a new one to Everyone
through the Sandbox) then says, country by country:

- US: sends from a long code under an active 10DLC campaign (passes); a toll-free number is
  registered too, its verification pending (Settings → Compliance shows it; choosing it as the
  campaign's sender blocks US). Quiet hours 08:00–21:00 recipient local time block a run planned
  outside them.
- IN: a numeric promotional header and an alphanumeric service header with their principal entity.
  The promotional template is the Winter sale's variant A word for word with the discount as a
  {#var#}; variant B (the name and code one) matches no template, so the preflight blocks it and
  names the first word that differs — the lesson of DLT: the rendered body must be the template.
- GB, SG: an alphanumeric sender id, listed for SG (its Sender ID Registry); DE goes out under the
  Sandbox's own alphanumeric id (no registration needed).
- BR, AU: only the Sandbox's own alphanumeric id reaches them, and both countries want an
  alphanumeric sender id registered for them: blocked, with the fix named.
- ZA: no country rules in the rules file, and deliberately no price: the estimate shows
  "no price" and leaves its recipients out of the total.

Prices are per segment, typed in by hand (source manual): real-ish figures of late 2026, not quotes.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole.services.compliance.prices import set_price
from smsconsole.services.compliance.senders import add_sender
from smsconsole.services.compliance.templates import (
    add_dlt_template,
    add_tendlc_campaign,
)

ACTOR = "demo"
ENTITY = "1201160000000012345"  # a DLT principal entity id (19 digits, as the DLT platforms give them)
TENDLC_CAMPAIGN = {"campaign_id": "CDEMO4X", "brand_id": "BDEMO7Q", "use_case": "MARKETING",
                   "description": "Seasonal offers to customers who opted in at checkout",
                   "samples": ["Winter sale: 20% off everything today. Reply STOP to opt out.",
                               "Ava, your 20% winter code WINTER20 works today only. Reply STOP to opt out."]}
# (value, type, countries, registration fields, note)
SENDERS: list[tuple[str, str, list[str], dict[str, str], str]] = [
    ("+14155550123", "long_code", ["US"], {"brand_id": "BDEMO7Q", "tendlc_campaign": "CDEMO4X"},
     "US long code under the MARKETING 10DLC campaign"),
    ("+18885550123", "toll_free", ["US", "CA"], {"tollfree_status": "pending"},
     "toll-free verification submitted, not approved yet"),
    ("SMSConsole", "alphanumeric", ["GB", "SG"], {}, "alphanumeric id; on Singapore's SSIR"),
    ("560123", "short_code", ["IN"], {"dlt_entity_id": ENTITY}, "India DLT header for promotional messages"),
    ("SMSCON", "alphanumeric", ["IN"], {"dlt_entity_id": ENTITY}, "India DLT header for service messages"),
]
# (template id, header, category, name, content)
DLT_TEMPLATES = [
    ("1207170000000000101", "560123", "promotional", "Winter sale",
     "Winter sale: {#var#} off everything today. Reply STOP to opt out."),
    ("1207170000000000102", "SMSCON", "service", "Order shipped",
     "Hi {#var#}, your order {#var#} has shipped and arrives in {#var#} days."),
]
# country -> (price per segment, currency); ZA is left unpriced on purpose
PRICES = {"US": (0.0083, "USD"), "IN": (0.20, "INR"), "GB": (0.0400, "GBP"), "DE": (0.0897, "USD"),
          "BR": (0.0525, "USD"), "AU": (0.0515, "USD"), "SG": (0.0474, "USD")}


async def create_compliance(session: AsyncSession, provider: str) -> None:
    """Register the demo's senders, 10DLC campaign, DLT templates and prices on `provider`, through
    the same services (and audit trail) as Settings → Compliance."""
    await add_tendlc_campaign(session, **TENDLC_CAMPAIGN, status="active", actor=ACTOR)
    for value, kind, countries, registration, note in SENDERS:
        await add_sender(session, provider=provider, value=value, type=kind, countries=countries, note=note,
                         actor=ACTOR, **registration)
    for template_id, header, category, name, content in DLT_TEMPLATES:
        await add_dlt_template(session, template_id=template_id, header=header, category=category, name=name,
                               content=content, entity_id=ENTITY, actor=ACTOR)
    for country, (amount, currency) in PRICES.items():
        await set_price(session, provider=provider, country=country, amount=amount, currency=currency,
                        unit="segment", actor=ACTOR)
