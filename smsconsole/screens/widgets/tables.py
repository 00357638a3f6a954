"""Keep a DataTable in step with fresh rows by row key. Changed cells are updated in place (no
flicker, the cursor stays); only when rows come, go or move is the table refilled, with the cursor
put back on the row it was on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from textual.widgets import DataTable


def _measure_then_redraw() -> None:
    """Textual 8's DataTable caches each rendered line under its `_update_count`, which new column
    widths (measured when the table is next idle, after rows were added) do not change: a header
    drawn between the rows' arrival and their measuring kept its header-wide columns above wider
    rows until some cell changed. After measuring, the count moves on, so every line is drawn
    again at the new widths."""
    measure = DataTable._update_dimensions
    if getattr(measure, "_smsconsole", False):
        return

    def update_dimensions(self: DataTable[Any], new_rows: Any) -> None:
        measure(self, new_rows)
        self._update_count += 1
        self.refresh()

    update_dimensions._smsconsole = True  # type: ignore[attr-defined]
    DataTable._update_dimensions = update_dimensions  # type: ignore[method-assign]


_measure_then_redraw()


def sync_rows(table: DataTable[Any], rows: Mapping[str, Sequence[Any]]) -> bool:
    """Make `table` show `rows` (key → cells, in display order). True when rows came or went."""
    current_keys = [str(row.key.value) for row in table.ordered_rows]
    if current_keys == list(rows):
        column_keys = list(table.columns)
        for key, cells in rows.items():
            for column_key, old, new in zip(column_keys, table.get_row(key), cells, strict=False):
                if old != new:
                    table.update_cell(key, column_key, new, update_width=True)
        return False
    cursor_key = cursor_row_key(table)
    scroll_y = table.scroll_y
    table.clear()
    for key, cells in rows.items():
        table.add_row(*cells, key=key)
    if cursor_key is not None and cursor_key in rows:
        table.move_cursor(row=table.get_row_index(cursor_key), animate=False, scroll=False)
    table.scroll_to(y=scroll_y, animate=False, immediate=True)
    return True


def cursor_row_key(table: DataTable[Any]) -> str | None:
    """The key of the row under the cursor, or None for an empty table."""
    if not table.row_count or not table.is_valid_row_index(table.cursor_row):
        return None
    return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
