"""`event` in Liquid (services/campaigns/render.py): a live campaign's body reads the triggering
event's properties, name and time; a scheduled campaign's body may not name it; no event (or
one that is gone) renders empty, never fails."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from smsconsole.services.campaigns.content import render_message, run_content
from smsconsole.services.campaigns.render import (
    RenderProblem,
    compile_body,
    event_context,
    render_for,
    template_problems,
)

ORDER = {"name": "order", "at": datetime(2026, 12, 24, 9, 30, tzinfo=UTC),
         "properties": {"amount": 120, "name": "not the event's name", "items": ["tea", "cake"],
                        "shipped_on": "2026-12-26T00:00:00Z"}}
ANN = {"name": "Ann", "properties": {}}


@pytest.mark.parametrize(("body", "event", "problems"), [
    ("{{ event.amount }}", True, []),
    ("{{ event.amount }} {{ profile.name }}", False,
     [("line 1, column 4: event.<property> is only available in live campaigns "
       "(single action, inaction within time, on a date)")]),
    ("{{ order.amount }}", True, ["line 1, column 4: unknown variable 'order': use profile.<field> or event.<property>"]),
    ("{{ order.amount }}", False, ["line 1, column 4: unknown variable 'order': use profile.<field>"]),
    ("{% assign event = 1 %}{{ event }}", False, []),  # a name the body assigns itself
], ids=["live", "scheduled", "unknown-live", "unknown-scheduled", "assigned"])
def test_template_problems_know_event_only_in_live_campaigns(body: str, event: bool, problems: list[str]) -> None:
    assert template_problems(body, event=event) == problems


def test_compiled_once_per_text_and_kind() -> None:
    assert compile_body("{{ event.amount }}", True) is compile_body("{{ event.amount }}", True)
    with pytest.raises(RenderProblem, match="only available in live campaigns"):
        compile_body("{{ event.amount }}")


def test_event_context_fields_win_over_properties() -> None:
    context = event_context(ORDER)
    assert (context["name"], context["at"], context["amount"]) == ("order", "2026-12-24T09:30:00Z", 120)
    assert context["properties"]["name"] == "not the event's name"
    assert event_context(None) == {} and event_context({}) == {}


async def test_event_properties_name_and_time_in_the_body() -> None:
    body = ("{{ profile.name }}: {{ event.name }} of {{ event.amount }} on {{ event.at | date: '%d %b %H:%M' }}, "
            "{{ event.items | join: ' & ' }}, ships {{ event.shipped_on | date: '%a %d' }} "
            "({{ event.properties.name }})")
    text = await render_for(compile_body(body, True), ANN, event=ORDER)
    assert text == "Ann: order of 120 on 24 Dec 09:30, tea & cake, ships Sat 26 (not the event's name)"


async def test_no_event_renders_empty() -> None:
    body = "Hi {{ profile.name }}{% if event.amount %} ({{ event.amount }}){% endif %}{{ event.at | date: '%d' }}!"
    assert await render_for(compile_body(body, True), ANN, event=None) == "Hi Ann!"


async def test_a_live_runs_content_renders_the_event_in_body_and_generic_values() -> None:
    document = {"name": "Thanks", "type": "action", "who": {"trigger": {"event": "order"}},
                "what": {"body": "Thanks for {{ event.amount }}",
                         "generic": {"template_variables": ["{{ event.amount }}"],
                                     "body_values": {"Item": "{{ event.items | first }}"}}}}
    content = run_content(document, None)
    assert content.problem is None and content.live
    text, options = await render_message(content, ANN, event=ORDER)
    assert (text, options["template_variables"], options["Item"]) == ("Thanks for 120", "120", "tea")
    scheduled = run_content({**document, "type": "one_time"}, None)
    assert scheduled.problem is not None and "only available in live campaigns" in scheduled.problem
