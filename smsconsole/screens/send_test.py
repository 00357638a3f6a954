"""Test send: pick a provider, type a number and a message (checked as you type), send, and watch
recent test messages change state live."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import ClassVar

import phonenumbers
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Checkbox, DataTable, Input, Select, Static, TextArea

from smsconsole.messages import TestMessageQueued
from smsconsole.phone import parse_number
from smsconsole.screens.base import ACTOR, LiveSectionScreen
from smsconsole.screens.dialogs.message_path import open_message_path
from smsconsole.screens.widgets.fields import FieldError, FormField, show_problems
from smsconsole.screens.widgets.formatting import format_time, message_detail, state_text
from smsconsole.screens.widgets.tables import sync_rows
from smsconsole.services.compliance.views import test_send_price
from smsconsole.services.errors import ServiceError, ValidationError
from smsconsole.services.groups import GroupView, list_groups
from smsconsole.services.messages import (
    MessageView,
    queue_test_message,
    recent_messages,
)
from smsconsole.services.providers import ProviderView, list_providers
from smsconsole.services.settings import get_settings
from smsconsole.sms import analyze, replace_lookalikes, ucs2_culprits

REFRESH_SECONDS = 1.0
GROUP_PREFIX = "group:"  # a select value naming a group rather than a provider
SHOWN_UCS2_CHARACTERS = 6
HEALTH_RANK = {"healthy": 0, "unknown": 1, "unhealthy": 2}
FALLBACK_EXAMPLE_REGION = "GB"  # whose example number shows when no default region is set
PRICE_DELAY = 0.15  # seconds of quiet typing before the price is read


def example_number(region: str | None) -> tuple[str, str | None]:
    """(international, national) forms of the region's example mobile number; national is None
    without a region (a national number needs one)."""
    example = phonenumbers.example_number_for_type(region or FALLBACK_EXAMPLE_REGION,
                                                   phonenumbers.PhoneNumberType.MOBILE)
    if example is None:
        example = phonenumbers.example_number_for_type(FALLBACK_EXAMPLE_REGION, phonenumbers.PhoneNumberType.MOBILE)
        region = None
    assert example is not None
    international = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    national = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL) if region else None
    return international, national


def number_placeholder(region: str | None) -> str:
    international, national = example_number(region)
    return f"e.g. {international} or {national}" if national else f"e.g. {international}"


def default_choice(providers: Sequence[ProviderView], groups: Sequence[GroupView]) -> str | None:
    """What Test send offers first: the default group when it has an enabled provider, else the
    healthiest enabled provider (healthy, then untested, then unhealthy; in rotation first; by name)."""
    for group in groups:
        if group.is_default and any(member.enabled for member in group.members):
            return GROUP_PREFIX + group.name
    enabled = [view for view in providers if view.enabled]
    if not enabled:
        return None
    best = min(enabled, key=lambda v: (HEALTH_RANK.get(v.health, 1), v.circuit_state != "closed", v.name))
    return best.name


def describe_number(text: str, region: str | None) -> Text:
    """The typed number as the operator should read it: E.164, country, type, or why not."""
    if not text.strip():
        international, national = example_number(region)
        if national:
            return Text(f"E.164 (e.g. {international}) or national form in {region} (e.g. {national})", style="dim")
        return Text(f"E.164 (e.g. {international}); no default region set: use +country code", style="dim")
    info = parse_number(text, region)
    if not info.valid:
        return Text(f"✖ {info.reason}", style="red")
    line = Text.assemble(("✔ ", "green"), (info.e164 or "", "bold"), f" · {info.country} · {info.number_type}")
    if not info.sms_capable:
        line.append(f" — ⚠ a {info.number_type} number may not receive SMS", style="yellow")
    return line


def describe_body(body: str, smart: bool) -> tuple[Text, Text]:
    """(cost line, UCS-2 line): what the message costs as it will be sent, and which typed
    characters force UCS-2, each named once (highlighted, with its count or 1-based position;
    look-alikes marked)."""
    sent, replaced = replace_lookalikes(body) if smart else (body, 0)
    info = analyze(sent)
    plural = "" if info.segments == 1 else "s"
    cost = Text.assemble(
        f"{info.characters} chars · ",
        (str(info.encoding), "bold yellow" if info.non_gsm else "bold green"),
        f" · {info.segments} segment{plural} · {info.remaining} of {info.per_segment_limit} left",
    )
    if replaced:
        cost.append(f" · {replaced} look-alike{'s' if replaced != 1 else ''} replaced", style="cyan")
    forcing = [c for c in ucs2_culprits(body) if not (smart and replace_lookalikes(c.char)[1])]
    if not forcing:
        return cost, Text("")
    why = Text("UCS-2 because of ", style="dim")
    for culprit in forcing[:SHOWN_UCS2_CHARACTERS]:
        ch = culprit.char
        why.append(ch if ch.isprintable() and not ch.isspace() else repr(ch)[1:-1], style="reverse bold yellow")
        why.append(f" ×{culprit.count:,} (first at {culprit.first_index + 1})" if culprit.count > 1
                   else f" at {culprit.first_index + 1}")
        if replace_lookalikes(ch)[1]:
            why.append(" (look-alike)", style="cyan")
        why.append("  ")
    if len(forcing) > SHOWN_UCS2_CHARACTERS:
        more = len(forcing) - SHOWN_UCS2_CHARACTERS
        why.append(f"… {more} more character{'s' if more != 1 else ''}", style="dim")
    why.rstrip()
    return cost, why


def _via(view: MessageView) -> str:
    """The provider that sent it; a group's message shows the group until the engine picks one."""
    if view.group_name:
        return f"{view.provider_name} ({view.group_name})" if view.provider_name else f"group: {view.group_name}"
    return view.provider_name or "-"


class SendTestScreen(LiveSectionScreen):
    MODE = "test-send"
    # the form and a live list: entering lands on the list, so the section keys work; e (or tab)
    # goes to the form, escape comes back
    MAIN = "#recent-table"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "send", "Send", id="test-send.send",
                tooltip="Queue the test message; the engine sends it and the table shows its status"),
        Binding("e", "edit", "Edit", id="test-send.edit", tooltip="Edit the message: to the To field"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._region: str | None = None

    def compose_body(self) -> ComposeResult:
        with Vertical(id="test-send-body"):
            yield FieldError(id="test-send-error")
            with Horizontal(id="test-send-address"):
                yield FormField("provider", "Provider or group",
                                Select[str]([], prompt="Choose a provider or group", compact=True,
                                            id="input-provider"))
                yield FormField("to", "To", Input(placeholder=number_placeholder(None), compact=True,
                                                  id="input-to"))
            yield Static(describe_number("", None), id="number-info")
            yield FormField("body", "Message", TextArea(compact=True, id="input-body", soft_wrap=True,
                                                        placeholder="e.g. Your code is 123456"))
            yield Static(describe_body("", False)[0], id="body-stats")
            yield Static("", id="price-info")
            yield Static("", id="ucs2-info")
            with Horizontal(id="test-send-actions"):
                yield Checkbox("Replace look-alikes", id="input-smart-encoding", compact=True,
                               tooltip="Send curly quotes, dashes, ellipses… as their GSM-7 look-alikes")
                yield Button("Send", id="send", variant="primary", compact=True,
                             tooltip="Queue the message (ctrl+s)")
            with Vertical(id="test-send-recent", classes="panel") as panel:
                panel.border_title = "Recent test messages (enter: its path)"
                yield DataTable(id="recent-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one("#recent-table", DataTable)
        table.add_column("#", key="id")
        table.add_column("Time", key="time")
        table.add_column("To", key="to")
        table.add_column("Provider", key="provider")
        table.add_column("State", key="state")
        table.add_column("Detail", key="detail")
        self.start_live(REFRESH_SECONDS, self.refresh_recent)
        self.query_one("#ucs2-info").display = False

    def on_screen_resume(self) -> None:
        self.load_choices()

    @property
    def fields(self) -> list[FormField]:
        return list(self.query(FormField))

    # --- providers and the default region ------------------------------------------------------

    @work(exclusive=True, group="test-send-load", exit_on_error=False)
    async def load_choices(self) -> None:
        runtime = await self.runtime()
        async with runtime.factory() as session:
            providers = await list_providers(session)
            groups = await list_groups(session)
            settings = await get_settings(session)
        self._show_choices(providers, settings["default_region"] or None, groups)

    def _show_choices(self, providers: list[ProviderView], region: str | None,
                      groups: list[GroupView] | None = None) -> None:
        select = self.query_one("#input-provider", Select)
        chosen = select.value
        options = [
            (f"{view.name} ({view.display_name})" + ("" if view.enabled else " — disabled"), view.name)
            for view in providers
        ]
        options += [(f"group: {group.name}" + (" ★" if group.is_default else ""), GROUP_PREFIX + group.name)
                    for group in groups or []]
        select.set_options(options)
        names = [value for _, value in options]
        if chosen in names:
            select.value = chosen
        elif (first := default_choice(providers, groups or [])) is not None:
            select.value = first
        self._region = region
        self.query_one("#input-to", Input).placeholder = number_placeholder(region)
        self.query_one("#field-to", FormField).query_one(".form-field-label", Static).update(
            f"To (default region {region})" if region else "To (no default region)"
        )
        self._update_number()

    # --- as you type -------------------------------------------------------------------------

    @on(Input.Changed, "#input-to")
    def _update_number(self) -> None:
        number = self.query_one("#input-to", Input).value
        info = self.query_one("#number-info", Static)
        info.update(describe_number(number, self._region))
        # while a refusal of the number is shown under the field, this line would repeat it
        info.display = self.query_one("#field-to", FormField).error.reason is None
        self._update_price()

    @on(TextArea.Changed, "#input-body")
    @on(Checkbox.Changed, "#input-smart-encoding")
    def _update_body(self) -> None:
        body = self.query_one("#input-body", TextArea).text
        smart = self.query_one("#input-smart-encoding", Checkbox).value
        cost, why = describe_body(body, smart)
        self.query_one("#body-stats", Static).update(cost)
        ucs2 = self.query_one("#ucs2-info", Static)
        ucs2.update(why)
        ucs2.display = bool(why)
        self._update_price()

    @on(Select.Changed, "#input-provider")
    def _update_price(self) -> None:
        select = self.query_one("#input-provider", Select)
        chosen = "" if select.value is Select.NULL else str(select.value)
        self.read_price(
            provider_name="" if chosen.startswith(GROUP_PREFIX) else chosen,
            group_name=chosen.removeprefix(GROUP_PREFIX) if chosen.startswith(GROUP_PREFIX) else "",
            to=self.query_one("#input-to", Input).value, body=self.query_one("#input-body", TextArea).text,
            smart=self.query_one("#input-smart-encoding", Checkbox).value)

    @work(exclusive=True, group="test-send-price", exit_on_error=False)
    async def read_price(self, *, provider_name: str, group_name: str, to: str, body: str, smart: bool) -> None:
        """The message's price on the chosen provider for the recipient's country, as typed."""
        await asyncio.sleep(PRICE_DELAY)  # typing on cancels this read (exclusive) before it queries
        runtime = await self.runtime()
        async with runtime.factory() as session:
            price = await test_send_price(session, to=to, body=body, default_region=self._region,
                                          provider_name=provider_name, group_name=group_name, smart_encoding=smart)
        line = self.query_one("#price-info", Static)
        if price is None:
            line.update("")
        else:
            line.update(Text.assemble(("Price ", "bold"), (price.line, "" if price.cost and
                                                            price.cost.amount is not None else "dim")))

    # --- send --------------------------------------------------------------------------------

    def action_edit(self) -> None:
        self.query_one("#input-to", Input).focus()

    @on(Input.Submitted, "#input-to")
    @on(Button.Pressed, "#send")
    def action_send(self) -> None:
        select = self.query_one("#input-provider", Select)
        chosen = "" if select.value is Select.NULL else str(select.value)
        self.send_test(
            provider_name="" if chosen.startswith(GROUP_PREFIX) else chosen,
            group_name=chosen.removeprefix(GROUP_PREFIX) if chosen.startswith(GROUP_PREFIX) else "",
            to=self.query_one("#input-to", Input).value,
            body=self.query_one("#input-body", TextArea).text,
            smart=self.query_one("#input-smart-encoding", Checkbox).value,
        )

    @work(exclusive=True, group="test-send-send", exit_on_error=False)
    async def send_test(self, *, provider_name: str, to: str, body: str, smart: bool, group_name: str = "") -> None:
        runtime = await self.runtime()
        general = self.query_one("#test-send-error", FieldError)
        try:
            async with runtime.factory() as session, session.begin():
                region = (await get_settings(session))["default_region"]
                queued = await queue_test_message(session, provider_name=provider_name, group_name=group_name,
                                                  to=to, body=body, default_region=region, actor=ACTOR,
                                                  smart_encoding=smart)
        except ValidationError as exc:
            # one select holds providers and groups: a group's problem belongs under it
            exc = ValidationError([("provider" if field == "group" else field, reason)
                                   for field, reason in exc.problems])
            first = show_problems(self.fields, exc, general)
            self._update_number()
            if first is not None:
                first.control.focus()
            return
        except ServiceError as exc:
            general.show(str(exc))
            return
        show_problems(self.fields, None, general)
        self._update_number()
        via = queued.provider_name or f"group {queued.group_name}"
        self.notify(f"Message {queued.id} to {queued.to_number} via {via}: "
                    f"{queued.segments} segment(s), {queued.encoding}.", title="Queued")
        self.post_message(TestMessageQueued(queued.id, queued.to_number, queued.provider_name or ""))
        self.action_refresh()

    # --- recent messages, live ---------------------------------------------------------------

    @work(exclusive=True, group="test-send-refresh", exit_on_error=False)
    async def refresh_recent(self) -> None:
        runtime = await self.runtime()
        async with runtime.factory() as session:
            views = await recent_messages(session, kind="test")
        self._show_recent(views)

    def _show_recent(self, views: list[MessageView]) -> None:
        with self.app.batch_update():
            sync_rows(self.query_one("#recent-table", DataTable), {
                str(view.id): (str(view.id), format_time(view.created_at, seconds=True), view.to_number,
                               _via(view), state_text(view.shown_state), message_detail(view))
                for view in views
            })

    @on(DataTable.RowSelected, "#recent-table")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self.show_message(int(event.row_key.value))

    @work(exclusive=True, group="test-send-detail", exit_on_error=False)
    async def show_message(self, message_id: int) -> None:
        await open_message_path(self, message_id)
