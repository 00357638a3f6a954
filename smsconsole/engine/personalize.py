"""Render at claim: campaign messages are queued with an empty body (`render` true) and get their
text here, from their run's document snapshot and the recipient's profile as it is when the
message is claimed, after the claim-time guards and before the send gate.

Per batch: the runs not seen yet are loaded and compiled once (one query), the recipients'
profiles are loaded (one query), a live campaign's messages get their triggering events (one
query by the messages' event ids; an event that is gone renders `event` empty), every message is
rendered (concurrently: linked content is
fetched once per URL per run, see services/campaigns/render.py), and the rendered bodies with
their encoding and segments are written in one executemany (render = false, fenced on the
claim), so a retry or a restarted engine sends the same text. Encoding and segments are counted
as the provider bills them: through a route that smart-encodes (a Twilio provider with
`smart_encoding` on, services/smart_encoding.py) those of the body with its look-alikes replaced;
the body itself stays as rendered (Twilio replaces them).

A message whose rendering fails or comes out empty is suppressed, "personalization failed: …",
never sent. Linked content failing under the "abort" policy stops the run (`abort_run`): the run
becomes failed and every message of it, in this batch and still queued, is suppressed.

A message renders with its own variant (`messages.variant`, "A"…"E"): that variant's body,
Generic fields and DLT fields; a variant whose template does not compile suppresses its own
messages only. Control rows (state `control`) are never claimed, so never rendered here.

Every campaign message also gets its provider options from its variant of the run's `what`: DLT fields
(`dlt`, the providers' option names: dlt_entity_id, dlt_template_id, ...) and the Generic
provider's blocks: `template_id`, `template_variables` (each rendered for the recipient, joined
with commas), `body_values` (rendered for the recipient), `header_values` and `global_values`
(taken as written: no personalization, they may sit outside a batch's per-recipient item).

Tracked links (`{{ url | track }}`, services/links.py): when a batch holds messages of runs whose
What uses `track`, the link settings and the links those messages already have are read (one
query each); each message renders with its own `MessageLinks` (a re-render re-uses the message's
links, so the same text is sent), and the new links are inserted in one executemany in the same
transaction as the bodies, only for messages this tenure still holds. A code taken meanwhile (a
race with another engine: the unique index says so) rolls that transaction back and it is written
again with fresh codes."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import httpx
from sqlalchemy import Row, bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smsconsole import clock
from smsconsole.engine.jobs import Final
from smsconsole.engine.lease import Tenure
from smsconsole.models import CampaignRun, Event, Message, Profile
from smsconsole.services.campaigns.content import (
    RunContent,
    render_message,
    run_content,
)
from smsconsole.services.campaigns.render import (
    RenderProblem,
    abort_run,
    event_mapping,
    profile_mapping,
)
from smsconsole.services.links import (
    MessageLinks,
    NewLink,
    create_links,
    existing_links,
    link_settings,
    new_code,
)
from smsconsole.services.smart_encoding import RouteKey, smart_routes
from smsconsole.sms import analyze, has_lookalikes

log = logging.getLogger("smsconsole.dispatch")

MESSAGES = Message.__table__
RUNS_KEPT = 64  # compiled runs kept in memory (least recently used dropped first)
SMART_TTL = 30.0  # seconds a route's smart-encoding setting is trusted before it is read again
FAILED = "personalization failed: "
LINK_ATTEMPTS = 3  # writes of a batch's links before giving up (each with fresh codes for taken ones)


@dataclass
class Prepared:
    rows: list[Any]  # the batch, rendered rows in place of their claimed originals
    options: dict[int, dict[str, str]]  # message id -> provider options
    finals: list[Final]  # messages suppressed here


class Personalizer:
    def __init__(self, factory: async_sessionmaker[AsyncSession], tenure: Tenure,
                 client: httpx.AsyncClient | None) -> None:
        self.factory = factory
        self.tenure = tenure
        self.client = client
        self.runs: OrderedDict[int, RunContent] = OrderedDict()
        self.aborted: dict[int, str] = {}  # run id -> the suppression reason of its messages
        self.smart: dict[RouteKey, tuple[float, bool]] = {}  # route -> (valid until, smart-encodes)
        self.tracking: dict[int, bool] = {}  # run id -> its What may use `track`

    async def prepare(self, rows: list[Row[Any]]) -> Prepared:
        campaign = [row for row in rows if getattr(row, "run_id", None) is not None]
        if not campaign:
            return Prepared(list(rows), {}, [])
        runs = await self._runs({row.run_id for row in campaign})
        profiles = await self._profiles({row.profile_id for row in campaign if row.profile_id is not None})
        events = await self._events([row.id for row in campaign if runs[row.run_id].live])
        links, retention = await self._links([row for row in campaign if self.tracking.get(row.run_id)])
        outcomes = await asyncio.gather(*(
            self._one(row, runs[row.run_id], profiles.get(row.profile_id), events.get(row.id), links.get(row.id))
            for row in campaign
        ))
        for row, outcome in zip(campaign, outcomes, strict=True):
            if isinstance(outcome, RenderProblem) and outcome.abort:
                await self._abort(row.run_id, outcome.reason)
        smart = await self._smart_routes({_route(row) for row, outcome in zip(campaign, outcomes, strict=True)
                                          if isinstance(outcome, tuple) and outcome[0] and has_lookalikes(outcome[0])})
        now = clock.now()
        rendered: dict[int, Any] = {}
        options: dict[int, dict[str, str]] = {}
        finals: list[Final] = []
        for row, outcome in zip(campaign, outcomes, strict=True):
            reason = self.aborted.get(row.run_id)
            if reason is None and isinstance(outcome, RenderProblem):
                reason = FAILED + outcome.reason
            if reason is not None:
                finals.append((None, row.id, {"state": "suppressed", "reason": reason, "finished_at": now,
                                              "error_code": None, "next_attempt_at": None}))
                continue
            assert not isinstance(outcome, RenderProblem)
            body, row_options = outcome
            options[row.id] = row_options
            if body is not None:
                info = analyze(body, smart_encoding=_route(row) in smart)  # as the provider bills it
                rendered[row.id] = SimpleNamespace(**{**row._asdict(), "body": body, "encoding": str(info.encoding),
                                                      "segments": info.segments, "render": False})
        new_links = [NewLink(m.code, m.url, row.id, m.position, row.profile_id, getattr(row, "campaign_id", None),
                             row.run_id, getattr(row, "variant", None))
                     for row in campaign if row.id in options and row.id in links for m in links[row.id].made]
        await self._persist(list(rendered.values()), new_links, retention, options)
        settled = {message_id for _, message_id, _ in finals}
        kept = [rendered.get(row.id, row) for row in rows if row.id not in settled]
        return Prepared(kept, options, finals)

    async def _smart_routes(self, routes: set[RouteKey]) -> set[RouteKey]:
        """Those of `routes` whose provider smart-encodes (Twilio's Smart Encoding: the message is
        billed after its look-alikes are replaced); looked up at most every SMART_TTL seconds."""
        if not routes:
            return set()
        moment = time.monotonic()
        missing = {r for r in routes if (known := self.smart.get(r)) is None or known[0] < moment}
        if missing:
            async with self.factory() as session:
                found = await smart_routes(session, missing)
            if len(self.smart) > 1024:
                self.smart.clear()
            self.smart.update({r: (moment + SMART_TTL, flag) for r, flag in found.items()})
        return {r for r in routes if self.smart[r][1]}

    async def _one(self, row: Any, content: RunContent, profile: dict[str, Any] | None,
                   event: dict[str, Any] | None = None,
                   links: MessageLinks | None = None) -> tuple[str | None, dict[str, str]] | RenderProblem:
        """(the rendered body, or None when the row is already rendered; its options), or the problem."""
        if row.run_id in self.aborted:
            return RenderProblem(self.aborted[row.run_id])
        try:
            return await render_message(content, profile, body=bool(row.render), event=event,
                                        variant=getattr(row, "variant", None), links=links)
        except RenderProblem as problem:
            return problem
        except Exception as exc:  # a bug must not send the batch back to the queue forever
            log.exception("rendering message %s of run %s failed unexpectedly", row.id, row.run_id)
            return RenderProblem(f"internal error while rendering ({type(exc).__name__})")

    async def _runs(self, run_ids: set[int]) -> dict[int, RunContent]:
        missing = [run_id for run_id in run_ids if run_id not in self.runs]
        if missing:
            async with self.factory() as session:
                documents = dict((await session.execute(
                    select(CampaignRun.id, CampaignRun.document).where(CampaignRun.id.in_(missing))
                )).all())
            for run_id in missing:
                document = documents.get(run_id)
                self.runs[run_id] = run_content(document, self.client)
                self.tracking[run_id] = "track" in json.dumps((document or {}).get("what"), ensure_ascii=False)
        found = {}
        for run_id in run_ids:
            self.runs.move_to_end(run_id)
            found[run_id] = self.runs[run_id]
        while len(self.runs) > RUNS_KEPT:
            dropped, _ = self.runs.popitem(last=False)
            self.tracking.pop(dropped, None)
        return found

    async def _links(self, rows: list[Any]) -> tuple[dict[int, MessageLinks], int]:
        """message id -> the `track` links of each of `rows` (their messages' runs may track links),
        and the retention in days; the settings and the links already made read in one session."""
        if not rows:
            return {}, 0
        async with self.factory() as session:
            settings = await link_settings(session)
            made = await existing_links(session, [row.id for row in rows])
        return ({row.id: MessageLinks(settings.domain, made.get(row.id, [])) for row in rows},
                settings.retention_days)

    async def _profiles(self, profile_ids: set[int]) -> dict[int, dict[str, Any]]:
        if not profile_ids:
            return {}
        async with self.factory() as session:
            rows = await session.execute(
                select(Profile.id, Profile.user_id, Profile.phone, Profile.name, Profile.country, Profile.timezone,
                       Profile.properties).where(Profile.id.in_(profile_ids))
            )
            return {row.id: profile_mapping(row) for row in rows}

    async def _events(self, message_ids: list[int]) -> dict[int, dict[str, Any]]:
        """message id -> its triggering event, for live campaigns' messages (one query)."""
        if not message_ids:
            return {}
        async with self.factory() as session:
            rows = await session.execute(
                select(Message.id.label("message_id"), Event.name, Event.at, Event.properties)
                .join(Event, Event.id == Message.event_id).where(Message.id.in_(message_ids)))
            return {row.message_id: event_mapping(row) for row in rows}

    async def _abort(self, run_id: int, reason: str) -> None:
        if run_id in self.aborted:
            return
        self.aborted[run_id] = f"run aborted: {reason}"
        async with self.factory() as session, session.begin():
            if self.tenure.fenced and not await session.scalar(select(self.tenure.fence())):
                return
            suppressed = await abort_run(session, run_id, reason)
        log.warning("campaign run %s aborted: %s (%d queued message(s) suppressed)", run_id, reason, suppressed)

    async def _persist(self, rows: list[Any], links: list[NewLink] | None = None, retention: int = 0,
                       options: dict[int, dict[str, str]] | None = None) -> None:
        """The rendered bodies and their new links, written before the gate lets them leave (fenced
        on the claim). A message rendered before gets no new body but may get links (its provider
        options, rendered anew, may track one)."""
        if not rows and not links:
            return
        for attempt in range(1, LINK_ATTEMPTS + 1):
            try:
                await self._write(rows, links or [], retention, options or {})
                return
            except IntegrityError:
                if not links or attempt == LINK_ATTEMPTS:
                    raise
                log.info("a short-link code was taken meanwhile; writing the batch's links again with new codes")
                for link in links:  # the taken code is not known: every code of the batch is redrawn
                    old = link.code
                    link.code = new_code()
                    _swap(rows, options or {}, link.message_id, old, link.code)

    async def _write(self, rows: list[Any], links: list[NewLink], retention: int,
                     options: dict[int, dict[str, str]]) -> None:
        now = clock.now()
        async with self.factory() as session, session.begin():
            if links:
                held = set(await session.scalars(select(MESSAGES.c.id).where(
                    MESSAGES.c.id.in_({link.message_id for link in links}), MESSAGES.c.state == "claimed",
                    MESSAGES.c.claim_token == self.tenure.token, self.tenure.fence())))
                mine = [link for link in links if link.message_id in held]
                olds = {id(link): link.code for link in mine}
                redrawn = await create_links(session, mine, retention_days=retention, now=now)
                if redrawn:
                    for link in mine:
                        if link.code != olds[id(link)]:
                            _swap(rows, options, link.message_id, olds[id(link)], link.code)
            if not rows:
                return
            await session.execute(
                update(MESSAGES)
                .where(MESSAGES.c.id == bindparam("b_id"), MESSAGES.c.state == "claimed",
                       MESSAGES.c.claim_token == self.tenure.token, self.tenure.fence())
                .values(body=bindparam("b_body"), encoding=bindparam("b_encoding"),
                        segments=bindparam("b_segments"), render=False, updated_at=now),
                [{"b_id": r.id, "b_body": r.body, "b_encoding": r.encoding, "b_segments": r.segments} for r in rows],
            )


def _swap(rows: list[Any], options: dict[int, dict[str, str]], message_id: int | None, old: str, new: str) -> None:
    """Put short-link code `new` where `old` was in a message's body and options."""
    for row in rows:
        if row.id == message_id:
            row.body = row.body.replace(f"/{old}", f"/{new}")
    for key, value in (options.get(message_id) or {}).items() if message_id is not None else ():
        options[message_id][key] = value.replace(f"/{old}", f"/{new}")


def _route(row: Any) -> RouteKey:
    """A message row's route as smart_encoding counts it: (provider id, group id)."""
    return getattr(row, "provider_id", None), getattr(row, "group_id", None)
