"""The What step's Compliance and budget at 80×24: the content category and the run-start choice are
kept in the draft, a bad budget is named under its field, a good one is kept."""

from __future__ import annotations

from textual.widgets import Input, Select, Static

from smsconsole.runtime import Runtime
from tests.tui.seed import seed_providers
from tests.tui.support import make_app, type_text, wait_for
from tests.tui.test_campaigns_wizard import (
    SIZE,
    SendTestStep,
    WhatStep,
    WhenStep,
    WhoStep,
    campaigns,
    fill_what,
    open_wizard,
    step,
)
from tests.tui.test_live_campaigns_wizard import field_error


async def test_category_on_block_and_budget_are_kept_and_a_bad_budget_is_named(runtime: Runtime) -> None:
    await seed_providers(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        await open_wizard(pilot, app)
        await type_text(pilot, "Orders")
        await step(pilot, app, WhenStep)
        await step(pilot, app, WhoStep)
        what = await fill_what(pilot, app, "Your order has shipped")
        words = what.query_one("#policy-words", Static)
        assert "Promotional: quiet hours" in str(words.render()) and "No budget." in str(words.render())
        what.query_one("#input-compliance-category", Select).value = "transactional"
        what.query_one("#input-compliance-on-block", Select).value = "suppress"
        what.query_one("#input-budget-amount", Input).value = "lots"
        await pilot.pause()
        assert str(words.render()).startswith("Transactional: rules for marketing do not apply")
        assert "Budget per run: must be a number." in str(words.render())  # said as it is typed
        await pilot.press("ctrl+f")  # next: refused, the field named where it is
        await wait_for(pilot, lambda: field_error(what, "budget.amount") is not None, what="the budget's error")
        assert "must be a number" in (field_error(what, "budget.amount") or "")
        what.query_one("#input-budget-amount", Input).value = "25"
        what.query_one("#input-budget-currency", Input).value = "eur"
        await pilot.pause()
        assert "A run may cost at most 25.00 EUR." in str(words.render())
        assert isinstance(app.screen, WhatStep)
        await step(pilot, app, SendTestStep)  # now it goes on
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "Draft saved" in [n.title for n in app._notifications], what="the save")
        [view] = await campaigns(runtime)
        assert view.document["compliance"] == {"category": "transactional", "on_block": "suppress"}
        assert view.document["budget"] == {"amount": "25", "currency": "EUR"}
