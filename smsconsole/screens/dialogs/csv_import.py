"""Import a CSV file into a compliance registry (DLT templates, prices): one field, the file's path.
A file that cannot be read is named under the field; the rows are reported by the caller."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType

from smsconsole.screens.dialogs.one_field import OneFieldDialog


class CsvImportDialog(OneFieldDialog):
    PREFIX = "csv-import"
    FIELD = "file"
    AUTO_FOCUS = "#input-csv-path"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="csv-import.cancel",
                tooltip="Close without importing (asks first when a path was typed)"),
        Binding("ctrl+s", "save", "Import", id="csv-import.import", tooltip="Read the file and import its rows"),
    ]
