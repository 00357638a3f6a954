"""What the campaign services share: the frozen views they return, finding a campaign by its
reference (12, C12 or its name), the name rule, the next run time, and the strict check a
campaign passes before it is scheduled (every problem named at once)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole.models import Campaign, CampaignRun, Event, PropertyDef, Provider, ProviderGroup, Segment
from smsconsole.services.campaigns.definition import NAME_MAX, campaign_code, check_name, parse_code, parse_document
from smsconsole.services.errors import NotFound, ValidationError
from smsconsole.services.segments import check_definition
from smsconsole.services.settings import get_settings, setting_value

if TYPE_CHECKING:
    from smsconsole.services.campaigns.definition import CampaignDocument
    from smsconsole.services.campaigns.runs import RunCounts

NAME_LIMIT = NAME_MAX
# States in which a campaign takes part in sending (its segment may not be deleted).
ACTIVE_STATES = ("scheduled", "running", "paused", "blocked")
# Run states that are not over yet (`live`: a live campaign's one run while it takes triggers).
OPEN_RUN_STATES = ("planned", "materializing", "running", "live", "paused", "blocked")


@dataclass(frozen=True)
class RunView:
    id: int
    number: int
    planned_at: datetime
    state: str
    reason: str | None
    started_at: datetime | None
    materialized_at: datetime | None
    finished_at: datetime | None
    qualified: int | None
    materialized: int | None
    suppressed: dict[str, Any]  # people held back before any outbox row was written, by reason
    counts: RunCounts | None  # the run's messages by state (services.campaigns.runs.run_counts)


@dataclass(frozen=True)
class CampaignView:
    id: int
    code: str  # the Campaign ID people see: C12
    name: str
    type: str
    state: str
    document: dict[str, Any]
    next_run_at: datetime | None
    blocked_reason: str | None
    created_at: datetime
    updated_at: datetime
    scheduled_at: datetime | None
    last_run: RunView | None


def run_view(row: CampaignRun, counts: Mapping[int, Any]) -> RunView:
    return RunView(row.id, row.number, row.planned_at, row.state, row.reason, row.started_at,
                   row.materialized_at, row.finished_at, row.qualified, row.materialized,
                   dict(row.suppressed or {}), counts.get(row.id))


def campaign_view(row: Campaign, last_run: RunView | None = None) -> CampaignView:
    return CampaignView(row.id, campaign_code(row.id), row.name, row.type, row.state, dict(row.document or {}),
                        row.next_run_at, row.blocked_reason, row.created_at, row.updated_at, row.scheduled_at,
                        last_run)


async def run_counts(session: AsyncSession, run_ids: Sequence[int]) -> dict[int, Any]:
    """Each run's message counts, from services.campaigns.runs."""
    if not run_ids:
        return {}
    from smsconsole.services.campaigns.runs import run_counts as counts  # lazy: it loads httpx and the materializer

    return dict(await counts(session, list(run_ids)))


async def last_runs(session: AsyncSession, campaign_ids: Iterable[int]) -> dict[int, RunView]:
    """The latest run (highest number) of each campaign that has one, with its counts."""
    ids = list(campaign_ids)
    if not ids:
        return {}
    latest = (select(CampaignRun.campaign_id, func.max(CampaignRun.number).label("number"))
              .where(CampaignRun.campaign_id.in_(ids)).group_by(CampaignRun.campaign_id).subquery())
    rows = list(await session.scalars(select(CampaignRun).join(
        latest, (CampaignRun.campaign_id == latest.c.campaign_id) & (CampaignRun.number == latest.c.number))))
    counts = await run_counts(session, [r.id for r in rows])
    return {r.campaign_id: run_view(r, counts) for r in rows}


async def campaign_row(session: AsyncSession, ref: int | str, *, lock: bool = False) -> Campaign:
    """A campaign that is not deleted, by id (12), Campaign ID (C12) or name. lock: FOR UPDATE (on
    PostgreSQL), so a change does not cross the engine starting a run (it locks campaigns too)."""
    text = str(ref).strip()
    campaign_id = ref if isinstance(ref, int) else parse_code(text)

    async def first(condition: Any) -> Campaign | None:
        query = select(Campaign).where(condition, Campaign.deleted_at.is_(None))
        return await session.scalar(query.with_for_update() if lock else query)

    if campaign_id is not None:
        row = await first(Campaign.id == campaign_id)
        if row is not None:
            return row
    row = await first(Campaign.name == text)
    if row is None:
        raise NotFound(f"no campaign {text!r} (give its Campaign ID such as C12, or its name)")
    return row


async def name_problems(session: AsyncSession, name: Any, except_id: int | None = None) -> list[tuple[str, str]]:
    """A name is required (definition.check_name), not a Campaign ID, and unique among the
    campaigns that are not deleted."""
    clean, reason = check_name(name)
    if reason or clean is None:
        return [("name", reason or "give the campaign a name")]
    if parse_code(clean) is not None:
        return [("name", "looks like a Campaign ID (C12); choose a name with words in it")]
    query = select(Campaign.id).where(Campaign.name == clean, Campaign.deleted_at.is_(None))
    if except_id is not None:
        query = query.where(Campaign.id != except_id)
    if await session.scalar(query) is not None:
        return [("name", f"a campaign named {clean!r} already exists")]
    return []


def storable(document: Any) -> dict[str, Any]:
    """The document as it will be saved: a JSON object (a draft keeps whatever was filled in), its
    name tidied, without what `show --json` adds (id, code, state)."""
    if not isinstance(document, Mapping):
        raise ValidationError([("document", "must be a table of fields (name, type, when, who, what)")])
    kept = {key: value for key, value in document.items() if key not in ("id", "code", "state")}
    clean, _ = check_name(kept.get("name"))
    if clean:
        kept["name"] = clean
    try:
        return json.loads(json.dumps(kept, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValidationError([("document", f"holds a value JSON cannot keep ({exc})")]) from None


async def default_timezone(session: AsyncSession) -> str:
    return setting_value(await get_settings(session), "default_timezone")


async def parse(session: AsyncSession, document: Mapping[str, Any], *, strict: bool,
                ) -> tuple[CampaignDocument, list[tuple[str, str]]]:
    parsed, problems = parse_document(document, default_timezone=await default_timezone(session), strict=strict)
    return parsed, list(problems)


async def latest_planned(session: AsyncSession, campaign_id: int) -> datetime | None:
    return await session.scalar(select(func.max(CampaignRun.planned_at)).where(CampaignRun.campaign_id == campaign_id))


async def has_open_run(session: AsyncSession, campaign_id: int) -> bool:
    return await session.scalar(select(CampaignRun.id).where(
        CampaignRun.campaign_id == campaign_id, CampaignRun.state.in_(OPEN_RUN_STATES)).limit(1)) is not None


async def next_run(session: AsyncSession, parsed: CampaignDocument, campaign_id: int | None, now: datetime,
                   ) -> datetime | None:
    """The next planned time after now and after the campaign's latest run (a one-time campaign
    runs once: none once it has a run). A live campaign has one run, which starts at `when.start`
    (or now when that is past or not set); none once it has a run or its end has passed."""
    from smsconsole.services.campaigns.definition import LIVE_TYPES
    from smsconsole.services.campaigns.schedule import next_occurrence  # lazy: the phone time-zone table

    if parsed.type in LIVE_TYPES:
        if campaign_id is not None and await latest_planned(session, campaign_id) is not None:
            return None
        start, end = parsed.when.start, parsed.when.end
        if end is not None and end.astimezone(UTC) <= now:
            return None
        return max(now, start.astimezone(UTC)) if start is not None else now
    after = now
    if campaign_id is not None:
        latest = await latest_planned(session, campaign_id)
        if latest is not None:
            if parsed.type == "one_time":
                return None
            after = max(after, latest)
    return next_occurrence(parsed.when, parsed.type, after=after)


def _when_field(kind: str) -> tuple[str, str]:
    return {
        "action": ("when.end", "is in the past; choose a later end, or none"),
        "inaction": ("when.end", "is in the past; choose a later end, or none"),
        "date": ("when.end", "is in the past; choose a later end, or none"),
        "one_time": ("when.at", "is in the past; choose a later time or \"now\""),
        "multiple_dates": ("when.dates", "are all in the past; add a later date"),
    }.get(kind, ("when.recurrence", "has no run in the future (check start, end and the days chosen)"))


def _unique(problems: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    return list(dict.fromkeys(problems))


async def strict_check(session: AsyncSession, document: Mapping[str, Any], *, campaign_id: int | None,
                       now: datetime, need_next_run: bool = True,
                       ) -> tuple[CampaignDocument, datetime | None, list[tuple[str, str]]]:
    """Everything scheduling requires, every problem at once: the document itself, the name, the
    segment, group and provider it names, the body's Liquid, and a run in the future."""
    problems = await name_problems(session, document.get("name"), campaign_id)
    parsed, document_problems = await parse(session, document, strict=True)
    problems += [p for p in document_problems if p[0] != "name" or not problems]
    problems += await reference_problems(session, parsed)
    upcoming = None
    if not any(field == "type" or field.startswith("when") for field, _ in problems):
        upcoming = await next_run(session, parsed, campaign_id, now)
        if upcoming is None and need_next_run:
            problems.append(_when_field(parsed.type))
    return parsed, upcoming, _unique(problems)


def _is_live(parsed: CampaignDocument) -> bool:
    """A live campaign's texts may also use `event` (the triggering event's properties)."""
    from smsconsole.services.campaigns.definition import LIVE_TYPES

    return getattr(parsed, "type", None) in LIVE_TYPES


async def reference_problems(session: AsyncSession, parsed: CampaignDocument) -> list[tuple[str, str]]:
    """What the document names must exist: its saved segment, ad-hoc definition's properties,
    provider group or provider; and each variant's body must be Liquid that compiles."""
    problems: list[tuple[str, str]] = []
    who, what = getattr(parsed, "who", None), getattr(parsed, "what", None)
    segment = getattr(who, "segment", None)
    if segment and await session.scalar(select(Segment.id).where(Segment.name == segment)) is None:
        problems.append(("who.segment", f"no segment named {segment!r}"))
    definition = getattr(who, "definition", None)
    if definition is not None and not segment:
        try:
            await check_definition(session, definition)
        except ValidationError as exc:
            problems += [("who.definition" if path in ("", "definition") else f"who.definition.{path}", reason)
                         for path, reason in exc.problems]
    group = getattr(what, "route_group", None)
    if group and await session.scalar(select(ProviderGroup.id).where(ProviderGroup.name == group)) is None:
        problems.append(("what.route.group", f"no provider group named {group!r}"))
    provider = getattr(what, "route_provider", None)
    if provider and await session.scalar(select(Provider.id).where(Provider.name == provider)) is None:
        problems.append(("what.route.provider", f"no provider named {provider!r}"))
    problems += message_problems(what, live=_is_live(parsed))
    if getattr(who, "trigger", None) is not None:  # a live campaign: its trigger's conditions and date property
        from smsconsole.services.campaigns.live.triggers import trigger_problems  # lazy: live loads on first check

        problems += await trigger_problems(session, parsed)
    problems += await goal_problems(session, parsed)
    from smsconsole.services.campaigns.reply_options import reply_option_problems

    problems += await reply_option_problems(session, getattr(parsed, "replies", None))
    return problems


async def goal_problems(session: AsyncSession, parsed: CampaignDocument) -> list[tuple[str, str]]:
    """The conversion goal against the catalog: its event has been recorded, its `where` conditions
    fit the event's property types (as a live trigger's), and its value is a number property of it."""
    goal = getattr(parsed, "goal", None)
    if goal is None or not goal.event:
        return []
    rows = await session.execute(select(PropertyDef.name, PropertyDef.type)
                                 .where(PropertyDef.scope == f"event:{goal.event}"))
    types = {name: type_ for name, type_ in rows}
    if not types and await session.scalar(select(Event.id).where(Event.name == goal.event).limit(1)) is None:
        return [("goal.event", f"no event {goal.event!r} has been recorded yet; record one first (API or import)")]
    problems: list[tuple[str, str]] = []
    if goal.where:
        from smsconsole.services.campaigns.live.triggers import check_where  # lazy: live loads on first check

        problems += check_where(goal.where, goal.event, types, "goal.where")[1]
    if goal.value:
        type_ = types.get(goal.value)
        if type_ is None:
            problems.append(("goal.value", f"event {goal.event!r} has no property {goal.value!r}; "
                                           "the value is a number property of the goal event"))
        elif type_ != "number":
            problems.append(("goal.value", f"{goal.value!r} of event {goal.event!r} holds {type_} values; "
                                           "the value must be a number property"))
    return problems


def message_problems(what: Any, *, live: bool) -> list[tuple[str, str]]:
    """Each variant's body and per-recipient Generic values must be Liquid that compiles, named
    by where the file writes them: `what.body` (one variant) or `what.variants.N.body` (N from 1).
    Template variables and body values are rendered per recipient too: checked now, not at send."""
    if what is None:
        return []
    from smsconsole.services.campaigns.render import template_problems  # lazy: Liquid loads on first check

    arms = what.arms
    problems: list[tuple[str, str]] = []
    for number, variant in enumerate(arms, 1):
        where = "what" if len(arms) == 1 else f"what.variants.{number}"
        texts: list[tuple[str, Any]] = []
        if isinstance(variant.body, str) and variant.body.strip():
            texts.append((f"{where}.body", variant.body))
        generic = variant.generic or {}
        texts += [(f"{where}.generic.template_variables.{n}", v)
                  for n, v in enumerate(generic.get("template_variables") or [], 1)]
        texts += [(f"{where}.generic.body_values.{k}", v) for k, v in (generic.get("body_values") or {}).items()]
        for field, value in texts:
            problems += [(field, reason) for reason in template_problems(str(value), event=live)]
    return problems
