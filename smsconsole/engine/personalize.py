"""Render at claim: campaign messages are queued with an empty body (`render` true) and get their
text here, from their run's document snapshot and the recipient's profile as it is when the
message is claimed, after the claim-time guards and before the send gate.

Per batch: the runs not seen yet are loaded and compiled once (one query), the recipients'
profiles are loaded (one query), every message is rendered (concurrently: linked content is
fetched once per URL per run, see services/campaigns/render.py), and the rendered bodies with
their encoding and segments are written in one executemany (render = false, fenced on the
claim), so a retry or a restarted engine sends the same text.

A message whose rendering fails or comes out empty is suppressed, "personalization failed: …",
never sent. Linked content failing under the "abort" policy stops the run (`abort_run`): the run
becomes failed and every message of it, in this batch and still queued, is suppressed.

Every campaign message also gets its provider options from the run's `what`: DLT fields
(`what.dlt`, the providers' option names: dlt_entity_id, dlt_template_id, ...) and the Generic
provider's blocks: `template_id`, `template_variables` (each rendered for the recipient, joined
with commas), `body_values` (rendered for the recipient), `header_values` and `global_values`
(taken as written: no personalization, they may sit outside a batch's per-recipient item)."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import httpx
from sqlalchemy import Row, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smsconsole import clock
from smsconsole.engine.jobs import Final
from smsconsole.engine.lease import Tenure
from smsconsole.models import CampaignRun, Message, Profile
from smsconsole.services.campaigns.content import (
    RunContent,
    render_message,
    run_content,
)
from smsconsole.services.campaigns.render import (
    RenderProblem,
    abort_run,
    profile_mapping,
)
from smsconsole.sms import analyze

log = logging.getLogger("smsconsole.dispatch")

MESSAGES = Message.__table__
RUNS_KEPT = 64  # compiled runs kept in memory (least recently used dropped first)
FAILED = "personalization failed: "


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

    async def prepare(self, rows: list[Row[Any]]) -> Prepared:
        campaign = [row for row in rows if getattr(row, "run_id", None) is not None]
        if not campaign:
            return Prepared(list(rows), {}, [])
        runs = await self._runs({row.run_id for row in campaign})
        profiles = await self._profiles({row.profile_id for row in campaign if row.profile_id is not None})
        outcomes = await asyncio.gather(*(
            self._one(row, runs[row.run_id], profiles.get(row.profile_id)) for row in campaign
        ))
        for row, outcome in zip(campaign, outcomes, strict=True):
            if isinstance(outcome, RenderProblem) and outcome.abort:
                await self._abort(row.run_id, outcome.reason)
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
                info = analyze(body)
                rendered[row.id] = SimpleNamespace(**{**row._asdict(), "body": body, "encoding": str(info.encoding),
                                                      "segments": info.segments, "render": False})
        await self._persist(list(rendered.values()))
        settled = {message_id for _, message_id, _ in finals}
        kept = [rendered.get(row.id, row) for row in rows if row.id not in settled]
        return Prepared(kept, options, finals)

    async def _one(self, row: Any, content: RunContent, profile: dict[str, Any] | None
                   ) -> tuple[str | None, dict[str, str]] | RenderProblem:
        """(the rendered body, or None when the row is already rendered; its options), or the problem."""
        if row.run_id in self.aborted:
            return RenderProblem(self.aborted[row.run_id])
        if content.problem is not None:
            return RenderProblem(content.problem)
        try:
            return await render_message(content, profile, body=bool(row.render))
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
                self.runs[run_id] = run_content(documents.get(run_id), self.client)
        found = {}
        for run_id in run_ids:
            self.runs.move_to_end(run_id)
            found[run_id] = self.runs[run_id]
        while len(self.runs) > RUNS_KEPT:
            self.runs.popitem(last=False)
        return found

    async def _profiles(self, profile_ids: set[int]) -> dict[int, dict[str, Any]]:
        if not profile_ids:
            return {}
        async with self.factory() as session:
            rows = await session.execute(
                select(Profile.id, Profile.user_id, Profile.phone, Profile.name, Profile.country, Profile.timezone,
                       Profile.properties).where(Profile.id.in_(profile_ids))
            )
            return {row.id: profile_mapping(row) for row in rows}

    async def _abort(self, run_id: int, reason: str) -> None:
        if run_id in self.aborted:
            return
        self.aborted[run_id] = f"run aborted: {reason}"
        async with self.factory() as session, session.begin():
            if self.tenure.fenced and not await session.scalar(select(self.tenure.fence())):
                return
            suppressed = await abort_run(session, run_id, reason)
        log.warning("campaign run %s aborted: %s (%d queued message(s) suppressed)", run_id, reason, suppressed)

    async def _persist(self, rows: list[Any]) -> None:
        """The rendered bodies, written before the gate lets them leave (fenced on the claim)."""
        if not rows:
            return
        now = clock.now()
        async with self.factory() as session, session.begin():
            await session.execute(
                update(MESSAGES)
                .where(MESSAGES.c.id == bindparam("b_id"), MESSAGES.c.state == "claimed",
                       MESSAGES.c.claim_token == self.tenure.token, self.tenure.fence())
                .values(body=bindparam("b_body"), encoding=bindparam("b_encoding"),
                        segments=bindparam("b_segments"), render=False, updated_at=now),
                [{"b_id": r.id, "b_body": r.body, "b_encoding": r.encoding, "b_segments": r.segments} for r in rows],
            )
