"""The wizard's last steps. Test: render the message (of a chosen variant, in an A/B test) as a
chosen profile and send it to any number through the campaign's route — the Test send path
(queue_test_message), so it shows in Test send's list too. Summary: every choice in words (the
arms and the conversion goal too), the reach estimate, each variant's encoding and segments, the
next run times; then save a draft or schedule (a refusal goes back to the step with the problem)."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import Button, Input, Select, Static

from smsconsole import clock
from smsconsole.messages import TestMessageQueued
from smsconsole.screens.base import ACTOR
from smsconsole.screens.campaigns.steps_what import preview_text, sample_event
from smsconsole.screens.campaigns.summary_preflight import preflight_text, summary_preflight
from smsconsole.screens.campaigns.steps_when import next_runs_text
from smsconsole.screens.campaigns.steps_who import estimate_text
from smsconsole.screens.campaigns.wizard import WizardStep, close_wizard, step_field
from smsconsole.screens.widgets.fields import FieldError, show_problems
from smsconsole.services.campaigns import crud
from smsconsole.services.campaigns.arms import has_arms
from smsconsole.services.campaigns.definition import (
    LIVE_TYPES,
    CampaignDocument,
    parse_document,
)
from smsconsole.services.campaigns.render import preview
from smsconsole.services.campaigns.reply_options import parse_replies, sentence
from smsconsole.services.campaigns.runs import estimate_campaign
from smsconsole.services.campaigns.schedule import occurrences
from smsconsole.services.campaigns.testsend import send_campaign_test
from smsconsole.services.compliance.preflight import PreflightBlocked
from smsconsole.services.compliance.views import test_send_price
from smsconsole.services.campaigns.words import (
    arms_words,
    goal_lines,
    live_span,
    route_words,
    trigger_sentence,
    what_lines,
    when_lines,
    who_lines,
)
from smsconsole.services.errors import NotFound, ServiceError, ValidationError
from smsconsole.services.messages import get_message
from smsconsole.services.segments.descriptions import describe_definition
from smsconsole.services.settings import get_settings

TEST_WATCH_SECONDS = 1.0


def reply_lines(document: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """The Summary's reply options section, only when the campaign has some (what_replies.py)."""
    raw = document.get("replies")
    if not raw:
        return []
    problems: list[tuple[str, str]] = []
    value = parse_replies(raw, problems)
    if value is None or problems:
        return [("Reply options", ["Some options do not read yet: the What step names them"])]
    return [("Reply options", [sentence(value), "Keywords (STOP, HELP…) always win over an option's words"])]


def variant_choices(document: CampaignDocument) -> list[tuple[str, str]]:
    """An A/B campaign's variants for a choice ("B · 20% off today"); [] with a single variant."""
    arms = document.what.arms
    if len(arms) < 2:
        return []
    return [(f"{v.name} · {' '.join(v.body.split()) or '(empty)'}"[:60], v.name) for v in arms]


class SendTestStep(WizardStep):
    INDEX = 4
    MAIN = "#input-test-profile"

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self.message_id: int | None = None
        self.test_label = ""
        parsed, _ = parse_document(state.document, default_timezone=state.default_timezone, strict=False)
        self.variants = variant_choices(parsed)

    def compose_step(self) -> ComposeResult:
        yield Static("", id="test-route", markup=False)
        if self.variants:
            yield step_field("variant", "Variant", Select(self.variants, allow_blank=False, compact=True,
                                                          id="input-test-variant"))
        profile = step_field("profile", "Render as profile", Input(
            placeholder="phone or user id; empty: a sample profile", compact=True, id="input-test-profile"))
        if self.state.document.get("type") in LIVE_TYPES:  # and the triggering event
            with Horizontal(classes="wizard-row"):
                yield profile
                yield step_field("event", "With event (JSON)", Input(
                    placeholder='{"amount": 120}; empty: their latest', compact=True, id="input-test-event"))
        else:
            yield profile
        with Horizontal(classes="wizard-row"):
            yield step_field("to", "Send to", Input(placeholder="any number, e.g. +447400123456", compact=True,
                                                    id="input-test-to"))
            yield Button("Send test", id="test-send", variant="primary", compact=True,
                         tooltip="Render and queue one test message (enter in Send to)")
        yield FieldError(id="test-error")
        yield Static("", id="test-preview")
        yield Static("", id="test-price")
        yield Static("", id="test-result")

    def load(self) -> None:
        route = self.state.section("what").get("route")
        self.query_one("#test-route", Static).update(f"Through {route_words(route)}. Optional: skip with ctrl+f.")

    def on_mount(self) -> None:
        self.set_interval(TEST_WATCH_SECONDS, self.watch_message)

    @on(Input.Submitted, "#input-test-to")
    @on(Button.Pressed, "#test-send")
    def _send(self) -> None:
        chosen = [str(select.value) for select in self.query("#input-test-variant").results(Select)]
        self.send_test(self.query_one("#input-test-profile", Input).value.strip() or None,
                       self.query_one("#input-test-to", Input).value, chosen[0] if chosen else None)

    @work(exclusive=True, group="campaign-test-send", exit_on_error=False)
    async def send_test(self, profile: str | None, to: str, variant: str | None = None) -> None:
        document, _ = parse_document(self.state.document, default_timezone=self.state.default_timezone, strict=False)
        general = self.query_one("#test-error", FieldError)
        runtime = await self.runtime()
        try:
            boxes = list(self.query("#input-test-event").results(Input))
            event = sample_event(boxes[0].value) if boxes else None
            async with runtime.factory() as session, session.begin():
                region = (await get_settings(session))["default_region"] or None
                try:
                    shown = await preview(session, document, profile_ref=profile, default_region=region, event=event,
                                          variant=variant)
                except NotFound as exc:
                    raise ValidationError([("profile", str(exc))]) from exc
                self.query_one("#test-preview", Static).update(preview_text(shown))
                # the campaign's own test send: as that profile, through its route, with its options
                sent = await send_campaign_test(session, document, to=to, profile_ref=profile,
                                                campaign_id=self.state.campaign_id, default_region=region,
                                                actor=ACTOR, shown=shown, event=event, variant=variant)
                queued = sent.message
                price = await test_send_price(session, to=queued.to_number, body=queued.body, default_region=None,
                                              provider_name=queued.provider_name or "",
                                              group_name=queued.group_name or "")
        except ValidationError as exc:
            first = show_problems(self.fields, exc, general)
            if first is not None:
                first.control.focus()
            return
        except ServiceError as exc:
            general.show(str(exc))
            return
        show_problems(self.fields, None, general)
        self.message_id = queued.id
        self.post_message(TestMessageQueued(queued.id, queued.to_number, queued.provider_name or ""))
        self.test_label = f"Test message {queued.id} (variant {variant}) to {queued.to_number}" if variant \
            else f"Test message {queued.id} to {queued.to_number}"
        self.query_one("#test-result", Static).update(f"{self.test_label}: queued")
        self.query_one("#test-price", Static).update(Text.assemble(("Price ", "bold"), price.line) if price else "")

    @work(exclusive=True, group="campaign-test-watch", exit_on_error=False)
    async def watch_message(self) -> None:
        if self.message_id is None:
            return
        runtime = await self.runtime()
        async with runtime.factory() as session:
            view = await get_message(session, self.message_id)
        line = Text(f"{self.test_label}: ")
        line.append(view.shown_state, style="bold")
        if view.shown_reason:
            line.append(f" ({view.shown_reason})", style="dim")
        self.query_one("#test-result", Static).update(line)
        if view.settled:
            self.message_id = None


class SummaryStep(WizardStep):
    INDEX = 5
    MAIN = "#wizard-next"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+f", "next", "Schedule", id="campaign-wizard.schedule", tooltip="Schedule the campaign"),
        Binding("ctrl+f", "save_changes", "Save changes", id="campaign-wizard.save-changes",
                tooltip="Save the changes to this campaign (they apply to its future runs)"),
    ]

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        # a draft is scheduled from here; a scheduled (or paused...) campaign's edit is saved (future runs only)
        self.NEXT_LABEL = "Schedule" if state.campaign_state == "draft" else "Save changes"

    def compose_step(self) -> ComposeResult:
        # the figures first (they fit 80×24 above the fold), then every choice in words
        yield Static(Text("estimating reach…", style="dim italic"), id="summary-estimate")
        yield Static(Text("checking compliance and cost…", style="dim italic"), id="summary-preflight")
        yield Static("", id="summary-preview")
        yield Static("", id="summary-runs")
        yield Static("", id="summary-choices")

    def load(self) -> None:
        document = self.state.document
        who = document.get("who") or {}
        adhoc = describe_definition(who["definition"]) if isinstance(who.get("definition"), dict) else None
        text = Text()
        who_title = "Who (the trigger)" if document.get("type") in LIVE_TYPES else "Who"
        for title, lines in (("Name", [f"{document.get('name') or '(no name yet)'}"]), ("When", when_lines(document)),
                             (who_title, who_lines(document, adhoc)), ("What", what_lines(document)),
                             ("Goal", goal_lines(document)), *reply_lines(document)):
            text.append(f"{title}\n", style="bold")
            for line in lines:
                text.append(f"  {line}\n")
        text.rstrip()
        self.query_one("#summary-choices", Static).update(text)
        self.read_figures()

    @work(exclusive=True, group="campaign-summary-figures", exit_on_error=False)
    async def read_figures(self) -> None:
        document, problems = parse_document(self.state.document, default_timezone=self.state.default_timezone,
                                            strict=True)
        runtime = await self.runtime()
        estimate_line = self.query_one("#summary-estimate", Static)
        live = document.type in LIVE_TYPES
        async with runtime.factory() as session:
            if live:  # nobody qualifies in advance: each person's own event or date triggers it
                estimate_line.update(Text.assemble(("Trigger\n", "bold"), trigger_sentence(
                    document.type, document.who.trigger, user_timezone=document.when.user_timezone)))
            else:
                try:
                    estimate = await estimate_campaign(session, document, now=clock.now())
                    estimate_line.update(Text.assemble(("Reach\n", "bold"),
                                                       estimate_text(estimate, control=document.what.control)))
                except ServiceError as exc:
                    estimate_line.update(Text(f"Reach: no estimate ({exc})", style="dim"))
            self.query_one("#summary-preflight", Static).update(
                await summary_preflight(session, document, self.state.campaign_id))
            arms = document.what.arms
            shown = [await preview(session, document, profile_ref=None, variant=variant.name) for variant in arms]
        message = Text()
        if has_arms(arms, document.what.control):
            message.append("Arms ", style="bold")
            message.append(f"{arms_words(arms, document.what.control)}\n")
        for variant, one in zip(arms, shown, strict=True):
            message.append(f"Message {variant.name}\n" if len(arms) > 1 else "Message\n", style="bold")
            message.append_text(preview_text(one))
            message.append("\n")
        message.rstrip()
        self.query_one("#summary-preview", Static).update(message)
        runs = self.query_one("#summary-runs", Static)
        if live:
            runs.update(Text("Live: the When step is not complete", style="yellow")
                        if any(name.startswith(("when", "type")) for name, _ in problems)
                        else Text(live_span(document.when), style="bold"))
        elif any(name.startswith(("when", "type")) for name, _ in problems):
            runs.update(Text("Next runs: the When step is not complete", style="yellow"))
        else:
            runs.update(next_runs_text(occurrences(document.when, document.type, after=clock.now(), limit=5),
                                       document.when.timezone))
        if problems:
            fields = ", ".join(dict.fromkeys(name for name, _ in problems))
            self.query_one("#wizard-error", FieldError).show(f"To schedule, complete: {fields}")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # one ctrl+f, named for what it does: a draft is scheduled, an edited campaign's changes saved
        if action == "next":
            return self.state.campaign_state == "draft"
        if action == "save_changes":
            return self.state.campaign_state != "draft"
        return super().check_action(action, parameters)

    def action_next(self) -> None:
        self.schedule()

    def action_save_changes(self) -> None:
        self.schedule()

    @work(exclusive=True, group="campaign-wizard-save", exit_on_error=False)
    async def schedule(self) -> None:
        if (saved := await self.save()) is None:
            return
        if self.state.campaign_state != "draft":
            self.state.problems = []
            applies = ("triggers from now on use the changes" if self.state.document.get("type") in LIVE_TYPES
                       else "its future runs use the changes")
            self.notify(f"Saved {saved.name} ({saved.code}); {applies}.", title="Campaign saved")
            close_wizard(self, saved.code)
            return
        runtime = await self.runtime()
        try:
            async with runtime.factory() as session, session.begin():
                view = await crud.schedule_campaign(session, self.state.code, actor=ACTOR)
        except ValidationError as exc:
            await self.refused(exc.problems, "Not scheduled")
            return
        except PreflightBlocked as exc:  # the findings stay in view; the wizard stays open
            self.query_one("#summary-preflight", Static).update(preflight_text(exc.preflight))
            error = self.query_one("#wizard-error", FieldError)
            error.show(f"Not scheduled: {exc}")
            self.notify(str(exc), title="Not scheduled", severity="error", timeout=8)
            self.call_after_refresh(error.scroll_visible)
            return
        except ServiceError as exc:
            self.notify(str(exc), title="Not scheduled", severity="error", timeout=8)
            return
        self.state.problems = []
        when = f", next run {view.next_run_at:%Y-%m-%d %H:%M} UTC" if view.next_run_at else ""
        self.notify(f"Scheduled {view.name} ({view.code}){when}.", title="Campaign scheduled")
        close_wizard(self, view.code)
