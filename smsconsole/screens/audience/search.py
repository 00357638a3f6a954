"""Audience: find people by phone (any format), user id or name as you type; enter opens their
profile; i imports a file of profiles or events."""

from __future__ import annotations

import asyncio
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Input, Static

from smsconsole.screens.audience.importing import ImportScreen
from smsconsole.screens.audience.profile import ProfileScreen, profile_key
from smsconsole.screens.base import SectionScreen
from smsconsole.screens.widgets.fields import FormField
from smsconsole.screens.widgets.formatting import plural, reach_text, subscription_text
from smsconsole.screens.widgets.tables import sync_rows
from smsconsole.services.profiles import ProfileSummary, audience_defaults, search_profiles

SEARCH_DEBOUNCE_SECONDS = 0.3
RESULT_LIMIT = 50


def search_hint(query: str, found: int, region: str | None) -> Text:
    """What the table shows, and how a typed phone number is read."""
    region_note = (f"national numbers are read as {region}" if region
                   else "no default region: type phones with +country code")
    if not query.strip():
        return Text.assemble("Latest updated profiles. ", (f"Type a phone, user id or name; {region_note}.", "dim"))
    if not found:
        return Text.assemble((f"No profile matches {query.strip()!r}", "yellow"), (f" ({region_note})", "dim"))
    more = f" (the first {RESULT_LIMIT})" if found >= RESULT_LIMIT else ""
    action = "enter opens it" if found == 1 else "↓ to the list, enter opens one"
    verb = "matches" if found == 1 else "match"
    return Text.assemble(f"{plural(found, 'profile')} {verb} {query.strip()!r}{more}. ",
                         (action, "dim"))


class AudienceScreen(SectionScreen):
    MODE = "audience"
    MAIN = "#audience-table"  # / goes to the search field, escape comes back
    BINDINGS: ClassVar[list[BindingType]] = [
        # ctrl+o too, so the footer offers import while the search field takes printable keys
        Binding("i,ctrl+o", "import_file", "Import…", id="audience.import",
                tooltip="Import profiles or events from a CSV or JSON-lines file"),
        Binding("slash", "search", "Search", id="audience.search",
                tooltip="Search by phone (any format), user id or name"),
        Binding("down", "focus_results", show=False, id="audience.results",
                tooltip="From the search field, move to the results"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._found: dict[str, ProfileSummary] = {}
        self._shown_query: str | None = None

    def compose_body(self) -> ComposeResult:
        with Vertical(id="audience-body"):
            yield FormField("query", "Find a person",
                            Input(placeholder="+44 7400 123456, 07400 123456, a user id or a name", compact=True,
                                  id="audience-search"))
            yield Static("", id="audience-hint")
            with Vertical(id="audience-results", classes="panel") as panel:
                panel.border_title = "Profiles"
                yield DataTable(id="audience-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one("#audience-table", DataTable)
        table.add_column("User id", key="user_id")
        table.add_column("Phone", key="phone")
        table.add_column("Name", key="name")
        table.add_column("Ctry", key="country")
        table.add_column("Subscription", key="subscription")
        table.add_column("Reach", key="reachable")

    def on_screen_resume(self) -> None:
        self.search(self.query_text)  # a profile or an import may have changed what matches

    @property
    def query_text(self) -> str:
        return self.query_one("#audience-search", Input).value

    @property
    def table(self) -> DataTable[object]:
        return self.query_one("#audience-table", DataTable)

    # --- searching as you type ---------------------------------------------------------------

    @on(Input.Changed, "#audience-search")
    def _query_changed(self, event: Input.Changed) -> None:
        self.search(event.value, debounce=True)

    @work(exclusive=True, group="audience-search", exit_on_error=False)
    async def search(self, query: str, *, debounce: bool = False) -> None:
        """Exclusive: a newer query cancels this one, during the pause or the query itself."""
        if debounce:
            await asyncio.sleep(SEARCH_DEBOUNCE_SECONDS)
        runtime = await self.runtime()
        async with runtime.factory() as session:
            defaults = await audience_defaults(session)
            found = await search_profiles(session, query, default_region=defaults.region, limit=RESULT_LIMIT)
        self._show(query, found, defaults.region)

    def _show(self, query: str, found: list[ProfileSummary], region: str | None) -> None:
        self._found = {str(summary.id): summary for summary in found}
        new_query, self._shown_query = query.strip() != self._shown_query, query.strip()
        with self.app.batch_update():
            sync_rows(self.table, {
                str(s.id): (s.user_id or "-", s.phone or "-", s.name or "-", s.country or "-",
                            subscription_text(s.subscription), reach_text(s.reachable))
                for s in found
            })
            if new_query and found:  # a new search starts at its best match; a refresh keeps the cursor
                self.table.move_cursor(row=0, animate=False)
            self.query_one("#audience-hint", Static).update(search_hint(query, len(found), region))

    # --- opening a profile -------------------------------------------------------------------

    @on(Input.Submitted, "#audience-search")
    def _query_submitted(self) -> None:
        """Enter in the search: open the only match, else move to the results."""
        if len(self._found) == 1:
            self.open_profile(next(iter(self._found)))
        elif self._found:
            self.table.focus()

    @on(DataTable.RowSelected, "#audience-table")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self.open_profile(str(event.row_key.value))

    def open_profile(self, row_key: str) -> None:
        summary = self._found.get(row_key)
        if summary is not None:
            self.app.push_screen(ProfileScreen(profile_key(summary.user_id, summary.id)))

    def action_focus_results(self) -> None:
        if self.table.row_count:
            self.table.focus()

    def action_search(self) -> None:
        self.query_one("#audience-search", Input).focus()

    def action_import_file(self, kind: str = "profiles") -> None:
        self.app.push_screen(ImportScreen(kind))
