"""Campaign bodies: problems named with line and column, the profile context, empty results
refused, emoji, and linked content (fetched once per URL, failures by policy)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from smsconsole.services.campaigns.render import (
    LinkedAbort,
    LinkedContent,
    RenderProblem,
    compile_body,
    profile_context,
    render_for,
    template_problems,
)

ANN = {"user_id": "u1", "phone": "+14155550100", "name": "Ann", "country": "GB", "timezone": "Europe/London",
       "properties": {"city": "Leeds", "name": "Annie", "tier": {"level": 2}}}


@pytest.mark.parametrize(("body", "problems"), [
    ('Hi {{ profile.name | default: "there" }}', []),
    ("{% assign n = profile.name %}{% for t in profile.properties.tags %}{{ t }}{{ forloop.index }}{% endfor %}{{ n }}",
     []),
    ("Hi {{ profile.name ", ["line 1, column 4: expected '}}', found end of file"]),
    ("one\ntwo {% if profile.name %} never closed",
     ["line 2, column 39: expected tag endif, found end of expression"]),
    ("Hi {% shout %}", ["line 1, column 7: unexpected tag 'shout'"]),
    ("Hi\n  {{ profile.name | shout }}", ["line 2, column 21: unknown filter 'shout'"]),
    ("Hi {{ profil.name }}", ["line 1, column 7: unknown variable 'profil': use profile.<field>"]),
    ('{% connected_content weather %}',
     ['line 1, column 22: connected_content takes a quoted URL, then "as" and a name (expected string, found word)']),
    ('{% connected_content "https://x?c={{ profile.city }}" as w %}{{ w.temp }}', []),
], ids=["fine", "locals", "unclosed-output", "unclosed-block", "unknown-tag", "unknown-filter", "unknown-variable",
        "linked-unquoted", "linked-fine"])
def test_template_problems_name_line_and_column(body: str, problems: list[str]) -> None:
    assert template_problems(body) == problems


def test_compile_is_cached_and_refuses_a_broken_body() -> None:
    assert compile_body("Hi {{ profile.name }}") is compile_body("Hi {{ profile.name }}")
    with pytest.raises(RenderProblem, match="line 1, column 4"):
        compile_body("Hi {{ profile.name ")


def test_profile_context_fields_win_over_properties() -> None:
    context = profile_context(ANN)
    assert context["name"] == "Ann" and context["city"] == "Leeds"
    assert context["properties"]["name"] == "Annie"


async def test_render_fields_properties_nested_and_emoji() -> None:
    body = ("{{ profile.name }}/{{ profile.properties.name }} in {{ profile.city }} "
            "{{ profile.properties.city }} tier {{ profile.tier.level }} {{ profile.country }} 🎉")
    assert await render_for(compile_body(body), ANN) == "Ann/Annie in Leeds Leeds tier 2 GB 🎉"


async def test_missing_values_render_empty_and_default_applies() -> None:
    text = await render_for(compile_body('Hi {{ profile.name | default: "there" }}{{ profile.nope }}!'), {})
    assert text == "Hi there!"


@pytest.mark.parametrize("body", ["{{ profile.name }}", "  {{ profile.name }}\n", "{% if profile.vip %}VIP{% endif %}"],
                         ids=["empty", "whitespace", "condition"])
async def test_an_empty_result_is_a_problem(body: str) -> None:
    with pytest.raises(RenderProblem, match="the message came out empty"):
        await render_for(compile_body(body), {"name": ""})


async def test_a_render_error_is_a_problem_with_its_place() -> None:
    with pytest.raises(RenderProblem) as caught:
        await render_for(compile_body("x {{ profile.n | divided_by: 0 }}"), {"properties": {"n": 3}})
    assert caught.value.reason == "line 1, column 18: divided_by: can't divide by 0"


def _client(handler) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


LINKED = '{% connected_content "https://api.example.com/w?city={{ profile.city }}" as w %}{{ profile.name }}: {{ w.temp }}'


async def test_linked_content_fetched_once_per_url_even_concurrently() -> None:
    seen: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        await asyncio.sleep(0.01)
        return httpx.Response(200, json={"temp": {"Leeds": 9, "Oslo": 3}[request.url.params["city"]]})

    async with _client(handler) as client:
        linked = LinkedContent(client)
        template = compile_body(LINKED)
        people = [{"name": n, "properties": {"city": c}} for n, c in [("A", "Leeds"), ("B", "Oslo"), ("C", "Leeds")]]
        texts = await asyncio.gather(*(render_for(template, p, linked=linked) for p in people))
    assert texts == ["A: 9", "B: 3", "C: 9"]
    assert sorted(seen) == ["https://api.example.com/w?city=Leeds", "https://api.example.com/w?city=Oslo"]
    assert linked.fetches == 2


@pytest.mark.parametrize(("response", "reason"), [
    (httpx.Response(500, text="no"), "linked content from api.example.com answered HTTP 500"),
    (httpx.Response(200, text="<html>"), "linked content from api.example.com is not JSON"),
    (httpx.Response(200, content=json.dumps({"x": "y" * 300_000}).encode()),
     "linked content from api.example.com is larger than 256 kB"),
], ids=["http-error", "not-json", "too-large"])
async def test_linked_failure_skips_by_default_and_is_kept_for_the_run(response: httpx.Response, reason: str) -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return response

    async with _client(handler) as client:
        linked = LinkedContent(client)
        for _ in range(2):
            with pytest.raises(RenderProblem) as caught:
                await render_for(compile_body(LINKED), {"name": "A", "properties": {"city": "Leeds"}}, linked=linked)
            assert caught.value.reason == reason and not caught.value.abort
    assert calls == 1


async def test_linked_failure_aborts_under_the_abort_policy_and_times_out() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    async with _client(handler) as client:
        linked = LinkedContent(client, timeout=0.5, on_failure="abort")
        with pytest.raises(LinkedAbort) as caught:
            await render_for(compile_body(LINKED), {"name": "A"}, linked=linked)
    assert caught.value.abort and caught.value.reason == "linked content from api.example.com timed out after 0.5s"


async def test_linked_content_needs_http_and_a_fetcher() -> None:
    with pytest.raises(RenderProblem, match="needs an http or https URL"):
        await render_for(compile_body('{% connected_content "file:///etc/passwd" as w %}x'), {},
                         linked=LinkedContent(None))
    with pytest.raises(RenderProblem, match="not available here"):
        await render_for(compile_body(LINKED), {})


@pytest.mark.parametrize(("body", "reason"), [
    ("{% for i in (1..100000) %}x{% endfor %}", "line 1, column 4: loop iteration limit reached"),
    ("{% for i in (1..5000) %}xxxxxxxxxx{% endfor %}", "line 1, column 4: output stream limit reached"),
], ids=["loop", "output"])
async def test_a_runaway_template_is_a_problem_not_a_hang(body: str, reason: str) -> None:
    with pytest.raises(RenderProblem) as caught:
        await render_for(compile_body(body), {})
    assert caught.value.reason == reason


async def test_an_invalid_linked_url_is_a_problem() -> None:
    async with _client(lambda request: httpx.Response(200, json={})) as client:
        with pytest.raises(RenderProblem) as caught:
            await LinkedContent(client).get("https://api.example.com/\x00")
    assert caught.value.reason == "linked content from api.example.com: the URL is not valid"
