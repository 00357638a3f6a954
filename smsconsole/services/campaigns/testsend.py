"""A campaign's test send (the wizard's Test step and `campaigns test`): the message rendered as a
chosen profile (or the audience's sample), with the provider options the campaign would send
(DLT fields, a Generic provider's blocks), queued to any number through the campaign's route —
the Test send path, so it shows in Test send's list and its path names the campaign."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole.services.campaigns.content import render_message, run_content
from smsconsole.services.campaigns.definition import CampaignDocument
from smsconsole.services.campaigns.render import (
    Preview,
    RenderProblem,
    event_for,
    pick_variant,
    preview,
    profile_for,
)
from smsconsole.services.errors import NotFound, ValidationError
from smsconsole.services.groups import list_groups
from smsconsole.services.links import preview_links
from smsconsole.services.messages import MessageView, queue_test_message


@dataclass(frozen=True)
class TestSent:
    preview: Preview
    message: MessageView
    route: str  # in words: "group uk", "provider twilio"


async def send_campaign_test(session: AsyncSession, document: CampaignDocument, *, to: str,
                             profile_ref: str | None = None, campaign_id: int | None = None,
                             default_region: str | None, actor: str,
                             client: httpx.AsyncClient | None = None, shown: Preview | None = None,
                             event: Mapping[str, Any] | None = None, variant: str | None = None) -> TestSent:
    """Render `document` for `profile_ref` (user id, phone or profile id; None: the audience's
    first reachable profile, else the sample) and queue it to `to` through the campaign's route
    (default routing: the default group). Problems are a ValidationError naming `profile`,
    `route`, `to` or the body's field. `shown`: the preview the caller already rendered for
    `profile_ref` (the wizard shows it first), so the body is not rendered twice. A live campaign
    renders with a sample event: the properties `event` gives, else the person's latest trigger
    event (render.event_for). `variant` ("A"…"E"; A when None) sends that variant's body, DLT
    and Generic fields; a variant the campaign does not have is a ValidationError naming
    `variant`."""
    arm = pick_variant(document, variant)
    if shown is None:
        try:
            shown = await preview(session, document, profile_ref=profile_ref, default_region=default_region,
                                  client=client, event=event, variant=arm.name)
        except NotFound as exc:
            raise ValidationError([("profile", str(exc))]) from exc
    arms = document.what.arms
    where = "what" if len(arms) == 1 else f"what.variants.{arms.index(arm) + 1}"
    if shown.problem:
        raise ValidationError([(f"{where}.body", shown.problem)])
    options: dict[str, str] = {}
    content = run_content(document.to_dict(), client)
    compiled = content.variant(arm.name)
    if compiled.fixed or compiled.personal_options or compiled.problem:
        profile, _ = await profile_for(session, document, profile_ref, default_region=default_region)
        sample_event, _ = await event_for(session, document, profile, event)
        try:
            _, options = await render_message(content, profile, body=False, event=sample_event, variant=arm.name,
                                              links=await preview_links(session))
        except RenderProblem as problem:
            raise ValidationError([(f"{where}.generic", problem.reason)]) from problem
        finally:
            if content.linked is not None:
                await content.linked.aclose()
    group, provider = document.what.route_group or "", document.what.route_provider or ""
    if not group and not provider:
        group = next((g.name for g in await list_groups(session) if g.is_default), "")
        if not group:
            raise ValidationError([("route", "default routing has no default group to test through; "
                                    "choose a group or a provider in What")])
    queued = await queue_test_message(session, provider_name=provider, group_name=group, to=to, body=shown.text,
                                      default_region=default_region, actor=actor, options=options,
                                      campaign_id=campaign_id)
    return TestSent(shown, queued, f"provider {provider}" if provider else f"group {group}")

