"""Provider groups: each group with its countries and the default mark, and the highlighted group's
providers in priority order with their live health (refreshed from the database); create, edit,
delete, set the default, and reorder providers by keys or the ▲ ▼ buttons."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, Static

from smsconsole import clock
from smsconsole.screens.base import ACTOR, LiveSectionScreen
from smsconsole.screens.dialogs.group_form import GroupDraft, GroupFormDialog
from smsconsole.screens.widgets.formatting import format_time
from smsconsole.screens.widgets.tables import cursor_row_key, sync_rows
from smsconsole.services.errors import ServiceError
from smsconsole.services.groups import (
    GroupView,
    MemberView,
    create_group,
    delete_group,
    get_group,
    list_groups,
    move_member,
    set_default_group,
    update_group,
)
from smsconsole.services.providers import list_providers

REFRESH_SECONDS = 1.0
EMPTY_HINT = "No groups yet. Press a to add one: providers in priority order, with failover."
DEFAULT_MARK = "★"
STATUS_LOOK = {
    "healthy": ("●", "green"),
    "unhealthy": ("✖", "bold red"),
    "out of rotation": ("⊘", "bold yellow"),
    "probing": ("◐", "yellow"),
    "disabled": ("–", "dim"),
    "unknown": ("○", "dim"),
}


def member_status_text(member: MemberView) -> Text:
    """healthy / unhealthy / out of rotation (until when) / probing / disabled / unknown."""
    status = member.status(clock.now())
    mark, style = STATUS_LOOK.get(status, ("?", ""))
    text = f"{mark} {status}"
    if status == "out of rotation" and member.circuit_until is not None:
        text = f"{mark} out until {format_time(member.circuit_until, seconds=True)}"
    return Text(text, style=style)


def rate_text(member: MemberView) -> str:
    if member.rate_limit is None and member.sender_rate_limit is None:
        return "-"
    shown = f"{member.rate_limit:g}/s" if member.rate_limit else "-"
    return shown + (f" ({member.sender_rate_limit:g}/sender)" if member.sender_rate_limit else "")


class GroupsScreen(LiveSectionScreen):
    MODE = "groups"
    MAIN = "#groups-table"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "add", "Add", id="groups.new", tooltip="Add a provider group"),
        Binding("e", "edit", "Edit", id="groups.edit", tooltip="Edit the highlighted group (also enter)"),
        Binding("d,delete", "delete", "Delete", id="groups.delete",
                tooltip="Delete the highlighted group (asks first)"),
        Binding("asterisk", "set_default", "Default", id="groups.default", key_display="*",
                tooltip="Make the highlighted group the default (for messages with no group and no country group)"),
        Binding("shift+up,ctrl+up", "move_member(-1)", "Up", id="groups.member-up", key_display="⇧↑",
                tooltip="Move the highlighted provider up in its group (tried earlier)"),
        Binding("shift+down,ctrl+down", "move_member(1)", "Down", id="groups.member-down", key_display="⇧↓",
                tooltip="Move the highlighted provider down in its group (tried later)"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._groups: dict[str, GroupView] = {}
        self._pending_cursor: tuple[str | None, str | None] = (None, None)

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="groups-body"):
            with Vertical(id="groups-list", classes="panel") as panel:
                panel.border_title = "Groups (★ default)"
                yield DataTable(id="groups-table", cursor_type="row", zebra_stripes=True)
                yield Static(EMPTY_HINT, id="groups-empty", markup=False)
            with Vertical(id="groups-members", classes="panel") as members:
                members.border_title = "Providers in priority order"
                yield Static("", id="group-summary", markup=False)
                yield DataTable(id="members-table", cursor_type="row", zebra_stripes=True)
                with Horizontal(id="members-tools"):
                    yield Button("▲", id="member-up", compact=True, tooltip="Move the highlighted provider up")
                    yield Button("▼", id="member-down", compact=True, tooltip="Move the highlighted provider down")
                    yield Static("shift+↑/↓ reorder · ★ default: *", id="members-hint", markup=False)

    def on_mount(self) -> None:
        groups = self.groups_table
        groups.add_column(" ", key="default")
        groups.add_column("Name", key="name")
        groups.add_column("Countries", key="countries")
        groups.add_column("Providers", key="providers")
        members = self.members_table
        members.add_column("#", key="position")
        members.add_column("Provider", key="provider")
        members.add_column("Health", key="health")
        members.add_column("Limit", key="limit")
        members.add_column("Kind", key="kind")
        self.start_live(REFRESH_SECONDS, self.refresh_groups)

    @property
    def groups_table(self) -> DataTable[object]:
        return self.query_one("#groups-table", DataTable)

    @property
    def members_table(self) -> DataTable[object]:
        return self.query_one("#members-table", DataTable)

    @property
    def highlighted(self) -> str | None:
        return cursor_row_key(self.groups_table)

    @property
    def highlighted_member(self) -> str | None:
        return cursor_row_key(self.members_table)

    # --- live ----------------------------------------------------------------------------------

    @work(exclusive=True, group="groups-refresh", exit_on_error=False)
    async def refresh_groups(self) -> None:
        runtime = await self.runtime()
        async with runtime.factory() as session:
            views = await list_groups(session)
        select, member = self._pending_cursor
        self._pending_cursor = (None, None)
        self._show(views, select, member)

    def reload(self, select: str | None = None, member: str | None = None) -> None:
        """Refresh now (after a change), putting the cursors on `select` and `member`. Exclusive:
        it replaces a refresh in flight, and a tick that replaces it still moves the cursors."""
        self._pending_cursor = (select, member)
        self.refresh_groups()

    def _show(self, views: list[GroupView], select: str | None = None, member: str | None = None) -> None:
        self._groups = {view.name: view for view in views}
        with self.app.batch_update():
            sync_rows(self.groups_table, {
                view.name: (Text(DEFAULT_MARK, style="bold yellow") if view.is_default else "", view.name,
                            ", ".join(view.countries) or "-",
                            " > ".join(view.provider_names) if len(view.members) <= 3
                            else f"{' > '.join(view.provider_names[:3])} +{len(view.members) - 3}")
                for view in views
            })
            if select in self._groups:
                self.groups_table.move_cursor(row=self.groups_table.get_row_index(select), animate=False)
            self.query_one("#groups-empty").display = not views
            self._show_members(member)

    @on(DataTable.RowHighlighted, "#groups-table")
    def _group_highlighted(self) -> None:
        self._show_members()

    def _show_members(self, member: str | None = None) -> None:
        view = self._groups.get(self.highlighted or "")
        summary = self.query_one("#group-summary", Static)
        table = self.members_table
        if view is None:
            summary.update("")
            sync_rows(table, {})
            return
        where = f"countries {', '.join(view.countries)}" if view.countries else "no countries of its own"
        summary.update(Text.assemble((view.name, "bold"), (" ★ default" if view.is_default else "", "yellow"),
                                     (f" · {where}", "dim")))
        sync_rows(table, {
            m.provider_name: (str(m.position), m.provider_name, member_status_text(m), rate_text(m), m.kind)
            for m in view.members
        })
        if member is not None and member in view.provider_names:
            table.move_cursor(row=table.get_row_index(member), animate=False)

    # --- create, edit, delete, default -----------------------------------------------------------

    @work(exclusive=True, group="groups-new", exit_on_error=False)
    async def action_add(self) -> None:
        runtime = await self.runtime()
        async with runtime.factory() as session:
            providers = await list_providers(session)
        if not providers:
            self.notify("Add a provider first (section 2), then group providers here.", severity="warning")
            return

        async def save(draft: GroupDraft) -> GroupView:
            async with runtime.factory() as session, session.begin():
                return await create_group(session, name=draft.name, providers=draft.providers,
                                          countries=draft.countries, is_default=draft.is_default, actor=ACTOR)

        view = await self.app.push_screen_wait(GroupFormDialog(providers, save))
        if view is not None:
            self.notify(f"Created {view.name}: {' > '.join(view.provider_names)}.", title="Group saved")
            self.reload(select=view.name)

    @on(DataTable.RowSelected, "#groups-table")
    def action_edit(self) -> None:
        if (name := self._require_highlighted("edit")) is not None:
            self.edit_group(name)

    @work(exclusive=True, group="groups-edit", exit_on_error=False)
    async def edit_group(self, name: str) -> None:
        runtime = await self.runtime()
        try:
            async with runtime.factory() as session:
                providers = await list_providers(session)
                current = await get_group(session, name)
        except ServiceError as exc:
            self.notify(str(exc), title="Cannot edit", severity="error")
            return

        async def save(draft: GroupDraft) -> GroupView:
            async with runtime.factory() as session, session.begin():
                return await update_group(session, name, new_name=draft.name, providers=draft.providers,
                                          countries=draft.countries, actor=ACTOR)

        view = await self.app.push_screen_wait(GroupFormDialog(providers, save, current=current))
        if view is not None:
            self.notify(f"Saved {view.name}: {' > '.join(view.provider_names)}.", title="Group saved")
            self.reload(select=view.name)

    def action_delete(self) -> None:
        if (name := self._require_highlighted("delete")) is not None:
            self.delete_group(name)

    @work(exclusive=True, group="groups-delete", exit_on_error=False)
    async def delete_group(self, name: str) -> None:
        if not await self.confirm_and_apply(
            "Delete group",
            f"Delete group {name}? Its providers stay; messages queued for it are routed by their "
            "country's group or the default.",
            "Delete", lambda session: delete_group(session, name, actor=ACTOR), refused="Not deleted",
        ):
            return
        self.notify(f"Deleted {name}.", title="Group deleted")
        self.reload()

    def action_set_default(self) -> None:
        if (name := self._require_highlighted("make the default")) is not None:
            self.set_default(name)

    @work(exclusive=True, group="groups-default", exit_on_error=False)
    async def set_default(self, name: str) -> None:
        runtime = await self.runtime()
        try:
            async with runtime.factory() as session, session.begin():
                await set_default_group(session, name, actor=ACTOR)
        except ServiceError as exc:
            self.notify(str(exc), severity="error")
            return
        self.notify(f"{name} is now the default group.", title="Default group")
        self.reload(select=name)

    # --- reorder ---------------------------------------------------------------------------------

    @on(Button.Pressed, "#member-up")
    def _up(self) -> None:
        self.action_move_member(-1)

    @on(Button.Pressed, "#member-down")
    def _down(self) -> None:
        self.action_move_member(1)

    def action_move_member(self, step: int) -> None:
        group, member = self.highlighted, self.highlighted_member
        if group is None or member is None:
            self.notify("Highlight a provider in the group's list first.", severity="warning")
            return
        self.move(group, member, step)

    @work(exclusive=True, group="groups-move", exit_on_error=False)
    async def move(self, group: str, member: str, step: int) -> None:
        runtime = await self.runtime()
        try:
            async with runtime.factory() as session, session.begin():
                await move_member(session, group, member, by=step, actor=ACTOR)
        except ServiceError as exc:
            self.notify(str(exc), severity="error")
        self.reload(select=group, member=member)

    def _require_highlighted(self, verb: str) -> str | None:
        name = self.highlighted
        if name is None:
            self.notify(f"No group to {verb}: press a to add one.", severity="warning")
        return name
