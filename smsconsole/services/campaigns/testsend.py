"""A campaign's test send (the wizard's Test step and `campaigns test`): the message rendered as a
chosen profile (or the audience's sample), with the provider options the campaign would send
(DLT fields, a Generic provider's blocks), queued to any number through the campaign's route —
the Test send path, so it shows in Test send's list and its path names the campaign."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole.services.campaigns.content import render_message, run_content
from smsconsole.services.campaigns.definition import CampaignDocument
from smsconsole.services.campaigns.render import Preview, RenderProblem, preview, profile_for
from smsconsole.services.errors import NotFound, ValidationError
from smsconsole.services.groups import list_groups
from smsconsole.services.messages import MessageView, queue_test_message


@dataclass(frozen=True)
class TestSent:
    preview: Preview
    message: MessageView
    route: str  # in words: "group uk", "provider twilio"


async def send_campaign_test(session: AsyncSession, document: CampaignDocument, *, to: str,
                             profile_ref: str | None = None, campaign_id: int | None = None,
                             default_region: str | None, actor: str,
                             client: httpx.AsyncClient | None = None, shown: Preview | None = None) -> TestSent:
    """Render `document` for `profile_ref` (user id, phone or profile id; None: the audience's
    first reachable profile, else the sample) and queue it to `to` through the campaign's route
    (default routing: the default group). Problems are a ValidationError naming `profile`,
    `route`, `to` or the body's field. `shown`: the preview the caller already rendered for
    `profile_ref` (the wizard shows it first), so the body is not rendered twice."""
    if shown is None:
        try:
            shown = await preview(session, document, profile_ref=profile_ref, default_region=default_region,
                                  client=client)
        except NotFound as exc:
            raise ValidationError([("profile", str(exc))]) from exc
    if shown.problem:
        raise ValidationError([("what.body", shown.problem)])
    options: dict[str, str] = {}
    content = run_content(document.to_dict(), client)
    if content.fixed or content.personal_options:
        profile, _ = await profile_for(session, document, profile_ref, default_region=default_region)
        try:
            _, options = await render_message(content, profile, body=False)
        except RenderProblem as problem:
            raise ValidationError([("what.generic", problem.reason)]) from problem
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

