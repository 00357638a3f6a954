"""The segment builder: a name, the definition as a tree of ALL/ANY groups and conditions (or as raw
JSON), and a live reach estimate recomputed in a worker a moment after each change. Problems the
service finds are shown beside the condition they belong to, named by field; nothing typed is lost
when a save is refused."""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Input, Label, Static, TextArea, Tree
from textual.widgets.tree import TreeNode

from smsconsole.screens.base import ACTOR, SectionScreen
from smsconsole.screens.dialogs.condition_editor import ConditionEditorDialog
from smsconsole.screens.dialogs.confirm import ConfirmDialog
from smsconsole.screens.dialogs.form import DISCARD_QUESTION
from smsconsole.screens.segments.conditions import (
    EVENT,
    FILTER,
    GROUP,
    children,
    describe,
    field_words,
    kind_of,
    node_at,
    owner_of,
    split_path,
)
from smsconsole.screens.segments.reach import reach_panel_text, reach_problems_text
from smsconsole.screens.widgets.fields import FieldError
from smsconsole.screens.widgets.trees import FittingTree
from smsconsole.services.errors import ServiceError, ValidationError
from smsconsole.services.segments import (
    ReachEstimate,
    SegmentCatalog,
    SegmentView,
    create_segment,
    estimate_reach,
    segment_catalog,
    update_segment,
)

ESTIMATE_DELAY_SECONDS = 0.4  # typing pauses this long before an estimate starts
EMPTY_DEFINITION: dict[str, Any] = {"match": "all", "conditions": []}


def canonical(definition: Any) -> str:
    """A definition (a document, or JSON text) in one comparable form."""
    if isinstance(definition, str):
        try:
            definition = json.loads(definition)
        except json.JSONDecodeError:
            return definition
    return json.dumps(definition, sort_keys=True)


class SegmentBuilderScreen(SectionScreen[str | None]):
    """Returns the saved segment's name, or None when left without saving."""

    MODE = "segments"
    MAIN = "#segment-tree"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Back", id="segment-builder.close",
                tooltip="From the name or JSON: to the tree; else back to the list (asks first when there are "
                "unsaved changes)"),
        Binding("ctrl+s", "save", "Save", id="segment-builder.save", tooltip="Check and save the segment"),
        Binding("a", "add", "Add", id="segment-builder.add",
                tooltip="Add a condition to the highlighted group (or to the group of the highlighted condition)"),
        Binding("g", "add_group", "Group", id="segment-builder.group",
                tooltip="Add a nested group (ANY of its conditions) to the highlighted group"),
        Binding("f", "add_filter", "Filter", id="segment-builder.filter", show=False,
                tooltip="Add a where-filter on the highlighted event condition's properties"),
        Binding("e", "edit", "Edit", id="segment-builder.edit", show=False,
                tooltip="Edit the highlighted condition (or enter)"),
        Binding("d,delete", "delete", "Del", id="segment-builder.delete",
                tooltip="Delete the highlighted condition or group"),
        Binding("m", "toggle_match", "And/Or", id="segment-builder.match",
                tooltip="Switch the highlighted group between ALL (and) and ANY (or)"),
        Binding("ctrl+t", "toggle_json", "JSON", id="segment-builder.json",
                tooltip="Switch between the tree and the raw JSON definition"),
    ]
    TREE_ACTIONS = frozenset({"add", "add_group", "add_filter", "edit", "delete", "toggle_match"})

    def __init__(self, segment: SegmentView | None = None) -> None:
        super().__init__()
        self.segment = segment
        self.document: dict[str, Any] = copy.deepcopy(segment.definition if segment else EMPTY_DEFINITION)
        self.json_mode = False
        self.catalog: SegmentCatalog | None = None
        self._catalog_ready = asyncio.Event()
        self.estimate: ReachEstimate | None = None
        self.problems: list[tuple[str, str]] = []
        self.estimating = False
        self._saved = (segment.name if segment else "", canonical(self.document))
        self._descriptions: dict[str, Text] = {}  # node path → its label without problems

    # --- layout ------------------------------------------------------------------------------

    def compose_body(self) -> ComposeResult:
        with Vertical(id="builder-body"):
            with Horizontal(id="builder-header"):
                yield Label("Name", id="builder-name-label")
                yield Input(self.segment.name if self.segment else "", placeholder="e.g. high-value India",
                            compact=True, id="input-segment-name")
                yield Static("", id="builder-mode", markup=False)
            yield FieldError(id="builder-name-error")
            with Horizontal(id="builder-main"):
                with Vertical(id="builder-definition", classes="panel") as panel:
                    panel.border_title = "Definition"
                    tree: Tree[str] = FittingTree("", data="", id="segment-tree")
                    tree.auto_expand = False
                    tree.guide_depth = 3
                    yield tree
                    yield Static("", id="segment-node")
                    yield TextArea("", id="segment-json", soft_wrap=True, show_line_numbers=True)
                    yield Static("", id="segment-problems")
                with VerticalScroll(id="builder-reach", classes="panel") as reach:
                    reach.border_title = "Reach"
                    yield Static("estimating…", id="reach-text")

    def on_mount(self) -> None:
        self.query_one("#segment-json").display = False
        self._show_mode()
        self.load_catalog()
        self._rebuild_tree("")
        if self.segment is None:
            self.query_one("#input-segment-name").focus()
        else:
            self.query_one("#segment-tree").focus()
        self.schedule_estimate()

    @property
    def tree(self) -> Tree[str]:
        return self.query_one("#segment-tree", Tree)

    @property
    def json_area(self) -> TextArea:
        return self.query_one("#segment-json", TextArea)

    @property
    def name_value(self) -> str:
        return self.query_one("#input-segment-name", Input).value

    def _show_mode(self) -> None:
        self.query_one("#builder-mode", Static).update(
            "raw JSON · ctrl+t: tree" if self.json_mode else "tree · ctrl+t: JSON")
        self.query_one("#builder-definition").border_title = "Definition (JSON)" if self.json_mode else "Definition"

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in self.TREE_ACTIONS and self.json_mode:
            return None  # the tree's keys are hidden while the JSON is edited
        return True

    # --- the definition ----------------------------------------------------------------------

    def definition(self) -> dict[str, Any] | str:
        """What the operator has built: the tree's document, or the JSON text as typed."""
        return self.json_area.text if self.json_mode else copy.deepcopy(self.document)

    @property
    def dirty(self) -> bool:
        return (self.name_value.strip(), canonical(self.definition())) != (self._saved[0], self._saved[1])

    def _changed(self, select: str | None = None) -> None:
        self._rebuild_tree(select)
        self.schedule_estimate()

    # --- the tree ----------------------------------------------------------------------------

    def _node_paths(self) -> list[str]:
        paths: list[str] = []

        def walk(node: Any, path: str) -> None:
            paths.append(path)
            for child_path, child in children(node, path):
                walk(child, child_path)

        walk(self.document, "")
        return paths

    def _label(self, node: Any, path: str, problems: dict[str, list[str]], warnings: dict[str, list[str]]) -> Text:
        kind = kind_of(node, path) if path else GROUP
        text = Text(("where " if kind == FILTER else "") + describe(node, path),
                    style="bold" if kind == GROUP else "")
        self._descriptions[path] = text.copy()
        for problem in problems.get(path, []):
            text.append(f"  ✖ {problem}", style="red")
        for warning in warnings.get(path, []):
            text.append(f"  ⚠ {warning}", style="yellow")
        return text

    def _rebuild_tree(self, select: str | None = None) -> None:
        tree = self.tree
        if select is None:
            select = tree.cursor_node.data if tree.cursor_node is not None else ""
        paths = self._node_paths()
        problems: dict[str, list[str]] = {}
        for path, reason in self.problems:
            owner, rest = owner_of(path, paths)
            problems.setdefault(owner, []).append(f"{field_words(rest)}: {reason}" if rest else reason)
        warnings: dict[str, list[str]] = {}
        for warning in self.estimate.warnings if self.estimate else ():
            path, _, reason = warning.partition(": ")
            owner, _ = owner_of(path, paths)
            warnings.setdefault(owner, []).append(reason)
        found: TreeNode[str] | None = None

        def add(parent: TreeNode[str], node: Any, path: str) -> None:
            nonlocal found
            items = list(children(node, path))
            label = self._label(node, path, problems, warnings)
            child = parent.add(label, data=path, expand=True) if items else parent.add_leaf(label, data=path)
            if path == select:
                found = child
            for item_path, item in items:
                add(child, item, item_path)

        self._descriptions.clear()
        with self.app.batch_update():
            tree.clear()
            tree.root.set_label(self._label(self.document, "", problems, warnings))
            tree.root.data = ""
            for path, item in children(self.document, ""):
                add(tree.root, item, path)
            tree.root.expand()
            self.call_after_refresh(self._highlight, found or tree.root)
        self._show_problem_list(problems)

    def _show_problem_list(self, problems: dict[str, list[str]] | None = None) -> None:
        """Under the JSON, every problem by path; the tree shows each beside its node instead."""
        lines = Text()
        for path, reason in self.problems if self.json_mode else ():
            if lines:
                lines.append("\n")
            lines.append("✖ ", style="red")
            lines.append(f"{path}: ", style="bold")
            lines.append(reason)
        if not lines and not self.json_mode and not self.document.get("conditions"):
            lines = Text("Everyone qualifies. Press a to add a condition, g a group; ctrl+t edits the JSON.",
                         style="dim")
        widget = self.query_one("#segment-problems", Static)
        widget.update(lines)
        widget.display = bool(lines)

    def _highlight(self, node: TreeNode[str]) -> None:
        self.tree.move_cursor(node)
        self._show_node_detail(node)

    @on(Tree.NodeHighlighted, "#segment-tree")
    def _show_node(self, event: Tree.NodeHighlighted[str]) -> None:
        self._show_node_detail(event.node)

    def _show_node_detail(self, node: TreeNode[str] | None = None) -> None:
        """The highlighted condition whole, wrapped at words; its problems too when the tree had to
        cut its line (otherwise they are read in the tree, and said once)."""
        node = node or self.tree.cursor_node
        if node is None:
            return
        tree = self.tree
        cut = not isinstance(tree, FittingTree) or tree.is_cut(node)
        shown = node.label if cut else self._descriptions.get(node.data or "", node.label)
        self.query_one("#segment-node", Static).update(shown)

    def on_resize(self) -> None:
        self.call_after_refresh(self._show_node_detail)

    @property
    def cursor_path(self) -> str:
        node = self.tree.cursor_node
        return node.data if node is not None and node.data is not None else ""

    def _group_for(self, path: str) -> str:
        """The group a new item goes into: the highlighted group, or the group holding the
        highlighted condition."""
        while path:
            if kind_of(node_at(self.document, path), path) == GROUP:
                return path
            path = split_path(path)[0]
        return ""

    def _insert(self, parent: str, key: str, item: dict[str, Any]) -> str:
        owner = node_at(self.document, parent) if parent else self.document
        items = owner.setdefault(key, [])
        items.append(item)
        return f"{parent}.{key}[{len(items) - 1}]" if parent else f"{key}[{len(items) - 1}]"

    # --- editing -----------------------------------------------------------------------------

    @work(exclusive=True, group="segment-builder-load", exit_on_error=False)
    async def load_catalog(self) -> None:
        runtime = await self.runtime()
        async with runtime.factory() as session:
            self.catalog = await segment_catalog(session)
        self._catalog_ready.set()

    async def _edit(self, condition: dict[str, Any] | None = None, *, event: str | None = None,
                    kind: str | None = None) -> dict[str, Any] | None:
        await self._catalog_ready.wait()
        assert self.catalog is not None
        return await self.app.push_screen_wait(ConditionEditorDialog(self.catalog, condition=condition, event=event,
                                                                     kind=kind))

    @work(exclusive=True, group="segment-builder-edit", exit_on_error=False)
    async def action_add(self) -> None:
        condition = await self._edit()
        if condition is not None:
            self._changed(self._insert(self._group_for(self.cursor_path), "conditions", condition))

    @work(exclusive=True, group="segment-builder-edit", exit_on_error=False)
    async def action_add_filter(self) -> None:
        path = self.cursor_path
        kind = kind_of(node_at(self.document, path), path) if path else GROUP
        if kind not in (EVENT, FILTER):
            self.notify("Highlight an event condition (did / did not do …) to filter on its event's properties.",
                        severity="warning")
            return
        event_path = path if kind == EVENT else split_path(path)[0]
        condition = await self._edit(event=node_at(self.document, event_path).get("event", ""))
        if condition is not None:
            self._changed(self._insert(event_path, "where", condition))

    @work(exclusive=True, group="segment-builder-edit", exit_on_error=False)
    async def action_add_group(self) -> None:
        condition = await self._edit()
        if condition is None:
            return
        group_path = self._insert(self._group_for(self.cursor_path), "conditions",
                                  {"match": "any", "conditions": [condition]})
        self._changed(f"{group_path}.conditions[0]")
        self.notify("Added a group matching ANY of its conditions: press a on it to add more, m to switch to ALL.",
                    title="Group added")

    @on(Tree.NodeSelected, "#segment-tree")
    def _node_selected(self) -> None:
        self.action_edit()

    @work(exclusive=True, group="segment-builder-edit", exit_on_error=False)
    async def action_edit(self) -> None:
        path = self.cursor_path
        node = node_at(self.document, path) if path else self.document
        kind = kind_of(node, path) if path else GROUP
        if kind == GROUP:
            self.action_toggle_match()
            return
        if kind is None:
            self.notify("The builder cannot show this condition; edit it as JSON (ctrl+t).", severity="warning")
            return
        event = node_at(self.document, split_path(path)[0]).get("event") if kind == FILTER else None
        condition = await self._edit(dict(node), event=event)
        if condition is None:
            return
        parent, key, index = split_path(path)
        owner = node_at(self.document, parent) if parent else self.document
        owner[key][index] = condition
        self._changed(path)

    def action_delete(self) -> None:
        path = self.cursor_path
        if not path:
            self.notify("The top group stays; delete its conditions instead.", severity="warning")
            return
        parent, key, index = split_path(path)
        owner = node_at(self.document, parent) if parent else self.document
        del owner[key][index]
        if not owner[key] and key == "where":
            del owner[key]
        remaining = len(owner.get(key, []))
        self._changed(f"{parent + '.' if parent else ''}{key}[{min(index, remaining - 1)}]" if remaining else parent)

    def action_toggle_match(self) -> None:
        path = self._group_for(self.cursor_path)
        group = node_at(self.document, path) if path else self.document
        group["match"] = "any" if group.get("match", "all") == "all" else "all"
        self._changed(self.cursor_path)

    # --- raw JSON ----------------------------------------------------------------------------

    def action_toggle_json(self) -> None:
        area, tree = self.json_area, self.tree
        if not self.json_mode:
            with self.prevent(TextArea.Changed):
                area.text = json.dumps(self.document, indent=2, ensure_ascii=False)
            self.json_mode = True
            tree.display = False
            self.query_one("#segment-node").display = False
            area.display = True
            area.focus()
        else:
            try:
                document = json.loads(area.text)
            except json.JSONDecodeError as exc:
                self.notify(f"definition: is not valid JSON: {exc.msg} at line {exc.lineno}; fix it to see the tree",
                            title="Still in JSON mode", severity="error", timeout=8)
                return
            if not isinstance(document, dict):
                self.notify('definition: must be a JSON object such as {"match": "all", "conditions": [...]}',
                            title="Still in JSON mode", severity="error", timeout=8)
                return
            self.document = document
            self.json_mode = False
            area.display = False
            tree.display = True
            self.query_one("#segment-node").display = True
            self._rebuild_tree("")
            tree.focus()
        self._show_mode()
        self._show_problem_list()
        self.refresh_bindings()
        self.schedule_estimate()

    @on(Input.Changed, "#input-segment-name")
    def _name_changed(self) -> None:
        self.query_one("#builder-name-error", FieldError).show(None)  # a refused name goes once changed

    @on(TextArea.Changed, "#segment-json")
    def _json_changed(self) -> None:
        if self.json_mode:
            self.schedule_estimate()

    # --- reach -------------------------------------------------------------------------------

    def schedule_estimate(self) -> None:
        self.estimating = True
        self.query_one("#reach-text", Static).update(Text("estimating…", style="italic dim"))
        self.run_estimate(self.definition())

    @work(exclusive=True, group="segment-builder-reach", exit_on_error=False)
    async def run_estimate(self, definition: dict[str, Any] | str) -> None:
        await asyncio.sleep(ESTIMATE_DELAY_SECONDS)  # a newer change cancels this worker first
        runtime = await self.runtime()
        try:
            async with runtime.factory() as session:
                estimate = await estimate_reach(session, definition)
        except ValidationError as exc:
            self.estimate = None
            self._show_problems(exc.problems)
            self.query_one("#reach-text", Static).update(reach_problems_text(exc.problems))
        else:
            self.estimate = estimate
            self._show_problems([])
            self.query_one("#reach-text", Static).update(reach_panel_text(estimate))
        finally:
            self.estimating = False

    def _show_problems(self, problems: list[tuple[str, str]]) -> None:
        self.problems = [(path, reason) for path, reason in problems if path != "name"]
        if self.json_mode:
            self._show_problem_list()
        else:
            self._rebuild_tree()

    # --- save and leave ----------------------------------------------------------------------

    @work(exclusive=True, group="segment-builder-save", exit_on_error=False)
    async def action_save(self) -> None:
        name, definition = self.name_value, self.definition()
        runtime = await self.runtime()
        error = self.query_one("#builder-name-error", FieldError)
        try:
            async with runtime.factory() as session, session.begin():
                if self.segment is None:
                    view = await create_segment(session, name=name, definition=definition, actor=ACTOR)
                else:
                    view = await update_segment(session, self.segment.name, new_name=name, definition=definition,
                                                actor=ACTOR)
        except ValidationError as exc:
            names = [reason for field, reason in exc.problems if field == "name"]
            error.show("; ".join(names) or None, label="Name")
            others = [(field, reason) for field, reason in exc.problems if field != "name"]
            if others:
                self._show_problems(others)
            fields = ", ".join(dict.fromkeys(f"{field}" for field, _ in exc.problems))
            self.notify(f"Not saved: correct {fields}.", title="Segment not saved", severity="error", timeout=8)
            if names:
                self.query_one("#input-segment-name").focus()
            return
        except ServiceError as exc:
            self.notify(str(exc), title="Segment not saved", severity="error", timeout=8)
            return
        error.show(None)
        self._saved = (view.name, canonical(view.definition))
        self.notify(f"Saved {view.name}.", title="Segment saved")
        self.dismiss(view.name)

    @work(exclusive=True, group="segment-builder-close", exit_on_error=False)
    async def action_close(self) -> None:
        if self.leave_field():  # escape from the name or the JSON gives the tree's keys back first
            return
        if self.dirty:
            discard = await self.app.push_screen_wait(ConfirmDialog(
                "Unsaved changes", f"{DISCARD_QUESTION} (ctrl+s saves them.)",
                confirm_label="Discard", destructive=True,
            ))
            if not discard:
                return
        self.dismiss(None)
