"""Settings → Compliance: senders, DLT templates, 10DLC campaigns, prices and the enforcement setting,
driven with keys as an operator would (pilot), and how the panel looks at 80×24 and 120×36."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Select, TabbedContent

from smsconsole.config import Config
from smsconsole.runtime import Runtime
from smsconsole.screens.dialogs.confirm import ConfirmDialog
from smsconsole.screens.dialogs.csv_import import CsvImportDialog
from smsconsole.screens.dialogs.price_form import FetchPricesDialog
from smsconsole.screens.dialogs.sender_form import SenderFormDialog
from smsconsole.screens.settings_compliance import CompliancePanel
from smsconsole.screens.widgets.fields import FormField
from smsconsole.services import providers as provider_service
from smsconsole.services.compliance import prices, senders, templates
from smsconsole.services.settings import get_settings
from tests.conftest import copy_sqlite_template
from tests.fakes.server import serve
from tests.fakes.twilio import ACCOUNT_SID, AUTH_TOKEN
from tests.fakes.twilio_pricing import FakeTwilioPricing
from tests.tui.seed import seed_providers
from tests.tui.support import (
    make_app,
    notifications,
    paste,
    settle,
    type_text,
    wait_for,
)

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 36), id="120x36")]


async def seed_registry(runtime: Runtime) -> None:
    """A 10DLC campaign and its sender, a verified toll-free number, an India DLT header with two
    templates, prices (one fetched); twilio-us's configured sender stays unregistered (dim)."""
    async with runtime.factory() as session, session.begin():
        await templates.add_tendlc_campaign(session, campaign_id="CX4B2ZQ", brand_id="BZ3F9QX", use_case="MARKETING",
                                            samples=["Acme: 20% off this weekend. Reply STOP to opt out."],
                                            actor="seed")
        await senders.add_sender(session, provider="twilio-us", value="+14155552672", countries="US",
                                 brand_id="BZ3F9QX", tendlc_campaign="CX4B2ZQ", actor="seed")
        await senders.add_sender(session, provider="twilio-us", value="+18885550199", countries="US, CA",
                                 tollfree_status="verified", actor="seed")
        await senders.add_sender(session, provider="sandbox", value="ACMEIN", countries="IN",
                                 dlt_entity_id="1101234567890123456", actor="seed")
        await templates.add_dlt_template(session, template_id="1107161234567890123", header="ACMEIN",
                                         category="transactional", name="otp",
                                         content="Your Acme code is {#var#}. It expires in {#var#} minutes.",
                                         actor="seed")
        await templates.add_dlt_template(session, template_id="1107161234567890124", header="ACMEIN",
                                         category="promotional",
                                         content="Dear {#var#}, our sale ends {#var#}. T&C apply - Acme",
                                         actor="seed")
        await prices.set_price(session, provider="twilio-us", country="US", amount="0.0079", actor="seed")
        await prices.set_price(session, provider="twilio-us", country="CA", amount="0.0083", sender_type="toll_free",
                               actor="seed")
        await prices.set_price(session, provider="sandbox", country="IN", amount="0.25", currency="INR",
                               unit="message", actor="seed")


def panel(pilot: Pilot[Any]) -> CompliancePanel:
    return pilot.app.screen.query_one(CompliancePanel)


def table(pilot: Pilot[Any], tab: str) -> DataTable[Any]:
    return pilot.app.screen.query_one(f"#compliance-{tab}-table", DataTable)


async def open_tab(pilot: Pilot[Any], tab: str, *, rows: int = 0) -> DataTable[Any]:
    """Settings, the Compliance panel's `tab` shown with its table focused and `rows` rows loaded."""
    if pilot.app.current_mode != "settings":
        await pilot.press("4")
    await wait_for(pilot, lambda: pilot.app.screen.query(CompliancePanel), what="the compliance panel")
    await wait_for(pilot, lambda: table(pilot, tab).row_count >= rows, what=f"{rows} rows in {tab}")
    pilot.app.screen.query_one("#compliance-tabs", TabbedContent).active = f"compliance-tab-{tab}"
    await pilot.pause()
    found = table(pilot, tab)
    found.focus()
    panel(pilot).scroll_visible(animate=False, top=True)
    await pilot.pause()
    return found


def focused(pilot: Pilot[Any]) -> str | None:
    return pilot.app.focused.id if pilot.app.focused is not None else None


def field_error(pilot: Pilot[Any], name: str) -> str:
    field = next(f for f in pilot.app.screen.query(FormField) if f.field_name == name)
    return field.error.message or ""


async def test_add_sender_bad_value_is_named_then_good_one_appears(runtime: Runtime) -> None:
    await seed_providers(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        senders_table = await open_tab(pilot, "senders", rows=3)
        assert all(view.implicit for view in panel(pilot)._rows["senders"].values())  # configured, not registered
        await pilot.press("a")
        await wait_for(pilot, lambda: focused(pilot) == "input-sender-provider", what="the sender form, at its top")
        app.screen.query_one("#input-sender-provider", Select).value = "twilio-us"
        app.screen.query_one("#input-sender-value").focus()
        await type_text(pilot, "+1415")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: field_error(pilot, "value"), what="the value's problem")
        assert field_error(pilot, "value").startswith("Sender: a long-code sender is a number in international form")
        assert isinstance(app.screen, SenderFormDialog)  # still open, nothing lost
        await type_text(pilot, "5552672")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, SenderFormDialog), what="the form to close")
        await wait_for(pilot, lambda: senders_table.row_count == 4, what="the new sender")
        cells = [str(c) for c in senders_table.get_row(next(k for k in panel(pilot)._rows["senders"]
                                                             if k.startswith("s")))]
        assert cells[:4] == ["+14155552672", "twilio-us", "long code", "any"]
        assert any("saved" in n for n in notifications(app))


async def test_remove_sender_asks_first(runtime: Runtime) -> None:
    await seed_providers(runtime)
    await seed_registry(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        senders_table = await open_tab(pilot, "senders", rows=6)
        key = next(k for k, v in panel(pilot)._rows["senders"].items() if v.value == "ACMEIN")
        senders_table.move_cursor(row=senders_table.get_row_index(key))
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the question")
        await pilot.press("n")  # no: nothing removed
        await pilot.pause(0.2)
        assert senders_table.row_count == 6
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the question")
        await pilot.press("y")
        await wait_for(pilot, lambda: senders_table.row_count == 5, what="the sender gone")
        async with runtime.factory() as session:
            assert "ACMEIN" not in {v.value for v in await senders.list_senders(session)}
        # the dim one (a provider's configured sender) is not removed: the panel says where it lives
        dim = next(k for k, v in panel(pilot)._rows["senders"].items() if v.implicit)
        senders_table.move_cursor(row=senders_table.get_row_index(dim))
        await pilot.press("d")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, ConfirmDialog)
        assert any("configured sender" in n for n in notifications(app))


async def test_import_dlt_csv_with_a_bad_row_names_its_line(runtime: Runtime, tmp_path: Path) -> None:
    await seed_providers(runtime)
    csv_file = tmp_path / "dlt.csv"
    csv_file.write_text("Template ID,Header,Template Type,Template Content\n"
                        "1107161234567890123,ACMEIN,Transactional,Your code is {#var#}\n"
                        "1107161234567890125,ACME,Promotional,Sale ends {#var#}\n"
                        "1107161234567890126,ACMEIN,Service Implicit,Your order {#var#} has shipped\n",
                        encoding="utf-8")
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        dlt = await open_tab(pilot, "dlt")
        await pilot.press("i")
        await wait_for(pilot, lambda: isinstance(app.screen, CsvImportDialog), what="the import dialog")
        paste(pilot, str(tmp_path / "missing.csv"))
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: field_error(pilot, "file"), what="the file's problem")
        assert "no such file" in field_error(pilot, "file")
        app.screen.query_one("#input-csv-path").value = str(csv_file)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: dlt.row_count == 2, what="the good rows")
        message = next(n for n in notifications(app) if "added" in n)
        assert message.startswith("2 added, 0 updated, 1 row refused.")
        assert "line 3: header: a DLT header is 6 letters or digits" in message


async def test_import_is_offered_on_templates_and_prices_only(runtime: Runtime) -> None:
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_tab(pilot, "senders")
        await pilot.press("i")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, CsvImportDialog)
        await open_tab(pilot, "prices")
        await pilot.press("i")
        await wait_for(pilot, lambda: isinstance(app.screen, CsvImportDialog), what="the import dialog")


async def test_fetch_prices_from_twilio_names_the_country_not_priced(runtime: Runtime) -> None:
    fake = FakeTwilioPricing()
    with serve(fake.app) as server:
        async with runtime.factory() as session, session.begin():
            await provider_service.create_provider(session, runtime.box, kind="twilio", name="tw", base_url=server.url,
                                                   values={"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN,
                                                           "sender": "+14155550100"}, actor="test")
        app = make_app(runtime.config, runtime)
        async with app.run_test(size=(80, 24)) as pilot:
            price_table = await open_tab(pilot, "prices")
            await pilot.press("$")
            await wait_for(pilot, lambda: focused(pilot) == "input-fetch-countries", what="the fetch dialog")
            assert isinstance(app.screen, FetchPricesDialog)
            assert app.screen.query_one("#input-fetch-provider", Select).value == "tw"  # the Twilio one
            await type_text(pilot, "US ZZ")
            await pilot.press("ctrl+s")
            await wait_for(pilot, lambda: field_error(pilot, "countries"), what="the countries' problem")
            assert field_error(pilot, "countries") == "Countries: ZZ: not an ISO 3166 country code (e.g. US, IN, GB)"
            app.screen.query_one("#input-fetch-countries").value = "US, FR"
            await pilot.press("ctrl+s")
            await wait_for(pilot, lambda: price_table.row_count == 3, what="the fetched prices")
            message = next(n for n in notifications(app) if "not priced" in n)
            assert message == "3 prices for 1 country from tw; 1 not priced.\nFR: Twilio has no messaging prices for FR"
            assert {str(price_table.get_row(key)[4]) for key in panel(pilot)._rows["prices"]} == {"api"}
        fake.close()


async def test_enforcement_toggle_persists(runtime: Runtime) -> None:
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_tab(pilot, "senders")
        choice = app.screen.query_one("#compliance-enforcement", Select)
        await wait_for(pilot, lambda: panel(pilot)._enforcement == "block", what="the setting")
        assert choice.value == "block"
        assert not app.screen.query("#setting-compliance-enforcement")  # one place to change it
        choice.value = "warn"
        await wait_for(pilot, lambda: panel(pilot)._enforcement == "warn", what="the save")
        async with runtime.factory() as session:
            assert (await get_settings(session))["compliance_enforcement"] == "warn"
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_tab(pilot, "senders")
        await wait_for(pilot, lambda: panel(pilot)._enforcement is not None, what="the setting")
        assert app.screen.query_one("#compliance-enforcement", Select).value == "warn"


# --- snapshots ---------------------------------------------------------------------------------


@pytest.fixture
def compliance_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.chdir(tmp_path)
    config = Config(config_dir=Path("config"), data_dir=Path("data"))

    async def seed() -> None:
        await copy_sqlite_template(Path("data/smsconsole.db"))
        rt = await Runtime.open(config)
        try:
            await seed_providers(rt)
            await seed_registry(rt)
        finally:
            await rt.close()

    asyncio.run(seed())
    return config


def shown(tab: str, rows: int) -> Any:
    async def run_before(pilot: Pilot[Any]) -> None:
        await open_tab(pilot, tab, rows=rows)
        await settle(pilot)
        panel(pilot).scroll_visible(animate=False, top=True)
        await settle(pilot)

    return run_before


@pytest.mark.parametrize("size", SIZES)
def test_senders_snapshot(snap_compare: Any, compliance_config: Config, size: tuple[int, int]) -> None:
    """Senders with their registrations; twilio-us's configured sender dim, not registered."""
    assert snap_compare(make_app(compliance_config), terminal_size=size, run_before=shown("senders", 6))


def test_prices_snapshot(snap_compare: Any, compliance_config: Config) -> None:
    """Prices per provider and country, per segment or message, with their source."""
    assert snap_compare(make_app(compliance_config), terminal_size=(80, 24), run_before=shown("prices", 3))
