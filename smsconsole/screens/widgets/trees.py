"""A tree whose labels never run past its right edge, for narrow terminals."""

from __future__ import annotations

from typing import TypeVar

from rich.style import Style
from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

DataT = TypeVar("DataT")
PROBLEM_MARK = "✖"


class FittingTree(Tree[DataT]):
    """A label too long for the tree ends in an ellipsis instead of scrolling sideways (the screen
    shows the highlighted node whole elsewhere); a cut label that held a problem mark keeps one at
    its end, so a refused node is seen at any width."""

    DEFAULT_CSS = """
    FittingTree {
        overflow-x: hidden;
    }
    """

    def label_room(self, node: TreeNode[DataT]) -> int:
        """Cells left for the node's label after its guides; 0 before the tree has a size."""
        width = self.scrollable_content_region.width
        if width <= 0:
            return 0
        depth = 0
        parent = node.parent
        while parent is not None:
            depth += 1
            parent = parent.parent
        if not self.show_root:
            depth -= 1
        return max(1, width - max(depth, 0) * self.guide_depth)

    def full_label(self, node: TreeNode[DataT]) -> Text:
        return super().render_label(node, Style(), Style())

    def is_cut(self, node: TreeNode[DataT]) -> bool:
        room = self.label_room(node)
        return room > 0 and self.full_label(node).cell_len > room

    def render_label(self, node: TreeNode[DataT], base_style: Style, style: Style) -> Text:
        text = super().render_label(node, base_style, style)
        room = self.label_room(node)
        if room <= 0 or text.cell_len <= room:
            return text
        cut = text.copy()
        cut.truncate(room, overflow="ellipsis")
        if PROBLEM_MARK in text.plain and PROBLEM_MARK not in cut.plain and room >= 4:
            cut = text.copy()
            cut.truncate(room - 2, overflow="ellipsis")
            cut.append(f" {PROBLEM_MARK}", style="red")
        return cut
