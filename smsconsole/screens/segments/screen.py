"""Segments: the saved segments with their reach (computed in the background), and the ways to
build, edit, duplicate and delete one."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.widgets import DataTable, Static

from smsconsole.screens.base import ACTOR, SectionScreen
from smsconsole.screens.dialogs.segment_name import SegmentNameDialog
from smsconsole.screens.segments.builder import SegmentBuilderScreen
from smsconsole.screens.segments.reach import reach_summary
from smsconsole.screens.widgets.formatting import format_time
from smsconsole.screens.widgets.tables import cursor_row_key, sync_rows
from smsconsole.services.errors import ServiceError, ValidationError
from smsconsole.services.segments import (
    ReachEstimate,
    SegmentView,
    campaigns_using_segment,
    delete_segment,
    duplicate_segment,
    estimate_reach,
    get_segment,
    list_segments,
)

EMPTY_HINT = "No segments yet. Press a to add one: conditions on properties, events and subscription."
PENDING = Text("…", style="dim italic")


def shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


class SegmentsScreen(SectionScreen):
    MODE = "segments"
    MAIN = "#segments-table"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "add", "Add", id="segments.new", tooltip="Build a new segment"),
        Binding("e", "edit", "Edit", id="segments.edit", tooltip="Edit the highlighted segment (or enter)"),
        Binding("c", "copy", "Copy", id="segments.duplicate",
                tooltip="Copy the highlighted segment under a new name"),
        Binding("d,delete", "delete", "Delete", id="segments.delete",
                tooltip="Delete the highlighted segment (asks first; refused while a scheduled campaign uses it)"),
        Binding("r", "refresh", "Reach", id="segments.reach", tooltip="Recompute every segment's reach now"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.segments: dict[str, SegmentView] = {}
        self.used_by: dict[str, list[str]] = {}
        self.reach: dict[str, ReachEstimate | str] = {}
        self._select: str | None = None

    def compose_body(self) -> ComposeResult:
        with Vertical(id="segments-body"):
            with Vertical(id="segments-list", classes="panel") as panel:
                panel.border_title = "Segments"
                yield DataTable(id="segments-table", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="segments-detail", classes="panel") as detail:
                detail.border_title = "Details"
                yield Static(EMPTY_HINT, id="segment-detail")

    def on_mount(self) -> None:
        table = self.table
        table.add_column("Name", key="name")
        table.add_column("Summary", key="summary")
        table.add_column("Qualified", key="qualified")
        table.add_column("Reachable", key="reachable")
        table.add_column("Updated", key="updated")
        table.add_column("Used by", key="used_by")

    def on_screen_resume(self) -> None:
        self.load_segments()

    @property
    def table(self) -> DataTable[object]:
        return self.query_one("#segments-table", DataTable)

    @property
    def highlighted(self) -> str | None:
        return cursor_row_key(self.table)

    # --- loading -----------------------------------------------------------------------------

    @work(exclusive=True, group="segments-load", exit_on_error=False)
    async def load_segments(self) -> None:
        runtime = await self.runtime()
        async with runtime.factory() as session:
            views = await list_segments(session)
            used_by = {view.name: await campaigns_using_segment(session, view.id) for view in views}
        self.segments = {view.name: view for view in views}
        self.used_by = used_by
        self.reach = {name: estimate for name, estimate in self.reach.items()
                      if name in self.segments and not self._stale(name)}
        summary_width = 48 if self.app.size.width >= 100 else 16
        with self.app.batch_update():
            sync_rows(self.table, {view.name: self._cells(view, summary_width) for view in views})
            if self._select in self.segments:
                self.table.move_cursor(row=self.table.get_row_index(self._select))
            self._select = None
            self._show_detail()
        self.compute_reach([view.name for view in views if view.name not in self.reach])

    def _stale(self, name: str) -> bool:
        estimate = self.reach.get(name)
        return not isinstance(estimate, ReachEstimate) or estimate.computed_at < self.segments[name].updated_at

    def _cells(self, view: SegmentView, summary_width: int) -> tuple[object, ...]:
        users = self.used_by.get(view.name, [])
        return (shorten(view.name, 18), shorten(view.summary, summary_width), *self._reach_cells(view.name),
                format_time(view.updated_at), shorten(", ".join(users), 14) if users else Text("-", style="dim"))

    def _reach_cells(self, name: str) -> tuple[Text, Text]:
        estimate = self.reach.get(name)
        if isinstance(estimate, ReachEstimate):
            return (Text(f"{estimate.qualified:,}", justify="right"),
                    Text(f"{estimate.reachable:,}", style="green", justify="right"))
        if isinstance(estimate, str):
            return Text("✖ invalid", style="red"), Text("")
        return PENDING, PENDING

    @work(exclusive=True, group="segments-reach", exit_on_error=False)
    async def compute_reach(self, names: list[str]) -> None:
        """Each segment's estimate in turn, shown as it arrives."""
        runtime = await self.runtime()
        for name in names:
            view = self.segments.get(name)
            if view is None:
                continue
            try:
                async with runtime.factory() as session:
                    self.reach[name] = await estimate_reach(session, view.definition)
            except ValidationError as exc:  # saved before a property changed type, say
                self.reach[name] = "; ".join(f"{path}: {reason}" for path, reason in exc.problems)
            if name in self.segments:
                qualified, reachable = self._reach_cells(name)
                self.table.update_cell(name, "qualified", qualified, update_width=True)
                self.table.update_cell(name, "reachable", reachable, update_width=True)
                if name == self.highlighted:
                    self._show_detail()

    def action_refresh(self) -> None:
        self.reach.clear()
        for name in self.segments:
            self.table.update_cell(name, "qualified", PENDING)
            self.table.update_cell(name, "reachable", PENDING)
        self._show_detail()
        self.compute_reach(list(self.segments))

    @on(DataTable.RowHighlighted, "#segments-table")
    def _show_detail(self) -> None:
        detail = self.query_one("#segment-detail", Static)
        view = self.segments.get(self.highlighted or "")
        if view is None:
            detail.update(EMPTY_HINT)
            return
        users = self.used_by.get(view.name, [])
        text = Text.assemble((view.name, "bold"), (f"  updated {format_time(view.updated_at)}", "dim"),
                             ("  used by ", "dim"), ", ".join(users) or "no scheduled campaign")
        text.append("\n")
        text.append(view.summary)
        if view.description:
            text.append(f"\n{view.description}", style="dim")
        estimate = self.reach.get(view.name)
        text.append("\n")
        if isinstance(estimate, ReachEstimate):
            text.append_text(reach_summary(estimate))
        elif isinstance(estimate, str):
            text.append(f"No estimate: {estimate}", style="red")
        else:
            text.append("estimating reach…", style="dim italic")
        detail.update(text)

    # --- build and edit ----------------------------------------------------------------------

    def action_add(self) -> None:
        self.app.push_screen(SegmentBuilderScreen(), self._builder_closed)

    @on(DataTable.RowSelected, "#segments-table")
    def _row_chosen(self) -> None:
        self.action_edit_segment()

    def action_edit_segment(self) -> None:
        if (name := self._require_highlighted("edit")) is not None:
            self.edit_segment(name)

    action_edit = action_edit_segment

    @work(exclusive=True, group="segments-edit", exit_on_error=False)
    async def edit_segment(self, name: str) -> None:
        runtime = await self.runtime()
        try:
            async with runtime.factory() as session:
                view = await get_segment(session, name)
        except ServiceError as exc:
            self.notify(str(exc), title="Cannot edit", severity="error")
            self.load_segments()
            return
        self.app.push_screen(SegmentBuilderScreen(view), self._builder_closed)

    def _builder_closed(self, saved: str | None) -> None:
        if saved is not None:
            self._select = saved
            self.reach.pop(saved, None)
            self.load_segments()

    # --- duplicate and delete ----------------------------------------------------------------

    def action_copy(self) -> None:
        if (name := self._require_highlighted("duplicate")) is not None:
            self.duplicate(name)

    @work(exclusive=True, group="segments-duplicate", exit_on_error=False)
    async def duplicate(self, name: str) -> None:
        runtime = await self.runtime()

        async def save(new_name: str) -> SegmentView:
            async with runtime.factory() as session, session.begin():
                return await duplicate_segment(session, name, new_name=new_name, actor=ACTOR)

        view = await self.app.push_screen_wait(SegmentNameDialog(
            f"Duplicate {shorten(name, 40)}", "The copy gets the same definition; edit it afterwards.", save,
            name=shorten(f"{name} (copy)", 120), confirm_label="Duplicate",
        ))
        if view is not None:
            self.notify(f"Duplicated {name} as {view.name}.", title="Segment duplicated")
            self._select = view.name
            self.load_segments()

    def action_delete(self) -> None:
        if (name := self._require_highlighted("delete")) is not None:
            self.delete(name)

    @work(exclusive=True, group="segments-delete", exit_on_error=False)
    async def delete(self, name: str) -> None:
        done = await self.confirm_and_apply(
            "Delete segment",
            f"Delete segment {name}? Its definition is gone for good; campaigns that already sent keep "
            "their history.",
            "Delete", lambda session: delete_segment(session, name, actor=ACTOR), refused="Not deleted",
        )
        if done is False:  # Conflict: a scheduled campaign uses it
            self.load_segments()
        if not done:
            return
        self.notify(f"Deleted {name}.", title="Segment deleted")
        self.reach.pop(name, None)
        self.load_segments()

    def _require_highlighted(self, verb: str) -> str | None:
        name = self.highlighted
        if name is None:
            self.notify(f"No segment to {verb}: press a to add one.", severity="warning")
        return name
