"""Inbox: replies as they arrive — who, their profile, what they wrote, the keyword it matched, what
was done, and the message it answers (with its campaign and variant, "C12/B"; for an answer to a
campaign's reply options, the option it picked: "C12/B option C", "option 8" for a score) —
refreshed live from the database; enter opens the profile."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Input, Select, Static

from smsconsole.screens.base import LiveSectionScreen
from smsconsole.screens.widgets.formatting import format_time
from smsconsole.screens.widgets.tables import cursor_row_key, sync_rows
from smsconsole.services.replies import InboundView, recent_inbound

REFRESH_SECONDS = 1.0
SHOWN = 200
ACTION_CHOICES = [("every action", ""), ("opt-out", "opt_out"), ("opt-in", "opt_in"), ("help", "help"),
                  ("custom keyword", "custom"), ("campaign option", "option"), ("plain reply", "reply")]
ACTION_STYLES = {"opt_out": "bold yellow", "opt_in": "green", "help": "cyan", "custom": "magenta",
                 "option": "bold blue", "reply": ""}
EMPTY_TEXT = (
    "No replies yet.\n\n"
    "Replies arrive through the engine: it polls providers that can list inbound messages, and its "
    "webhook listener takes the ones that push (set Settings → public callback URL). STOP, START, HELP "
    "and their regional forms act at once (Settings → Keywords); any other reply is logged as an "
    "sms_reply event.\n\n"
    "Try it with the Sandbox: smsconsole sandbox reply --from +447400123456 --text STOP"
)


def action_text(action: str | None, option: str | None = None) -> Text:
    """What was done; for an answer to a campaign's reply options, the option too ("option C")."""
    label = {"opt_out": "opt-out", "opt_in": "opt-in"}.get(action or "", action or "-")
    if action == "option" and option:
        label = f"option {option if len(option) <= 8 else option[:7] + '…'}"
    return Text(label, style=ACTION_STYLES.get(action or "", ""))


def option_words(view: InboundView) -> str | None:
    """The campaign (and variant) and the reply option a reply picked: "C12/B option C"; None for
    any other reply."""
    option = view.reply_option
    if view.action != "option" or not option:
        return None
    return f"{view.answers_arm} option {option}" if view.answers_arm else f"option {option}"


def profile_text(view: InboundView) -> Text:
    """Who the profile is: its name, else its user id; one known only by this number says so."""
    if view.profile_id is None:
        return Text("none", style="dim")
    if view.profile_name or (view.profile_key and view.profile_key != view.sender):
        return Text(view.profile_name or view.profile_key or "")
    return Text("by number", style="dim")


def one_line(text: str, width: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


class InboxScreen(LiveSectionScreen):
    MODE = "inbox"
    MAIN = "#inbox-table"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "refresh", "Refresh", id="inbox.refresh", tooltip="Read the database again now"),
        Binding("slash", "search", "Filter", id="inbox.filter", key_display="/",
                tooltip="Filter by action or keyword (escape: back to the list)"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._views: dict[str, InboundView] = {}

    def compose_body(self) -> ComposeResult:
        with Vertical(id="inbox-body"):
            with Horizontal(id="inbox-filters"):
                yield Select(ACTION_CHOICES, value="", allow_blank=False, compact=True, id="inbox-action")
                yield Input(placeholder="keyword, e.g. STOP", compact=True, id="inbox-keyword")
            with Vertical(id="inbox-list", classes="panel") as panel:
                panel.border_title = "Replies (enter: open the profile)"
                yield DataTable(id="inbox-table", cursor_type="row", zebra_stripes=True)
                yield Static(EMPTY_TEXT, id="inbox-empty", markup=False)
            yield Static("", id="inbox-detail", markup=False)

    def on_mount(self) -> None:
        table = self.query_one("#inbox-table", DataTable)
        table.add_column("Received", key="received")
        table.add_column("From", key="from")
        table.add_column("Keyword", key="keyword")
        table.add_column("Action", key="action")
        table.add_column("Text", key="text")
        table.add_column("Profile", key="profile")
        table.add_column("Answers", key="answers")
        self.query_one("#inbox-empty").display = False
        self.start_live(REFRESH_SECONDS, self.refresh_inbox)

    def action_search(self) -> None:
        self.query_one("#inbox-action", Select).focus()

    @on(Select.Changed, "#inbox-action")
    @on(Input.Changed, "#inbox-keyword")
    def _filter_changed(self) -> None:
        self.action_refresh()

    @property
    def filters(self) -> tuple[str | None, str | None]:
        action = self.query_one("#inbox-action", Select).value
        keyword = self.query_one("#inbox-keyword", Input).value.strip()
        return (str(action) if action not in (Select.NULL, "") else None), (keyword or None)

    @work(exclusive=True, group="inbox-refresh", exit_on_error=False)
    async def refresh_inbox(self) -> None:
        action, keyword = self.filters
        runtime = await self.runtime()
        async with runtime.factory() as session:
            views = await recent_inbound(session, limit=SHOWN, action=action, keyword=keyword)
        self._show(views, filtered=bool(action or keyword))

    def _show(self, views: list[InboundView], *, filtered: bool) -> None:
        self._views = {str(view.id): view for view in views}
        table = self.query_one("#inbox-table", DataTable)
        rows: dict[str, tuple[Any, ...]] = {}
        for view in views:
            campaign = f"{view.answers_arm} " if view.answers_arm else ""  # "C12/B ": the campaign and variant
            picked = option_words(view)  # an answer to the campaign's options says which it picked
            answers: Any = "-"
            if view.answers_message_id and picked:
                answers = Text.assemble(f"#{view.answers_message_id} ", (picked, ACTION_STYLES["option"]))
            elif view.answers_message_id:
                answers = f"#{view.answers_message_id} {campaign}{one_line(view.answers_body or '', 24)}"
            rows[str(view.id)] = (
                format_time(view.received_at, seconds=True), view.sender, view.keyword or "-",
                action_text(view.action, view.reply_option), one_line(view.text, 28), profile_text(view), answers,
            )
        with self.app.batch_update():
            sync_rows(table, rows)
            empty = self.query_one("#inbox-empty", Static)
            empty.display = not views
            table.display = bool(views)
            if not views and filtered:
                empty.update("No replies match the filter.")
            elif not views:
                empty.update(EMPTY_TEXT)
            self.query_one("#inbox-list").border_subtitle = (
                f"{len(views)} shown" + (" (filtered)" if filtered else "") if views else "")
            self._show_detail()

    @on(DataTable.RowHighlighted, "#inbox-table")
    def _show_detail(self) -> None:
        view = self._views.get(cursor_row_key(self.query_one("#inbox-table", DataTable)) or "")
        detail = self.query_one("#inbox-detail", Static)
        if view is None:
            detail.update("")
            return
        line = Text.assemble((f"{view.sender}", "bold"), f" via {view.provider_name or '-'} ({view.via}): ",
                             one_line(view.text, 200))
        if picked := option_words(view):
            line.append(f"  picked {picked}", style=ACTION_STYLES["option"])
        if view.response_message_id:
            line.append(f"  → auto-response #{view.response_message_id}", style="dim")
        detail.update(line)

    @on(DataTable.RowSelected, "#inbox-table")
    def _open_profile(self, event: DataTable.RowSelected) -> None:
        from smsconsole.screens.audience.profile import ProfileScreen

        view = self._views.get(str(event.row_key.value))
        if view is None or view.profile_key is None:
            self.notify("This reply has no profile (the sender is not a phone number).", timeout=4)
            return
        self.app.push_screen(ProfileScreen(view.profile_key))
