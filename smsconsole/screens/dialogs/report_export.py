"""Ask where to write a campaign's report and write it: CSV or JSON by the file's extension
(services/campaigns/report_export.py). It stays open until the file is written; a bad path (no
such folder, a folder, another extension, not writable) is shown under the field with its reason."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import ClassVar

from textual.binding import Binding, BindingType

from smsconsole.screens.dialogs.one_field import OneFieldDialog

WriteReport = Callable[[str], Awaitable[Path]]
HELP = ("The report of every run, per variant and control, with the breakdowns and the series. "
        "A name ending in .csv writes one CSV table (a section column says what each row is); .json "
        "writes JSON. A file already there is replaced.")


class ExportReportDialog(OneFieldDialog):
    """Returns the file written, or None when cancelled."""

    PREFIX = "report-export"
    FIELD = "path"
    AUTO_FOCUS = "#input-report-path"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="report-export.cancel", tooltip="Close without writing"),
        Binding("ctrl+s", "save", "Write", id="report-export.save", tooltip="Write the report to this file"),
    ]

    def __init__(self, code: str, write: WriteReport, *, path: str = "") -> None:
        super().__init__(f"Export the report of {code}", f"{HELP} A relative path starts in {Path.cwd()}.",
                         "File (.csv or .json)", write, value=path, confirm_label="Write")
        self.code = code
