"""What the Campaigns list and a campaign's page both do to a campaign: edit (the wizard), pause or
resume, stop and delete (each asking first where it cannot be undone), duplicate; and the run
figures both show (a progress bar, counts, the reasons people were held back)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work

from smsconsole.screens.base import ACTOR, LiveSectionScreen
from smsconsole.screens.campaigns.wizard import WizardState, new_document, open_wizard
from smsconsole.screens.campaigns.words import STATE_STYLES
from smsconsole.services.campaigns import crud
from smsconsole.services.campaigns.reasons import describe_held_back
from smsconsole.services.campaigns.runs import RunCounts
from smsconsole.services.errors import ServiceError
from smsconsole.services.settings import get_settings

BAR_CELLS = 8
PAUSABLE = frozenset({"scheduled", "running"})
RESUMABLE = frozenset({"paused", "blocked"})
STOPPABLE = frozenset({"scheduled", "running", "paused", "blocked"})


def state_words(state: str) -> Text:
    return Text(state, style=STATE_STYLES.get(state, ""))


def counts_of(run: Any) -> RunCounts:
    """A run's message counts (none yet: zeros)."""
    return run.counts or RunCounts()


def settled_count(counts: Any) -> int:
    return sum(getattr(counts, name, 0) for name in ("sent", "delivered", "failed", "undelivered", "suppressed",
                                                     "unknown", "control"))  # control rows: held out, settled


def progress_bar(run: Any) -> Text:
    """The run's materialized rows that have left the queue, as a bar and a percentage."""
    if run is None:
        return Text("-", style="dim")
    total = run.materialized or 0
    if not total:
        return Text(run.state, style=STATE_STYLES.get(run.state, "dim"))
    done = min(settled_count(counts_of(run)), total)
    filled = round(BAR_CELLS * done / total)
    return Text.assemble(("█" * filled, "green"), ("░" * (BAR_CELLS - filled), "dim"), f" {100 * done // total:>3}%")


def counts_text(counts: Any) -> Text:
    """queued · sent · delivered · failed · suppressed, the zeros dimmed."""
    text = Text()
    for label, value, style in (("queued", counts.queued + counts.held, "cyan"),
                                ("sent", counts.sent + counts.sending, ""),
                                ("delivered", counts.delivered, "green"),
                                ("failed", counts.failed + counts.undelivered, "red"),
                                ("suppressed", counts.suppressed, "magenta")):
        if text:
            text.append(" · ", style="dim")
        text.append(f"{value:,} {label}", style=style if value else "dim")
    if getattr(counts, "control", 0):
        text.append(f" · {counts.control:,} held out (control)", style="dim")
    return text


def short_counts(run: Any) -> Text:
    if run is None:
        return Text("")
    counts = counts_of(run)
    return Text.assemble((f"✔{counts.sent + counts.delivered:,}", "green"), " ",
                         (f"✖{counts.failed + counts.undelivered:,}", "red" if counts.failed else "dim"))


def held_back_text(run: Any) -> Text:
    """Why people were not sent to: held back before the outbox, and suppressed by reason after."""
    text = Text()
    counts = counts_of(run)
    reasons = {**(counts.held_back or run.suppressed or {})}
    for reason, count in counts.suppressed_by_reason.items():
        reasons[reason] = reasons.get(reason, 0) + count
    if any(reasons.values()):
        text.append("held back: ", style="dim")
        text.append(describe_held_back(reasons))
    return text


class CampaignActions(LiveSectionScreen[Any]):
    """A screen showing one or more campaigns; `current_campaign` names the one actions apply to."""

    def current_campaign(self) -> Any | None:
        raise NotImplementedError

    def campaign_changed(self, code: str | None = None) -> None:
        """Read again after an action (code: the campaign to select)."""
        self.action_refresh()

    def _require(self, verb: str) -> Any | None:
        view = self.current_campaign()
        if view is None:
            self.notify(f"No campaign to {verb}: press a to create one.", severity="warning")
        return view

    # --- edit --------------------------------------------------------------------------------

    def action_edit(self) -> None:
        if (view := self._require("edit")) is not None:
            self.edit_campaign(view.code)

    @work(exclusive=True, group="campaigns-edit", exit_on_error=False)
    async def edit_campaign(self, code: str) -> None:
        runtime = await self.runtime()
        try:
            async with runtime.factory() as session:
                view = await crud.get_campaign(session, code)
                zone = (await get_settings(session))["default_timezone"] or "UTC"
        except ServiceError as exc:
            self.notify(str(exc), title="Cannot edit", severity="error")
            return
        open_wizard(self, WizardState(view.document, default_timezone=zone, campaign_id=view.id, code=view.code,
                                      campaign_state=view.state,
                                      on_close=self.campaign_changed))

    @work(exclusive=True, group="campaigns-new", exit_on_error=False)
    async def new_campaign(self) -> None:
        runtime = await self.runtime()
        async with runtime.factory() as session:
            zone = (await get_settings(session))["default_timezone"] or "UTC"
        open_wizard(self, WizardState(new_document(zone), default_timezone=zone, on_close=self.campaign_changed))

    # --- lifecycle ---------------------------------------------------------------------------

    def action_toggle_pause(self) -> None:
        if (view := self._require("pause or resume")) is not None:
            if view.state in RESUMABLE:
                self.apply("resume_campaign", view, "Resumed")
            elif view.state in PAUSABLE:
                self.apply("pause_campaign", view, "Paused")
            else:
                self.notify(f"{view.name} is {view.state}: only a scheduled or running campaign pauses, "
                            "a paused or blocked one resumes.", severity="warning")

    @work(group="campaigns-apply", exit_on_error=False)
    async def apply(self, function: str, view: Any, done: str) -> None:
        runtime = await self.runtime()
        try:
            async with runtime.factory() as session, session.begin():
                result = await getattr(crud, function)(session, view.code, actor=ACTOR)
        except ServiceError as exc:
            self.notify(str(exc), title=f"Not {done.lower()}", severity="error", timeout=8)
            return
        code = getattr(result, "code", view.code)
        self.notify(f"{done} {getattr(result, 'name', view.name)} ({code}).", title=f"Campaign {done.lower()}")
        self.campaign_changed(code)

    def action_stop(self) -> None:
        if (view := self._require("stop")) is not None:
            self.stop_asking(view)

    def stop_asking(self, view: Any) -> None:
        if view.state not in STOPPABLE:
            self.notify(f"{view.name} is {view.state}: nothing to stop.", severity="warning")
            return
        self.confirm_lifecycle(
            "stop_campaign", view, "Stop campaign",
            f"Stop {view.name} ({view.code})? No more runs; its queued and held messages are suppressed as "
            "\"campaign stopped\". Sent messages keep their history.", "Stop", "Stopped")

    def action_delete(self) -> None:
        if (view := self._require("delete")) is not None:
            self.confirm_lifecycle(
                "delete_campaign", view, "Delete campaign",
                f"Delete {view.name} ({view.code})? It leaves the list; sent messages keep their Campaign ID "
                "and history.", "Delete", "Deleted")

    @work(group="campaigns-confirm", exit_on_error=False)
    async def confirm_lifecycle(self, function: str, view: Any, title: str, question: str, label: str,
                                done: str) -> None:

        applied = await self.confirm_and_apply(
            title, question, label, lambda session: getattr(crud, function)(session, view.code, actor=ACTOR),
            refused=f"Not {done.lower()}")
        if applied:
            self.notify(f"{done} {view.name} ({view.code}).", title=f"Campaign {done.lower()}")
            self.campaign_deleted(view) if function == "delete_campaign" else self.campaign_changed(view.code)
        elif applied is False:
            self.campaign_changed(view.code)

    def campaign_deleted(self, view: Any) -> None:
        self.campaign_changed(None)

    def action_copy(self) -> None:
        if (view := self._require("duplicate")) is not None:
            self.apply("duplicate_campaign", view, "Duplicated")
