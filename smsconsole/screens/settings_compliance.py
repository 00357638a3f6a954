"""Settings → Compliance: what the preflight checks a campaign against. One panel of the Settings
page: the enforcement setting (block, or warn only), then four tabs: the senders of each provider
with their registration (a provider's configured sender that is not registered shows dim), India
DLT templates, US 10DLC campaigns and prices per provider and country.

Keys while the focus is in the panel (lazygit's: they act on the tab shown): a add, e or enter
edit, d remove (asks first), i import a CSV (DLT templates, prices), $ fetch prices from a
provider's pricing API (prices). Every change goes through the compliance services, which name each
refused field; the forms show the reason under it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import (
    Button,
    DataTable,
    Label,
    Select,
    Static,
    TabbedContent,
    TabPane,
)

from smsconsole.messages import SettingsSaved
from smsconsole.screens.base import ACTOR, SectionScreen
from smsconsole.screens.compliance.calls import IMPORTERS, REMOVES, SAVES
from smsconsole.screens.compliance.rows import (
    IMPLICIT,
    IMPORTS,
    ROWS,
    SHOWN_PROBLEMS,
    TAB_TITLES,
    TABS,
    WHAT,
    clip,
    describe,
    detail_words,
    report_words,
    sender_key,
    split_countries,
)
from smsconsole.screens.dialogs.csv_import import CsvImportDialog
from smsconsole.screens.dialogs.dlt_template_form import DltTemplateFormDialog
from smsconsole.screens.dialogs.price_form import FetchPricesDialog, PriceFormDialog
from smsconsole.screens.dialogs.registry_form import Draft
from smsconsole.screens.dialogs.sender_form import SenderFormDialog
from smsconsole.screens.dialogs.tendlc_form import TenDlcFormDialog
from smsconsole.screens.widgets.tables import cursor_row_key, sync_rows
from smsconsole.services.compliance import prices, senders, templates
from smsconsole.services.compliance.prices import PriceView
from smsconsole.services.compliance.senders import SenderView
from smsconsole.services.compliance.templates import ImportReport
from smsconsole.services.errors import ValidationError
from smsconsole.services.providers import list_providers
from smsconsole.services.settings import get_settings, update_settings

if TYPE_CHECKING:
    from smsconsole.runtime import Runtime

ENFORCEMENT = "compliance_enforcement"
PANEL_SETTINGS = frozenset({ENFORCEMENT})  # shown here, not among the page's setting fields
ENFORCEMENT_CHOICES = [("block: a blocking finding stops the campaign", "block"),
                       ("warn only: findings are shown, nothing is blocked", "warn")]


IMPORT_WORDS = {
    "dlt": ("Import DLT templates", ("A CSV with a header row: template_id, header, category, content[, name]"
            "[, entity_id] (the DLT portal's export columns work too). A template id already here is updated; good "
            "rows are kept, each bad one is named.")),
    "prices": ("Import prices", ("A CSV with a header row: provider, country, price[, currency][, unit]"
               "[, sender_type] (currency USD, unit segment, any sender type unless given). Good rows are kept, "
               "each bad one is named.")),
}


class CompliancePanel(Vertical):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "add", "Add", id="compliance.add", tooltip="Add a sender, template, campaign or price (the tab shown)"),
        Binding("e", "edit", "Edit", id="compliance.edit",
                tooltip="Edit the highlighted row (enter does the same); a dim sender: register it"),
        Binding("d,delete", "delete", "Remove", id="compliance.remove", tooltip="Remove the highlighted row (asks first)"),
        Binding("i,ctrl+o", "import_file", "Import CSV", id="compliance.import",
                tooltip="Import DLT templates or prices from a CSV file; good rows are kept, bad ones named"),
        Binding("dollar_sign", "fetch_prices", "Fetch prices", id="compliance.fetch", key_display="$",
                tooltip="Fetch current prices from a provider's pricing API (Twilio)"),
    ]

    def __init__(self) -> None:
        super().__init__(id="settings-compliance", classes="panel")
        self.border_title = "Compliance: senders, registrations, prices (preflight)"
        self._rows: dict[str, dict[str, Any]] = {tab: {} for tab in TABS}
        self._providers: list[tuple[str, str]] = []  # (name, kind)
        self._enforcement: str | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="compliance-enforcement-row"):
            yield Label("Preflight:", id="compliance-enforcement-label")
            yield Select[str](ENFORCEMENT_CHOICES, value="block", allow_blank=False, compact=True,
                              id="compliance-enforcement", tooltip="What a blocking preflight finding does")
        with TabbedContent(id="compliance-tabs"):
            for tab in TABS:
                with TabPane(TAB_TITLES[tab], id=f"compliance-tab-{tab}"):
                    yield DataTable(id=f"compliance-{tab}-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="compliance-detail", markup=False)
        with Horizontal(classes="form-buttons"):
            yield Button("Add…", id="compliance-add", variant="primary", compact=True, tooltip="a")
            yield Button("Edit…", id="compliance-edit", compact=True, tooltip="e or enter")
            yield Button("Remove…", id="compliance-remove", variant="error", compact=True, tooltip="d; asks first")
            yield Button("Import CSV…", id="compliance-import", compact=True, tooltip="i")
            yield Button("Fetch prices…", id="compliance-fetch", compact=True, tooltip="$")

    def on_mount(self) -> None:
        for button in self.query(Button):
            button.can_focus = False
        columns = {
            "senders": ("Sender", "Provider", "Type", "To", "Registration"),
            "dlt": ("Template id", "Header", "Category", "Content"),
            "tendlc": ("Campaign", "Brand", "Use case", "Samples", "Status"),
            "prices": ("Provider", "Country", "Type", "Unit price", "Source", "Fetched"),
        }
        for tab, names in columns.items():
            table = self.table(tab)
            for name in names:
                table.add_column(name, key=name.lower())
        self._update_tools()

    # --- reading -----------------------------------------------------------------------------

    @property
    def section(self) -> SectionScreen[Any]:
        screen = self.screen
        assert isinstance(screen, SectionScreen)
        return screen

    async def runtime(self) -> Runtime:
        return await self.section.runtime()

    def table(self, tab: str) -> DataTable[Any]:
        return self.query_one(f"#compliance-{tab}-table", DataTable)

    @property
    def tab(self) -> str:
        return self.query_one(TabbedContent).active.removeprefix("compliance-tab-") or "senders"

    def highlighted(self, tab: str | None = None) -> Any:
        tab = tab or self.tab
        key = cursor_row_key(self.table(tab))
        return self._rows[tab].get(key) if key is not None else None

    @work(exclusive=True, group="compliance-load", exit_on_error=False)
    async def load(self) -> None:
        runtime = await self.runtime()
        async with runtime.factory() as session:
            views = {
                "senders": {sender_key(v): v for v in await senders.list_senders(session)},
                "dlt": {str(v.id): v for v in await templates.list_dlt_templates(session)},
                "tendlc": {str(v.id): v for v in await templates.list_tendlc_campaigns(session)},
                "prices": {str(v.id): v for v in await prices.list_prices(session)},
            }
            providers = [(p.name, p.kind) for p in await list_providers(session)]
            values = await get_settings(session)
        for tab, by_key in views.items():
            self._rows[tab] = by_key
            sync_rows(self.table(tab), {key: ROWS[tab](view) for key, view in by_key.items()})
        self._providers = providers
        self._enforcement = values.get(ENFORCEMENT) or "block"
        choice = self.query_one("#compliance-enforcement", Select)
        if choice.value != self._enforcement:
            with choice.prevent(Select.Changed):
                choice.value = self._enforcement
        self._update_tools()

    def reload(self) -> None:
        """Everything on the page again (the audit log shows the change too)."""
        load = getattr(self.section, "load_settings", None)
        load() if load is not None else self.load()

    # --- the tab's tools ---------------------------------------------------------------------

    @on(TabbedContent.TabActivated)
    @on(DataTable.RowHighlighted)
    def _update_tools(self) -> None:
        tab = self.tab
        view = self.highlighted(tab)
        self.query_one("#compliance-edit", Button).disabled = view is None
        self.query_one("#compliance-remove", Button).disabled = view is None or getattr(view, "implicit", False)
        self.query_one("#compliance-import", Button).display = tab in IMPORTS
        self.query_one("#compliance-fetch", Button).display = tab == "prices"
        count = len(self._rows[tab])
        what = WHAT[tab]
        words = f"{count} {what}{'s' if count != 1 else ''}" if count else f"no {what}s yet: a adds one"
        if tab == "senders":
            implicit = sum(getattr(v, "implicit", False) for v in self._rows[tab].values())
            words += f" ({implicit} {IMPLICIT})" if implicit else ""
        self.border_subtitle = words
        self.query_one("#compliance-detail", Static).update(clip(detail_words(tab, view), 220))
        if self.screen.is_current:
            self.screen.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # a, e and d stay this panel's while the focus is in it (never the page's keyword keys)
        if action == "import_file":
            return self.tab in IMPORTS
        if action == "fetch_prices":
            return self.tab == "prices"
        return True

    # --- enforcement -------------------------------------------------------------------------

    @on(Select.Changed, "#compliance-enforcement")
    def _enforcement_changed(self, event: Select.Changed) -> None:
        if self._enforcement is not None and event.value != self._enforcement:
            self.save_enforcement(str(event.value))

    @work(exclusive=True, group="compliance-enforcement", exit_on_error=False)
    async def save_enforcement(self, value: str) -> None:
        runtime = await self.runtime()
        try:
            async with runtime.factory() as session, session.begin():
                values = await update_settings(session, {ENFORCEMENT: value}, ACTOR)
        except ValidationError as exc:
            self.notify("; ".join(reason for _, reason in exc.problems), title="Not saved", severity="error")
            return
        self._enforcement = values.get(ENFORCEMENT) or "block"
        words = "block: campaigns with a blocking finding are not scheduled" if self._enforcement == "block" \
            else "warn only: findings are shown, nothing is blocked"
        self.notify(f"Preflight enforcement: {words}.", title="Compliance")
        self.post_message(SettingsSaved(values))
        self.reload()

    # --- add, edit -----------------------------------------------------------------------------

    @property
    def provider_names(self) -> list[str]:
        return [name for name, _ in self._providers]

    @on(Button.Pressed, "#compliance-add")
    def action_add(self) -> None:
        self._open_form(self.tab, None)

    @on(Button.Pressed, "#compliance-edit")
    def action_edit(self) -> None:
        view = self.highlighted()
        if view is None:
            self.notify(f"No {WHAT[self.tab]} highlighted: a adds one.", timeout=3)
            return
        self._open_form(self.tab, view)

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_edit()

    def _open_form(self, tab: str, view: Any) -> None:
        async def save(draft: Draft) -> Any:
            runtime = await self.runtime()
            async with runtime.factory() as session, session.begin():
                return await SAVES[tab](session, draft, view)

        dialog = {
            "senders": lambda: SenderFormDialog(self.provider_names, save, view, provider=self._default_provider()),
            "dlt": lambda: DltTemplateFormDialog(save, view),
            "tendlc": lambda: TenDlcFormDialog(save, view),
            "prices": lambda: PriceFormDialog(self.provider_names, save, view),
        }[tab]()
        self.app.push_screen(dialog, lambda saved: self._saved(tab, saved))

    def _default_provider(self) -> str | None:
        """A new sender's provider: the highlighted sender's, or the only one."""
        view = self.highlighted("senders")
        if view is not None:
            return str(view.provider)
        return self.provider_names[0] if len(self.provider_names) == 1 else None

    def _saved(self, tab: str, saved: Any) -> None:
        if saved is None:
            return
        self.notify(f"{WHAT[tab].capitalize()} {describe(tab, saved)} saved.", title="Compliance")
        self.reload()

    # --- remove --------------------------------------------------------------------------------

    @on(Button.Pressed, "#compliance-remove")
    def action_delete(self) -> None:
        view = self.highlighted()
        if view is None:
            self.notify(f"No {WHAT[self.tab]} highlighted.", timeout=3)
            return
        if isinstance(view, SenderView) and view.implicit:
            self.notify(f"{view.value} is {view.provider}'s configured sender, not a registration: change it in "
                        "Providers (2), or edit it here to register it.", title="Compliance", timeout=8)
            return
        self.remove(self.tab, view)

    @work(exclusive=True, group="compliance-remove", exit_on_error=False)
    async def remove(self, tab: str, view: Any) -> None:
        name = describe(tab, view)
        question = {
            "senders": f"Remove sender {name}? The preflight no longer counts it as registered.",
            "dlt": f"Remove DLT template {name}? Messages to India under header {getattr(view, 'header', '')} "
                   "must match one of its other templates.",
            "tendlc": f"Remove 10DLC campaign {name}? (Refused while a sender names it.)",
            "prices": f"Remove the price {name}? Cost estimates to that country then have no price.",
        }[tab]
        done = await self.section.confirm_and_apply(f"Remove {WHAT[tab]}", question, "Remove",
                                                    lambda session: REMOVES[tab](session, view), refused="Not removed")
        if done:
            self.notify(f"{WHAT[tab].capitalize()} {name} removed.", title="Compliance")
            self.reload()

    # --- import, fetch -------------------------------------------------------------------------

    @on(Button.Pressed, "#compliance-import")
    def action_import_file(self) -> None:
        tab = self.tab
        if tab not in IMPORTS:
            return
        title, help = IMPORT_WORDS[tab]

        async def submit(value: str) -> ImportReport:
            text = value.strip()
            if not text:
                raise ValidationError([("file", "is required: the path of a CSV file")])
            path = Path(text).expanduser()
            runtime = await self.runtime()
            async with runtime.factory() as session, session.begin():
                return await IMPORTERS[tab](session, path, actor=ACTOR)

        self.app.push_screen(CsvImportDialog(title, help, "CSV file", submit, confirm_label="Import"),
                             lambda report: self._imported(tab, report))

    def _imported(self, tab: str, report: ImportReport | None) -> None:
        if report is None:
            return
        self.notify(report_words(report), title=f"{TAB_TITLES[tab]} imported",
                    severity="warning" if report.problems else "information", timeout=12 if report.problems else 5)
        self.reload()

    @on(Button.Pressed, "#compliance-fetch")
    def action_fetch_prices(self) -> None:
        view = self.highlighted("prices")
        twilio = next((name for name, kind in self._providers if kind == "twilio"), None)
        provider = view.provider if isinstance(view, PriceView) else twilio
        countries = ", ".join(sorted({v.country for v in self._rows["prices"].values() if v.provider == provider}))

        async def save(draft: Draft) -> Any:
            if not draft.get("provider"):
                raise ValidationError([("provider", "is required")])
            runtime = await self.runtime()
            async with runtime.factory() as session, session.begin():
                return await prices.fetch_prices(session, draft["provider"], countries=split_countries(draft["countries"]),
                                                 box=runtime.box, actor=ACTOR)

        self.app.push_screen(FetchPricesDialog(self.provider_names, save, provider=provider, countries=countries),
                             self._fetched)

    def _fetched(self, report: prices.FetchReport | None) -> None:
        if report is None:
            return
        lines = [report.words() + "."]
        lines += [f"{country}: {reason}" for country, reason in report.problems[:SHOWN_PROBLEMS]]
        self.notify("\n".join(lines), title="Prices fetched", severity="warning" if report.problems else "information",
                    timeout=12 if report.problems else 6)
        self.reload()
