"""Campaign bodies: Liquid templates (python-liquid), checked at save, rendered per recipient when
the engine claims a message, previewed in the wizard and the CLI.

The render context is one variable, `profile`:

    profile.user_id  profile.phone  profile.name  profile.country  profile.timezone
    profile.<key>             every key of the profile's properties (a property never hides a
                              built-in field above: a property called `name` is only at ...)
    profile.properties.<key>  every property, whatever its name

A live campaign's body also has `event`, the event that triggered the message:

    event.name  event.at      the event's name and time (ISO 8601 UTC, e.g. 2026-12-24T09:30:00Z)
    event.<key>               every property of the event (never hiding name and at)
    event.properties.<key>    every property, whatever its name

A message without an event (an on-a-date campaign anchored on a profile property) or whose event
is gone renders `event` empty. A scheduled campaign's body naming `event` is refused.

A missing value renders as nothing, so `{{ profile.name | default: "there" }}` covers people
without a name. Unknown filters, unknown tags and variables other than `profile` (and `event` in
a live campaign, and names the template assigns itself) are refused by `template_problems` with
their line and column.

**Linked content** (`{% connected_content "URL" as name %}`, fetched at send time, once per URL
per run) is in services/campaigns/linked.py.

**Tracked links**: `{{ "https://shop.example.com/cart?u=" | append: profile.user_id | track }}`
replaces the URL with a short link on the domain set in Settings (services/links.py). Whoever
renders passes `links`: the engine a `MessageLinks` per message (real codes, made once per
message), previews and estimates a `PreviewLinks` (a placeholder code of the real length).
Without a domain, or without `links`, `track` is a render problem naming the Setting.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from liquid import Environment, RenderContext
from liquid.exceptions import LiquidError
from liquid.filter import with_context
from liquid.output import LimitedStringIO
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole import clock
from smsconsole.models import CampaignRun, Event, Message, Profile, PropertyDef
from smsconsole.services.campaigns.linked import (  # noqa: F401  (RenderProblem, LinkedAbort, LinkedContent: named here too)
    LINKED_KEY,
    LINKED_TAG,
    LinkedAbort,
    LinkedContent,
    LinkedTag,
    RenderProblem,
)
from smsconsole.services.links import NO_DOMAIN, LinkProblem, preview_links
from smsconsole.sms import analyze, ucs2_culprits

PROFILE_FIELDS = ("user_id", "phone", "name", "country", "timezone")
EVENT_FIELDS = ("name", "at")
_LINKS_KEY = "smsconsole.links"
TRACK_FILTER = "track"

# The profile a preview renders when the audience has no reachable profile (and none was picked).
SAMPLE_PROFILE: dict[str, Any] = {
    "user_id": "sample", "phone": "+14155550100", "name": "Alex", "country": "US",
    "timezone": "America/New_York", "properties": {},
}


class _Environment(Environment):
    """Liquid with bounds: a body is an SMS, so a runaway loop or output is a render problem."""

    loop_iteration_limit = 10_000
    output_stream_limit = 20_000  # characters
    local_namespace_limit = 100_000  # bytes of assigned values


@with_context
def _track(value: Any, *, context: RenderContext) -> str:
    """`url | track`: the short link of `url` for this message (see the module docstring)."""
    links = context.tag_namespace.get(_LINKS_KEY)
    if links is None:
        raise RenderProblem(NO_DOMAIN)
    try:
        return str(links.shorten(value))
    except LinkProblem as problem:
        raise RenderProblem(str(problem)) from None


ENV = _Environment()
ENV.add_tag(LinkedTag)
ENV.add_filter(TRACK_FILTER, _track)


def tracks_links(body: str) -> bool:
    """Whether a body uses `| track` (a parse failure: no)."""
    if TRACK_FILTER not in body:
        return False
    try:
        return TRACK_FILTER in ENV.from_string(body).analyze().filters
    except LiquidError:
        return False


# --- checking and compiling ---------------------------------------------------------------------


def _where(source: str, index: int) -> str:
    before = source[:max(0, index)]
    line = before.count("\n") + 1
    column = index - (before.rfind("\n") + 1) + 1
    return f"line {line}, column {column}"


def _error_text(err: LiquidError, source: str) -> str:
    context = err.context()
    if context is not None:
        where = f"line {context[0]}, column {context[1] + 1}"
    else:
        where = _where(source, len(source.rstrip()))  # e.g. a block never closed: at the end
    return f"{where}: {err.message}"


def template_problems(body: str, *, event: bool = False) -> list[str]:
    """Every problem of a body as "line L, column C: what" ([] when it renders): syntax errors,
    unknown tags and filters, and variables other than `profile` (and `event`, when `event`:
    a live campaign's body) that the body does not assign."""
    try:
        template = ENV.from_string(body)
    except LiquidError as err:
        return [_error_text(err, body)]
    problems: list[tuple[int, str]] = []
    try:
        analysis = template.analyze()
    except LiquidError as err:  # pragma: no cover - analysis of a parsed template
        return [_error_text(err, body)]
    for name, spans in analysis.filters.items():
        if name not in ENV.filters:
            problems.extend((span.index, f"unknown filter {name!r}") for span in spans)
    for name, variables in analysis.globals.items():
        if name == "event" and not event:
            problems.extend((v.span.index, "event.<property> is only available in live campaigns "
                             "(single action, inaction within time, on a date)") for v in variables[:1])
        elif name not in ("profile", "event"):
            hint = "profile.<field> or event.<property>" if event else "profile.<field>"
            problems.extend((v.span.index, f"unknown variable {name!r}: use {hint}") for v in variables[:1])
    return [f"{_where(body, index)}: {text}" for index, text in sorted(problems)]


@functools.lru_cache(maxsize=256)
def compile_body(body: str, event: bool = False) -> Any:
    """The body parsed once (cached by its text). RenderProblem with the first problem (line and
    column) when it does not parse or names an unknown filter or variable (`event` is known
    when `event`: a live campaign's body)."""
    problems = template_problems(body, event=event)
    if problems:
        raise RenderProblem(f"the template has an error at {problems[0]}")
    return ENV.from_string(body)


def profile_context(profile: Mapping[str, Any]) -> dict[str, Any]:
    """`profile` as templates see it (see the module's docstring). `profile` is a mapping with
    the built-in fields and `properties`, or a Profile row."""
    if isinstance(profile, Profile):
        profile = profile_mapping(profile)
    properties = dict(profile.get("properties") or {})
    context: dict[str, Any] = {key: value for key, value in properties.items() if key not in PROFILE_FIELDS}
    context.update({key: profile.get(key) for key in PROFILE_FIELDS})
    context["properties"] = properties
    return context


def event_context(event: Mapping[str, Any] | None) -> dict[str, Any]:
    """`event` as templates see it: its properties, `name`, `at` (ISO text) and `properties`;
    empty for None (no event, or the event is gone). `event` is a mapping with name, at and
    properties (event_mapping)."""
    if not event:
        return {}
    properties = dict(event.get("properties") or {})
    context: dict[str, Any] = {key: value for key, value in properties.items() if key not in EVENT_FIELDS}
    at = event.get("at")
    context.update({"name": event.get("name"), "at": _iso(at) if isinstance(at, datetime) else at})
    context["properties"] = properties
    return context


def _iso(moment: datetime) -> str:
    from smsconsole.services.values import format_datetime

    return format_datetime(moment)


def event_mapping(row: Any) -> dict[str, Any]:
    """The name, time and properties of an Event row (or any object with them)."""
    return {"name": row.name, "at": row.at, "properties": dict(row.properties or {})}


def profile_mapping(row: Any) -> dict[str, Any]:
    """The built-in fields and properties of a Profile row (or any object with them)."""
    return {"user_id": row.user_id, "phone": row.phone, "name": row.name, "country": row.country,
            "timezone": row.timezone, "properties": dict(row.properties or {})}


async def render_text(template: Any, profile: Mapping[str, Any], *, linked: LinkedContent | None = None,
                      event: Mapping[str, Any] | None = None, links: Any = None) -> str:
    """The template rendered for one profile (and the triggering event of a live campaign's
    message), as is (may be empty). `links` makes `track`'s short links (services/links.py:
    MessageLinks or PreviewLinks). RenderProblem on failure."""
    context = RenderContext(template, globals=template.make_globals(
        {"profile": profile_context(profile), "event": event_context(event)}))
    if linked is not None:
        context.tag_namespace[LINKED_KEY] = linked
    if links is not None:
        context.tag_namespace[_LINKS_KEY] = links
    buffer = LimitedStringIO(limit=ENV.output_stream_limit)
    try:
        await template.render_with_context_async(context, buffer)
    except RenderProblem:
        raise
    except LiquidError as err:
        raise RenderProblem(_error_text(err, template.source if hasattr(template, "source") else "")) from err
    except (ValueError, TypeError, ArithmeticError, KeyError, AttributeError) as err:
        raise RenderProblem(f"{type(err).__name__}: {err}") from err
    return buffer.getvalue()


async def render_for(template: Any, profile: Mapping[str, Any], *, linked: LinkedContent | None = None,
                     event: Mapping[str, Any] | None = None, links: Any = None) -> str:
    """The message for one recipient: RenderProblem when rendering fails or the text is empty or
    only whitespace (LinkedAbort when linked content failed under the "abort" policy)."""
    text = await render_text(template, profile, linked=linked, event=event, links=links)
    if not text.strip():
        raise RenderProblem("the message came out empty")
    return text


# --- preview and the @ menu ---------------------------------------------------------------------


@dataclass(frozen=True)
class Preview:
    text: str
    chars: int
    encoding: str
    segments: int
    ucs2_chars: tuple[str, ...]  # the characters that force UCS-2, each once, in order
    profile_label: str  # whose profile it was rendered for
    problem: str | None  # why it cannot be rendered (text is then "")
    event_label: str | None = None  # live campaigns: which event `event` was (None: not a live campaign)
    variant: str | None = None  # the variant rendered ("A"…"E") when the campaign has more than one


def _label(profile: Mapping[str, Any], sample: bool) -> str:
    if sample:
        return f"sample profile ({profile.get('name')})"
    who = profile.get("name") or profile.get("user_id") or profile.get("phone") or "profile"
    extra = profile.get("user_id") or profile.get("phone")
    return f"{who} ({extra})" if extra and extra != who else str(who)


async def _audience_sample(session: AsyncSession, document: Any) -> Profile | None:
    """The first reachable profile of the document's audience (of a live campaign: preferably
    one who did its trigger event), or None."""
    from smsconsole.services.errors import NotFound, ValidationError
    from smsconsole.services.queries.reach import reachable_condition
    from smsconsole.services.segments.compiler import segment_condition
    from smsconsole.services.segments.crud import get_segment

    who = document.who
    definition = who.definition
    try:
        if definition is None and who.segment:
            definition = (await get_segment(session, who.segment)).definition
        query = select(Profile).where(reachable_condition())
        if definition is not None:
            query = query.where(await segment_condition(session, definition))
    except (ValidationError, NotFound):  # an unfinished audience: fall back to the sample
        return None
    name = _trigger_event(document)
    if name:
        found = await session.scalar(query.where(select(Event.id).where(
            Event.profile_id == Profile.id, Event.name == name).exists()).order_by(Profile.id).limit(1))
        if found is not None:
            return found
    return await session.scalar(query.order_by(Profile.id).limit(1))


def _trigger_event(document: Any) -> str | None:
    """The event a live campaign's messages carry (its trigger event), else None."""
    from smsconsole.services.campaigns.definition import LIVE_TYPES

    trigger = getattr(getattr(document, "who", None), "trigger", None)
    if getattr(document, "type", None) not in LIVE_TYPES or trigger is None:
        return None
    return trigger.event


async def event_for(session: AsyncSession, document: Any, profile: Mapping[str, Any],
                    given: Mapping[str, Any] | None = None) -> tuple[dict[str, Any] | None, str | None]:
    """The sample event a live campaign's preview or test renders with, and its label: the
    properties `given` by the operator, else the person's latest trigger event, else none (an
    empty `event`). (None, None) for a scheduled campaign."""
    from smsconsole.services.campaigns.definition import LIVE_TYPES

    if getattr(document, "type", None) not in LIVE_TYPES:
        return None, None
    name = _trigger_event(document)
    if given is not None:
        return {"name": name, "at": clock.now(), "properties": dict(given)}, "as given"
    if name and profile.get("id") is not None:
        row = await session.scalar(select(Event).where(Event.profile_id == profile["id"], Event.name == name)
                                   .order_by(Event.at.desc(), Event.id.desc()).limit(1))
        if row is not None:
            return event_mapping(row), f"{name} of {row.at:%Y-%m-%d %H:%M} UTC"
    if name:
        return None, f"none: no {name} event yet (event.* renders empty)"
    return None, "none (event.* renders empty)"


async def profile_for(session: AsyncSession, document: Any, profile_ref: str | None, *,
                      default_region: str | None = None) -> tuple[dict[str, Any], bool]:
    """(the render mapping of `profile_ref`, or else of the audience's first reachable profile,
    or else of the built-in sample; whether it is the sample). NotFound for an unknown ref."""
    from smsconsole.services.profiles.reading import find_profile

    if profile_ref:
        row = await find_profile(session, profile_ref, default_region=default_region)
        return {**profile_mapping(row), "id": row.id}, False
    row = await _audience_sample(session, document)
    return (dict(SAMPLE_PROFILE), True) if row is None else ({**profile_mapping(row), "id": row.id}, False)


def pick_variant(document: Any, name: str | None) -> Any:
    """Variant `name` ("A"…"E", any case; A when None) of `document` (a CampaignDocument), as an
    arms.Variant. A name the campaign does not have (or "control", which is never sent) raises
    ValidationError naming `variant`."""
    from smsconsole.services.campaigns.arms import CONTROL
    from smsconsole.services.errors import ValidationError

    arms = document.what.arms
    if name is None:
        return arms[0]
    wanted = str(name).strip()
    found = next((v for v in arms if v.name == wanted.upper()), None)
    if found is not None:
        return found
    names = ", ".join(v.name for v in arms)
    if wanted.lower() == CONTROL:
        raise ValidationError([("variant", f"the control group is never sent, so it has no message; "
                                           f"choose a variant ({names})")])
    has = f"only variant {names}" if len(arms) == 1 else f"variants {names}"
    raise ValidationError([("variant", f"the campaign has no variant {wanted!r}; it has {has}")])


async def preview(session: AsyncSession, document: Any, *, profile_ref: str | None = None,
                  default_region: str | None = None, client: httpx.AsyncClient | None = None,
                  event: Mapping[str, Any] | None = None, variant: str | None = None) -> Preview:
    """The body of `document` (a CampaignDocument) rendered for one profile: `profile_ref` (user
    id, phone or profile id), else the first reachable profile of its audience, else the built-in
    sample "Alex". `variant` picks the variant ("A"…"E"; A when None; a name the campaign does
    not have raises ValidationError, see `pick_variant`). A live campaign's body gets a sample
    `event` (see `event_for`; `event`: the properties the operator gives). Linked content is
    fetched (through `client`, or a client of its own). A profile_ref naming no one raises
    services.errors.NotFound."""
    from smsconsole.services.campaigns.definition import LIVE_TYPES

    arm = pick_variant(document, variant)
    shown_variant = arm.name if len(document.what.arms) > 1 else None
    mapping, sample = await profile_for(session, document, profile_ref, default_region=default_region)
    label = _label(mapping, sample)
    sample_event, event_label = await event_for(session, document, mapping, event)
    what = document.what
    linked = LinkedContent(client, timeout=what.linked_timeout, on_failure="skip")
    links = await preview_links(session) if tracks_links(arm.body) else None
    try:
        template = compile_body(arm.body, getattr(document, "type", None) in LIVE_TYPES)
        text = await render_for(template, mapping, linked=linked, event=sample_event, links=links)
    except RenderProblem as problem:
        return Preview("", 0, "GSM-7", 0, (), label, problem.reason, event_label, shown_variant)
    finally:
        await linked.aclose()
    info = analyze(text)
    culprits = tuple(dict.fromkeys(c.char for c in ucs2_culprits(text)))
    return Preview(text, info.characters, str(info.encoding), info.segments, culprits, label, None, event_label,
                   shown_variant)


async def known_properties(session: AsyncSession, *, event: str | None = None) -> list[str]:
    """What the `@` menu offers: the built-in fields, then every declared profile property (as
    profile.properties.<name>, which never collides with a built-in field); with `event` (a live
    campaign's trigger event) also event.name, event.at and that event's declared properties."""
    names = await session.scalars(
        select(PropertyDef.name).where(PropertyDef.scope == "profile").order_by(PropertyDef.name)
    )
    known = [f"profile.{field}" for field in PROFILE_FIELDS] + [f"profile.properties.{name}" for name in names]
    if event:
        event_names = await session.scalars(
            select(PropertyDef.name).where(PropertyDef.scope == f"event:{event}").order_by(PropertyDef.name))
        known += [f"event.{field}" for field in EVENT_FIELDS] + [f"event.properties.{name}" for name in event_names]
    return known


# --- aborting a run -----------------------------------------------------------------------------


async def abort_run(session: AsyncSession, run_id: int, reason: str, *, now: datetime | None = None) -> int:
    """Stop a run whose linked content failed under the "abort" policy: the run becomes `failed`
    with the reason, its queued and held messages are suppressed ("run aborted: reason"). Returns
    how many messages were suppressed. Idempotent; the caller commits. Messages already claimed
    by an engine are settled by that engine."""
    now = now or clock.now()
    text = f"run aborted: {reason}"
    await session.execute(
        update(CampaignRun)
        .where(CampaignRun.id == run_id, CampaignRun.state.in_(("planned", "materializing", "running", "paused")))
        .values(state="failed", reason=text, finished_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    result = await session.execute(
        update(Message)
        .where(Message.run_id == run_id, Message.state.in_(("queued", "held")))
        .values(state="suppressed", reason=text, finished_at=now, updated_at=now, next_attempt_at=None,
                claim_token=None)
        .execution_options(synchronize_session=False)
    )
    campaign_id = await session.scalar(select(CampaignRun.campaign_id).where(CampaignRun.id == run_id))
    if campaign_id is not None:
        from smsconsole.services import audit

        await audit.record(session, "engine", "campaign.run_failed", f"C{campaign_id}", run_id=run_id,
                           reason=text)
    return result.rowcount or 0

