"""A campaign's results: per run and for all runs, per variant and control, from the rollups only
(migration 0010), so a report reads a few hundred rows however many messages the campaign sent:

- `campaign_runs`: who qualified, and who was held back before any row was written, by reason
  (`suppressed`, words in services/campaigns/reasons.py).
- `stat_campaign` (services/rollups.campaign_rows): each arm's rows by state, the reasons of the
  suppressed ones (grouped as unsubscribed, cap, DND, safety, personalization, other), failed and
  undelivered ones by error code (else reason), the price sum (cost), sent → delivered latency
  buckets, and conversions with their revenue (state "converted").
- `inbound_messages` by (campaign_id, run_id) (services/replies.replies_by_arm, index
  ix_inbound_campaign): replies to the campaign and the opt-outs they caused (action "opt_out").
- `short_links` by (campaign_id, clicks > 0) (services/links.clicks_by_arm, index
  ix_short_links_campaign_clicks): clicks on the campaign's tracked links, every click and the
  messages clicked at least once (unique clicks); click-through rate = unique clicks / delivered.
- `stat_series` (rollups.series): sent, delivered, failed and converted over time, in buckets that
  keep at most MAX_POINTS points. It has no run: a run's series is the campaign's over the run's
  span (from its start to the next run's).
- lift of each variant against control (services/campaigns/lift.py `compare`).

Reached, the denominator of a conversion rate: a variant's rows sent, delivered, undelivered or
unknown; control's held-out rows. Test sends of a campaign (no run) are counted apart.

The cost's currency is not in the rollups: a provider account bills in one currency, so it is
read from the campaign's first CURRENCY_SAMPLE messages (a bounded index read). Two or more
currencies are named as mixed, never converted.
`report_dict` and `report_csv` (services/campaigns/report_export.py) turn a report into JSON and CSV."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole import clock
from smsconsole.models import Campaign, CampaignRun, Message, StatSeries
from smsconsole.services import links, replies, rollups
from smsconsole.services.campaigns.arms import CONTROL, LETTERS, Goal
from smsconsole.services.campaigns.definition import campaign_code, parse_document
from smsconsole.services.campaigns.reply_options import OptionFigures, ReplyOptions, answers_by_arm, option_figures
from smsconsole.services.errors import NotFound

ALL = "all"  # the arm name of a total row
SUPPRESSION_GROUPS = ("unsubscribed", "cap", "DND", "safety", "personalization", "other")
MAX_POINTS = 60
CURRENCY_SAMPLE = 2000  # messages read for the currencies of the cost
BUCKETS = (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080, 43200)  # minutes
QUANTILES = ((0.5, "p50"), (0.9, "p90"), (0.99, "p99"))
MESSAGE_STATES = ("queued", "held", "sent", "delivered", "failed", "undelivered", "unknown", "suppressed", "control")


def reached_states() -> tuple[str, ...]:
    """The states whose rows count as reached (services/campaigns/conversions.REACHED_STATES)."""
    try:
        from smsconsole.services.campaigns.conversions import (
            REACHED_STATES,  # lazy: written beside this
        )
    except ImportError:
        return ("sent", "delivered", "undelivered", "unknown", "control")
    return tuple(REACHED_STATES)


def suppression_group(reason: str) -> str:
    """Which of SUPPRESSION_GROUPS a suppression reason (engine/guards.py, personalize.py,
    replies.py, render.abort_run) belongs to."""
    text = reason.lower()
    if "frequency cap" in text:
        return "cap"
    if "do not disturb" in text or "dnd" in text:
        return "DND"
    if "safety" in text:
        return "safety"
    if "personaliz" in text or "linked content" in text or text.startswith("run aborted"):
        return "personalization"
    if "unsubscribed" in text or "opted out" in text or "opted in" in text or "opt-out" in text:
        return "unsubscribed"
    return "other"


# --- the report ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    state: str  # failed | undelivered
    detail: str  # the provider's error code, else the reason
    n: int


@dataclass(frozen=True)
class ArmFigures:
    """One arm's figures (a variant "A"…"E", "control", "all" for a total; "" for rows that
    recorded no arm)."""

    arm: str
    assigned: int = 0  # rows written for the arm: messages, or held-out control rows
    queued: int = 0  # waiting to leave (queued, claimed, sending)
    held: int = 0  # waiting for a paused campaign to resume
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    undelivered: int = 0
    unknown: int = 0
    suppressed: int = 0
    control: int = 0  # held-out rows (never sent)
    reached: int = 0
    suppressed_by: dict[str, int] = field(default_factory=dict)  # group (SUPPRESSION_GROUPS) -> rows
    suppressed_reasons: dict[str, int] = field(default_factory=dict)  # reason -> rows
    failures: tuple[Failure, ...] = ()  # failed and undelivered by error code, largest first
    replies: int = 0
    opt_outs: int = 0
    conversions: int = 0
    conversion_rate: float | None = None  # conversions / reached
    revenue: float = 0.0
    cost: float = 0.0  # what the providers charged, where they said
    segments: int = 0
    latency: dict[str, str] = field(default_factory=dict)  # "p50" -> "≤ 5 s" (sent → delivered)
    clicks: int = 0  # clicks on tracked links (previews by bots left out)
    unique_clicks: int = 0  # messages whose links were clicked at least once
    click_rate: float | None = None  # unique clicks / delivered
    answers: dict[str, int] = field(default_factory=dict)  # reply option label ("C", "8") -> last answers


@dataclass(frozen=True)
class RunReport:
    id: int
    number: int
    planned_at: datetime
    state: str
    reason: str | None
    started_at: datetime | None
    finished_at: datetime | None
    qualified: int | None  # people who qualified (campaign_runs.qualified; none for a live run)
    held_back: dict[str, int]  # before any row was written: reason code -> people
    arms: tuple[ArmFigures, ...]
    total: ArmFigures
    lift: tuple[Any, ...]  # lift.Lift per variant, when there is a control group


@dataclass(frozen=True)
class Breakdown:
    """A provider's or a country's messages (control rows left out)."""

    name: str  # provider or country code; "" when none was chosen yet or it is not known
    messages: int
    queued: int
    sent: int  # reached: sent, delivered, undelivered or unknown
    delivered: int
    failed: int  # failed or undelivered
    unknown: int
    suppressed: int
    delivery_rate: float | None  # delivered / sent
    cost: float
    currency: str | None
    latency: dict[str, str]


@dataclass(frozen=True)
class SeriesPoint:
    at: datetime  # the bucket's first minute (UTC)
    sent: int
    delivered: int
    failed: int
    converted: int


@dataclass(frozen=True)
class CampaignReport:
    campaign_id: int
    code: str
    name: str
    type: str
    state: str
    goal: str | None  # the conversion goal in words
    run_number: int | None  # the run reported; None: every run
    qualified: int | None
    held_back: dict[str, int]
    arms: tuple[ArmFigures, ...]  # variants then control
    total: ArmFigures
    lift: tuple[Any, ...]
    runs: tuple[RunReport, ...]
    providers: tuple[Breakdown, ...]
    countries: tuple[Breakdown, ...]
    latency: dict[str, str]
    bucket_minutes: int
    series: tuple[SeriesPoint, ...]
    currency: str | None  # the cost's currency when one; see `currencies`
    currencies: tuple[str, ...]  # every currency the providers charged in (two or more: mixed)
    test_sends: int  # the campaign's test messages (no run), not in any figure
    generated_at: datetime
    replies_offered: ReplyOptions | None = None  # the campaign's reply options, as its document has them now
    answers: OptionFigures | None = None  # answers per option over the runs reported (NPS for 0-10)

    @property
    def has_control(self) -> bool:
        return any(arm.arm == CONTROL for arm in self.arms)

    @property
    def variants(self) -> tuple[ArmFigures, ...]:
        return tuple(arm for arm in self.arms if arm.arm != CONTROL)

    def funnel(self) -> list[tuple[str, int]]:
        """Qualified → reached → delivered → converted, over the variants (control is never sent);
        a live campaign has no qualified count (people come one trigger at a time)."""
        variants = self.variants
        steps = [("reached", sum(a.reached for a in variants)), ("delivered", sum(a.delivered for a in variants)),
                 ("converted", sum(a.conversions for a in variants))]
        return ([("qualified", self.qualified)] if self.qualified is not None else []) + steps

    def cost_words(self) -> str:
        """'12.40 USD', '12.40 (mixed currencies: EUR, USD)', '12.40' (no currency said), or 'not reported'."""
        cost = self.total.cost
        if not cost:
            return "not reported"
        if len(self.currencies) > 1:
            return f"{cost:,.2f} (mixed currencies: {', '.join(self.currencies)})"
        return f"{cost:,.2f} {self.currency}" if self.currency else f"{cost:,.2f}"


# --- tallies -------------------------------------------------------------------------------------


class _Tally:
    """Figures being summed (the mutable twin of ArmFigures)."""

    def __init__(self) -> None:
        self.states: dict[str, int] = defaultdict(int)
        self.suppressed: dict[str, int] = defaultdict(int)
        self.failures: dict[tuple[str, str], int] = defaultdict(int)
        self.latency: dict[str, int] = defaultdict(int)
        self.cost = self.revenue = 0.0
        self.segments = self.replies = self.opt_outs = self.conversions = 0
        self.clicks = self.unique_clicks = 0
        self.answers: dict[str, int] = defaultdict(int)

    def add_row(self, row: rollups.CampaignRow) -> None:
        if row.state == "latency":
            self.latency[row.detail] += row.n
            return
        if row.state == "converted":
            self.conversions += row.n
            self.revenue += row.amount
            return
        self.states[row.state] += row.n
        self.cost += row.amount
        self.segments += row.segments
        if row.state == "suppressed":
            self.suppressed[row.detail or "suppressed"] += row.n
        elif row.state in ("failed", "undelivered"):
            self.failures[(row.state, row.detail or "no code")] += row.n

    def add(self, other: _Tally) -> None:
        for mine, theirs in ((self.states, other.states), (self.suppressed, other.suppressed),
                             (self.failures, other.failures), (self.latency, other.latency)):
            for key, n in theirs.items():
                mine[key] += n  # type: ignore[index]
        self.cost += other.cost
        self.revenue += other.revenue
        self.segments += other.segments
        self.replies += other.replies
        self.opt_outs += other.opt_outs
        self.conversions += other.conversions
        self.clicks += other.clicks
        self.unique_clicks += other.unique_clicks
        for label, n in other.answers.items():
            self.answers[label] += n

    def figures(self, arm: str, reached: tuple[str, ...]) -> ArmFigures:
        s = self.states
        sending = tuple(state for state in reached if state != "control")
        count = (s.get("control", 0) if arm == CONTROL else sum(s.get(state, 0) for state in sending)) \
            if arm != ALL else sum(s.get(state, 0) for state in reached)
        by_group: dict[str, int] = defaultdict(int)
        for reason, n in self.suppressed.items():
            by_group[suppression_group(reason)] += n
        failures = tuple(Failure(state, detail, n) for (state, detail), n in
                         sorted(self.failures.items(), key=lambda item: (-item[1], item[0])))
        return ArmFigures(
            arm=arm, assigned=sum(s.values()), queued=s.get("queued", 0), held=s.get("held", 0),
            sent=s.get("sent", 0), delivered=s.get("delivered", 0), failed=s.get("failed", 0),
            undelivered=s.get("undelivered", 0), unknown=s.get("unknown", 0), suppressed=s.get("suppressed", 0),
            control=s.get("control", 0), reached=count,
            suppressed_by={g: by_group[g] for g in SUPPRESSION_GROUPS if by_group.get(g)},
            suppressed_reasons=dict(sorted(self.suppressed.items(), key=lambda item: (-item[1], item[0]))),
            failures=failures, replies=self.replies, opt_outs=self.opt_outs, conversions=self.conversions,
            conversion_rate=(self.conversions / count) if count else None, revenue=round(self.revenue, 6),
            cost=round(self.cost, 6), segments=self.segments, latency=_percentiles(self.latency),
            clicks=self.clicks, unique_clicks=self.unique_clicks,
            click_rate=(self.unique_clicks / s["delivered"]) if s.get("delivered") else None,
            answers=dict(sorted(self.answers.items())))


def _percentiles(buckets: dict[str, int]) -> dict[str, str]:
    found = rollups.latency_percentiles(buckets, [q for q, _ in QUANTILES])
    return {name: found[q] for q, name in QUANTILES if q in found}


def _arm_order(name: str) -> tuple[int, str]:
    if name in LETTERS:
        return (LETTERS.index(name), name)
    return (len(LETTERS) + (0 if name == CONTROL else 1), name)


def _arms(tallies: dict[str, _Tally], names: Iterable[str], reached: tuple[str, ...]
          ) -> tuple[tuple[ArmFigures, ...], ArmFigures]:
    """Each arm's figures (every arm in `names`, zeros where none) and the total."""
    total = _Tally()
    out = []
    for name in sorted(set(names) | set(tallies), key=_arm_order):
        tally = tallies.get(name) or _Tally()
        total.add(tally)
        out.append(tally.figures(name, reached))
    return tuple(out), total.figures(ALL, reached)


def _lift(arms: tuple[ArmFigures, ...]) -> tuple[Any, ...]:
    """Each variant against control (none without a control group)."""
    control = next((arm for arm in arms if arm.arm == CONTROL), None)
    if control is None:
        return ()
    try:
        from smsconsole.services.campaigns import lift  # lazy: written beside this
    except ImportError:
        return ()
    return tuple(lift.compare(arm.arm, arm.conversions, arm.reached, control.conversions, control.reached)
                 for arm in arms if arm.arm != CONTROL)


def goal_words(goal: Goal | None) -> str | None:
    """'order (amount > 0) within 1 day of the message, value amount'."""
    if goal is None:
        return None
    from smsconsole.services.campaigns import (
        words,  # lazy: the words load the segments' operators
    )

    sentence = getattr(words, "goal_sentence", None)
    text = sentence(goal) if sentence is not None else (
        f"{goal.event}{words.conditions_words(list(goal.where))} within {words.minutes_words(goal.window_minutes)} "
        "of the message")
    return text + (f", value {goal.value}" if goal.value else "")


# --- building ------------------------------------------------------------------------------------


async def build_report(session: AsyncSession, campaign_id: int, *, run_number: int | None = None,
                       known_currencies: dict[str, str] | None = None, with_series: bool = True) -> CampaignReport:
    """The report of one campaign (deleted ones too: their messages keep the Campaign ID), for all
    its runs or for run `run_number`. NotFound for a campaign or run that is not there.
    `known_currencies` (provider → currency, from an earlier report's providers) spares the
    messages read for them: a live refresh then reads the rollups only. `with_series=False` leaves
    the series out (bucket 1, no points): the one part that grows with a long campaign's minutes."""
    campaign = await session.get(Campaign, campaign_id)
    code = campaign_code(campaign_id)
    if campaign is None:
        raise NotFound(f"no campaign {code}")
    all_runs = list(await session.scalars(select(CampaignRun).where(CampaignRun.campaign_id == campaign_id)
                                          .order_by(CampaignRun.number)))
    runs = all_runs
    if run_number is not None:
        runs = [run for run in all_runs if run.number == run_number]
        if not runs:
            have = (f"its runs are 1 to {all_runs[-1].number}" if len(all_runs) > 1
                    else "it has run 1 only" if all_runs else "it has no runs yet")
            raise NotFound(f"{code} {campaign.name!r} has no run {run_number}: {have}")
    run_ids = [run.id for run in runs]
    document, _ = parse_document({**(campaign.document or {}), "type": campaign.type}, strict=False)
    planned_arms = [v.name for v in document.what.arms] + ([CONTROL] if document.what.control else [])
    reached = reached_states()

    rows = await rollups.campaign_rows(session, campaign_id, run_ids=run_ids if run_number is not None else None)
    test_sends = sum(row.n for row in rows if row.run_id == 0 and row.state not in ("latency", "converted"))
    rows = [row for row in rows if row.run_id != 0]
    by_run: dict[int, dict[str, _Tally]] = defaultdict(lambda: defaultdict(_Tally))
    providers: dict[str, _Tally] = defaultdict(_Tally)
    countries: dict[str, _Tally] = defaultdict(_Tally)
    for row in rows:
        by_run[row.run_id][row.variant].add_row(row)
        if row.variant != CONTROL and row.state != "converted":
            providers[row.provider].add_row(row)
            countries[row.country].add_row(row)
    for arm_replies in await replies.replies_by_arm(session, campaign_id,
                                                    run_ids=run_ids if run_number is not None else None):
        if not arm_replies.run_id:  # a reply to a test send
            continue
        tally = by_run[arm_replies.run_id][arm_replies.variant or ""]
        tally.replies += arm_replies.count
        tally.opt_outs += arm_replies.count if arm_replies.action == "opt_out" else 0
    for arm_clicks in await links.clicks_by_arm(session, campaign_id,
                                                run_ids=run_ids if run_number is not None else None):
        if not arm_clicks.run_id:
            continue
        tally = by_run[arm_clicks.run_id][arm_clicks.variant]
        tally.clicks += arm_clicks.clicks
        tally.unique_clicks += arm_clicks.unique_clicks
    for arm_answers in await answers_by_arm(session, campaign_id,
                                            run_ids=run_ids if run_number is not None else None):
        if not arm_answers.run_id:  # an answer to a test send
            continue
        by_run[arm_answers.run_id][arm_answers.variant or ""].answers[arm_answers.option] += arm_answers.count

    currencies = dict(known_currencies or {})
    if any(t.cost and name not in currencies for name, t in providers.items()):
        currencies.update(await _currencies(session, campaign_id))
    run_reports = []
    scope: dict[str, _Tally] = defaultdict(_Tally)
    for run in runs:
        tallies = by_run.get(run.id, {})
        for name, tally in tallies.items():
            scope[name].add(tally)
        arms, total = _arms(tallies, planned_arms, reached)
        run_reports.append(RunReport(run.id, run.number, run.planned_at, run.state, run.reason, run.started_at,
                                     run.finished_at, run.qualified, _held_back(run.suppressed), arms, total,
                                     _lift(arms)))
    arms, total = _arms(scope, planned_arms, reached)
    held_back: dict[str, int] = defaultdict(int)
    for run in runs:
        for reason, n in _held_back(run.suppressed).items():
            held_back[reason] += n
    qualified_values = [run.qualified for run in runs if run.qualified is not None]
    bucket, series = await _series(session, campaign_id, runs, all_runs) if with_series else (1, ())
    latency: dict[str, int] = defaultdict(int)
    for tally in scope.values():
        for bound, n in tally.latency.items():
            latency[bound] += n
    seen = sorted({currencies[name] for name, tally in providers.items() if tally.cost and name in currencies})
    return CampaignReport(
        campaign_id=campaign_id, code=code, name=campaign.name, type=campaign.type,
        state="deleted" if campaign.deleted_at is not None else campaign.state, goal=goal_words(document.goal),
        run_number=run_number, qualified=sum(qualified_values) if qualified_values else None,
        held_back=dict(sorted(held_back.items(), key=lambda item: -item[1])), arms=arms, total=total,
        lift=_lift(arms), runs=tuple(run_reports),
        providers=_breakdowns(providers, currencies, reached), countries=_breakdowns(countries, {}, reached),
        latency=_percentiles(latency), bucket_minutes=bucket, series=series,
        currency=seen[0] if len(seen) == 1 else None, currencies=tuple(seen), test_sends=test_sends,
        generated_at=clock.now(), replies_offered=document.replies,
        answers=option_figures(document.replies, total.answers))


def _held_back(suppressed: Any) -> dict[str, int]:
    out = {}
    for reason, n in dict(suppressed or {}).items():
        try:
            count = int(n)
        except (TypeError, ValueError):
            continue
        if count:
            out[str(reason)] = count
    return dict(sorted(out.items(), key=lambda item: -item[1]))


async def _currencies(session: AsyncSession, campaign_id: int) -> dict[str, str]:
    """The currency each provider charged this campaign in, as the campaign's first
    CURRENCY_SAMPLE messages say (a provider account bills in one currency; a bounded read of
    ix_messages_campaign, whatever the campaign's size)."""
    first = (select(Message.provider_name, Message.price_currency).where(Message.campaign_id == campaign_id)
             .order_by(Message.id).limit(CURRENCY_SAMPLE).subquery())
    rows = await session.execute(select(first.c.provider_name, first.c.price_currency)
                                 .where(first.c.price_currency.is_not(None)).distinct())
    out: dict[str, str] = {}
    for provider, currency in rows.all():
        out.setdefault(provider or "", str(currency).upper())
    return out


def _breakdowns(tallies: dict[str, _Tally], currencies: dict[str, str], reached: tuple[str, ...]
                ) -> tuple[Breakdown, ...]:
    out = []
    for name, tally in tallies.items():
        figures = tally.figures(name, reached)
        if not figures.assigned:
            continue
        out.append(Breakdown(
            name=name, messages=figures.assigned, queued=figures.queued + figures.held, sent=figures.reached,
            delivered=figures.delivered, failed=figures.failed + figures.undelivered, unknown=figures.unknown,
            suppressed=figures.suppressed,
            delivery_rate=figures.delivered / figures.reached if figures.reached else None,
            cost=figures.cost, currency=currencies.get(name), latency=figures.latency))
    return tuple(sorted(out, key=lambda b: (-b.messages, b.name)))


def choose_bucket(first_minute: int, last_minute: int) -> int:
    """The smallest of BUCKETS that keeps first → last within MAX_POINTS buckets once aligned."""
    span = last_minute - first_minute + 1
    for bucket in BUCKETS:
        if span <= (MAX_POINTS - 1) * bucket:
            return bucket
    return -(-span // (MAX_POINTS - 1))


async def _series(session: AsyncSession, campaign_id: int, runs: list[CampaignRun], all_runs: list[CampaignRun]
                  ) -> tuple[int, tuple[SeriesPoint, ...]]:
    """Sent, delivered, failed and converted per bucket over the campaign's life (or one run's span)."""
    # each end on its own (ORDER BY … LIMIT 1 walks ix_stat_series_campaign; min and max in one
    # query made SQLite scan the campaign's rows)
    edge = select(StatSeries.minute).where(StatSeries.campaign_id == campaign_id).limit(1)
    first = await session.scalar(edge.order_by(StatSeries.minute))
    last = await session.scalar(edge.order_by(StatSeries.minute.desc()))
    if first is None or last is None:
        return 1, ()
    first, last = int(first), int(last)
    if len(runs) == 1 and len(all_runs) > 1:
        run = runs[0]
        first = max(first, rollups.minute_of(run.started_at or run.planned_at))
        later = [r for r in all_runs if r.number > run.number]
        if later:
            last = min(last, rollups.minute_of(later[0].started_at or later[0].planned_at) - 1)
        if last < first:
            return 1, ()
    bucket = choose_bucket(first, last)
    start = first - first % bucket
    # by bucket and metric only (no provider or variant keys: less work on a long campaign's rows);
    # whole-hour buckets read the hourly rollup
    rows = await rollups.series(session, start, last, campaign_id=campaign_id, by_provider=False, bucket=bucket)
    counts: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        counts[(row.minute - start) // bucket][row.metric] += row.n
    points = []
    for number, minute in enumerate(range(start, last + 1, bucket)):
        c = counts.get(number, {})
        points.append(SeriesPoint(rollups.minute_start(minute), c.get("sent", 0), c.get("delivered", 0),
                                  c.get("failed", 0), c.get("converted", 0)))
    return bucket, tuple(points)


# JSON, CSV and files live beside (report_export.py); named here too, as the report's API.
from smsconsole.services.campaigns.report_export import (
    report_csv,
    report_dict,
    report_json,
    write_report,
)

__all__ = ["ALL", "ArmFigures", "Breakdown", "CampaignReport", "Failure", "RunReport", "SeriesPoint",
           "build_report", "report_csv", "report_dict", "report_json", "write_report"]
