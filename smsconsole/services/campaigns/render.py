"""Campaign bodies: Liquid templates (python-liquid), checked at save, rendered per recipient when
the engine claims a message, previewed in the wizard and the CLI.

The render context is one variable, `profile`:

    profile.user_id  profile.phone  profile.name  profile.country  profile.timezone
    profile.<key>             every key of the profile's properties (a property never hides a
                              built-in field above: a property called `name` is only at ...)
    profile.properties.<key>  every property, whatever its name

A missing value renders as nothing, so `{{ profile.name | default: "there" }}` covers people
without a name. Unknown filters, unknown tags and variables other than `profile` (and names the
template assigns itself) are refused by `template_problems` with their line and column.

**Linked content** fetches JSON at send time:

    {% connected_content "https://api.example.com/weather?city={{ profile.city | url_encode }}" as weather %}
    It is {{ weather.temp }} degrees in {{ profile.city }}.

The URL is itself a Liquid template (rendered per recipient); the answer must be JSON (2xx) and
is bound to the name after `as`. A `LinkedContent` holds the fetches of one run: each URL is
fetched once (concurrent recipients wait for the same fetch) and its answer, or its failure, is
kept for the rest of the run. A failure follows the campaign's `what.linked_content.on_failure`:
"skip" raises `RenderProblem` (this recipient is suppressed with the reason), "abort" raises
`LinkedAbort` (the whole run stops: `abort_run` marks it failed and suppresses its queued
messages). Reasons name the host, never the whole URL (it may carry personal data or a token).
"""

from __future__ import annotations

import asyncio
import functools
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from liquid import Environment, RenderContext
from liquid.ast import Node
from liquid.builtin.expressions import Identifier, parse_identifier
from liquid.exceptions import LiquidError, LiquidSyntaxError
from liquid.output import LimitedStringIO
from liquid.stream import TokenStream
from liquid.tag import Tag
from liquid.token import TOKEN_AS, TOKEN_STRING, TOKEN_TAG, TOKEN_WORD, Token
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole import clock
from smsconsole.models import CampaignRun, Message, Profile, PropertyDef
from smsconsole.sms import analyze, ucs2_culprits

LINKED_TAG = "connected_content"
PROFILE_FIELDS = ("user_id", "phone", "name", "country", "timezone")
LINKED_MAX_BYTES = 256_000  # a linked answer larger than this is a failure
LINKED_CACHE_URLS = 10_000  # answers kept per run (per-recipient URLs: the oldest go first)
_LINKED_KEY = "smsconsole.linked"

# The profile a preview renders when the audience has no reachable profile (and none was picked).
SAMPLE_PROFILE: dict[str, Any] = {
    "user_id": "sample", "phone": "+14155550100", "name": "Alex", "country": "US",
    "timezone": "America/New_York", "properties": {},
}


class RenderProblem(Exception):
    """A recipient's message cannot be rendered: `reason` says why (it becomes the suppression
    reason, after "personalization failed: ")."""

    abort = False

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LinkedAbort(RenderProblem):
    """Linked content failed and the campaign's policy is "abort": the run must stop."""

    abort = True


# --- linked content -----------------------------------------------------------------------------


class LinkedContent:
    """The linked-content fetches of one run: one GET per URL, answers and failures kept for the
    run. `client` may be shared (the engine's); without one a client of its own is made on the
    first fetch (close it with `aclose`)."""

    def __init__(self, client: httpx.AsyncClient | None = None, *, timeout: float = 3.0,
                 on_failure: str = "skip") -> None:
        self.client = client
        self.timeout = timeout or 3.0
        self.on_failure = on_failure
        self.fetches = 0  # requests made (a test's count: once per URL per run)
        self._cache: dict[str, tuple[bool, Any]] = {}  # url -> (ok, JSON value or failure reason)
        self._pending: dict[str, asyncio.Future[tuple[bool, Any]]] = {}
        self._own_client = False

    async def aclose(self) -> None:
        if self._own_client and self.client is not None:
            await self.client.aclose()
            self.client = None

    async def get(self, url: str) -> Any:
        """The JSON at `url`, or RenderProblem / LinkedAbort under the failure policy."""
        found = self._cache.get(url)
        if found is None:
            pending = self._pending.get(url)
            if pending is None:
                pending = self._pending[url] = asyncio.get_running_loop().create_future()
                try:
                    found = await self._fetch(url)
                except BaseException as exc:  # cancelled: let the next recipient try again
                    pending.set_exception(exc)
                    pending.exception()  # retrieved: no "never retrieved" warning
                    raise
                finally:
                    self._pending.pop(url, None)
                self._cache[url] = found
                if len(self._cache) > LINKED_CACHE_URLS:
                    del self._cache[next(iter(self._cache))]
                pending.set_result(found)
            else:
                found = await asyncio.shield(pending)
        ok, value = found
        if ok:
            return value
        if self.on_failure == "abort":
            raise LinkedAbort(value)
        raise RenderProblem(value)

    async def _fetch(self, url: str) -> tuple[bool, Any]:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return False, "linked content needs an http or https URL"
        if self.client is None:
            self.client = httpx.AsyncClient()
            self._own_client = True
        self.fetches += 1
        where = f"linked content from {host}"
        try:
            response = await self.client.get(url, timeout=self.timeout, headers={"Accept": "application/json"})
        except httpx.TimeoutException:
            return False, f"{where} timed out after {self.timeout:g}s"
        except httpx.HTTPError as exc:
            return False, f"{where} failed: {type(exc).__name__}"
        except (httpx.InvalidURL, ValueError, UnicodeError):
            return False, f"{where}: the URL is not valid"
        if not 200 <= response.status_code < 300:
            return False, f"{where} answered HTTP {response.status_code}"
        if len(response.content) > LINKED_MAX_BYTES:
            return False, f"{where} is larger than {LINKED_MAX_BYTES // 1000} kB"
        try:
            return True, response.json()
        except ValueError:
            return False, f"{where} is not JSON"


class _LinkedNode(Node):
    __slots__ = ("url", "name")

    def __init__(self, token: Token, url: list[Node], name: Identifier) -> None:
        super().__init__(token)
        self.url = url
        self.name = name

    def __str__(self) -> str:
        return f"{{% {LINKED_TAG} ... as {self.name} %}}"

    def render_to_output(self, context: RenderContext, _: Any) -> int:
        raise RenderProblem("linked content can only be fetched by the asynchronous renderer")

    async def render_to_output_async(self, context: RenderContext, _: Any) -> int:
        linked: LinkedContent | None = context.tag_namespace.get(_LINKED_KEY)
        buffer = io.StringIO()
        for node in self.url:
            await node.render_async(context, buffer)
        if linked is None:
            raise RenderProblem("linked content is not available here")
        context.assign(self.name, await linked.get(buffer.getvalue().strip()))
        return 0

    def children(self, static_context: RenderContext, *, include_partials: bool = True) -> Iterable[Node]:
        return self.url

    def template_scope(self) -> Iterable[Identifier]:
        yield self.name


class _LinkedTag(Tag):
    """`{% connected_content "URL with {{ liquid }}" as name %}`."""

    name = LINKED_TAG
    block = False

    def parse(self, stream: TokenStream) -> Node:
        token = stream.eat(TOKEN_TAG)
        tokens = stream.into_inner(tag=token, eat=False)
        try:
            tokens.expect(TOKEN_STRING)
            literal = tokens.current
            next(tokens)
            tokens.eat(TOKEN_AS)
            tokens.expect(TOKEN_WORD)
            name = parse_identifier(self.env, tokens)
            tokens.expect_eos()
        except LiquidSyntaxError as err:
            raise LiquidSyntaxError(f'{LINKED_TAG} takes a quoted URL, then "as" and a name '
                                    f'({err.message})', token=err.token or token) from err
        try:
            url = self.env._parse(literal.value)
        except LiquidSyntaxError as err:
            raise LiquidSyntaxError(f"{LINKED_TAG} URL: {err.message}", token=literal) from err
        return _LinkedNode(token, url, name)


class _Environment(Environment):
    """Liquid with bounds: a body is an SMS, so a runaway loop or output is a render problem."""

    loop_iteration_limit = 10_000
    output_stream_limit = 20_000  # characters
    local_namespace_limit = 100_000  # bytes of assigned values


ENV = _Environment()
ENV.add_tag(_LinkedTag)


# --- checking and compiling ---------------------------------------------------------------------


def _where(source: str, index: int) -> str:
    before = source[:max(0, index)]
    line = before.count("\n") + 1
    column = index - (before.rfind("\n") + 1) + 1
    return f"line {line}, column {column}"


def _error_text(err: LiquidError, source: str) -> str:
    context = err.context()
    if context is not None:
        where = f"line {context[0]}, column {context[1] + 1}"
    else:
        where = _where(source, len(source.rstrip()))  # e.g. a block never closed: at the end
    return f"{where}: {err.message}"


def template_problems(body: str) -> list[str]:
    """Every problem of a body as "line L, column C: what" ([] when it renders): syntax errors,
    unknown tags and filters, and variables other than `profile` that the body does not assign."""
    try:
        template = ENV.from_string(body)
    except LiquidError as err:
        return [_error_text(err, body)]
    problems: list[tuple[int, str]] = []
    try:
        analysis = template.analyze()
    except LiquidError as err:  # pragma: no cover - analysis of a parsed template
        return [_error_text(err, body)]
    for name, spans in analysis.filters.items():
        if name not in ENV.filters:
            problems.extend((span.index, f"unknown filter {name!r}") for span in spans)
    for name, variables in analysis.globals.items():
        if name != "profile":
            problems.extend((v.span.index, f"unknown variable {name!r}: use profile.<field>")
                            for v in variables[:1])
    return [f"{_where(body, index)}: {text}" for index, text in sorted(problems)]


@functools.lru_cache(maxsize=256)
def compile_body(body: str) -> Any:
    """The body parsed once (cached by its text). RenderProblem with the first problem (line and
    column) when it does not parse or names an unknown filter or variable."""
    problems = template_problems(body)
    if problems:
        raise RenderProblem(f"the template has an error at {problems[0]}")
    return ENV.from_string(body)


def profile_context(profile: Mapping[str, Any]) -> dict[str, Any]:
    """`profile` as templates see it (see the module's docstring). `profile` is a mapping with
    the built-in fields and `properties`, or a Profile row."""
    if isinstance(profile, Profile):
        profile = profile_mapping(profile)
    properties = dict(profile.get("properties") or {})
    context: dict[str, Any] = {key: value for key, value in properties.items() if key not in PROFILE_FIELDS}
    context.update({key: profile.get(key) for key in PROFILE_FIELDS})
    context["properties"] = properties
    return context


def profile_mapping(row: Any) -> dict[str, Any]:
    """The built-in fields and properties of a Profile row (or any object with them)."""
    return {"user_id": row.user_id, "phone": row.phone, "name": row.name, "country": row.country,
            "timezone": row.timezone, "properties": dict(row.properties or {})}


async def render_text(template: Any, profile: Mapping[str, Any], *, linked: LinkedContent | None = None) -> str:
    """The template rendered for one profile, as is (may be empty). RenderProblem on failure."""
    context = RenderContext(template, globals=template.make_globals({"profile": profile_context(profile)}))
    if linked is not None:
        context.tag_namespace[_LINKED_KEY] = linked
    buffer = LimitedStringIO(limit=ENV.output_stream_limit)
    try:
        await template.render_with_context_async(context, buffer)
    except RenderProblem:
        raise
    except LiquidError as err:
        raise RenderProblem(_error_text(err, template.source if hasattr(template, "source") else "")) from err
    except (ValueError, TypeError, ArithmeticError, KeyError, AttributeError) as err:
        raise RenderProblem(f"{type(err).__name__}: {err}") from err
    return buffer.getvalue()


async def render_for(template: Any, profile: Mapping[str, Any], *, linked: LinkedContent | None = None) -> str:
    """The message for one recipient: RenderProblem when rendering fails or the text is empty or
    only whitespace (LinkedAbort when linked content failed under the "abort" policy)."""
    text = await render_text(template, profile, linked=linked)
    if not text.strip():
        raise RenderProblem("the message came out empty")
    return text


# --- preview and the @ menu ---------------------------------------------------------------------


@dataclass(frozen=True)
class Preview:
    text: str
    chars: int
    encoding: str
    segments: int
    ucs2_chars: tuple[str, ...]  # the characters that force UCS-2, each once, in order
    profile_label: str  # whose profile it was rendered for
    problem: str | None  # why it cannot be rendered (text is then "")


def _label(profile: Mapping[str, Any], sample: bool) -> str:
    if sample:
        return f"sample profile ({profile.get('name')})"
    who = profile.get("name") or profile.get("user_id") or profile.get("phone") or "profile"
    extra = profile.get("user_id") or profile.get("phone")
    return f"{who} ({extra})" if extra and extra != who else str(who)


async def _audience_sample(session: AsyncSession, document: Any) -> Profile | None:
    """The first reachable profile of the document's audience, or None."""
    from smsconsole.services.errors import NotFound, ValidationError
    from smsconsole.services.queries.reach import reachable_condition
    from smsconsole.services.segments.compiler import segment_condition
    from smsconsole.services.segments.crud import get_segment

    who = document.who
    definition = who.definition
    try:
        if definition is None and who.segment:
            definition = (await get_segment(session, who.segment)).definition
        query = select(Profile).where(reachable_condition())
        if definition is not None:
            query = query.where(await segment_condition(session, definition))
    except (ValidationError, NotFound):  # an unfinished audience: fall back to the sample
        return None
    return await session.scalar(query.order_by(Profile.id).limit(1))


async def profile_for(session: AsyncSession, document: Any, profile_ref: str | None, *,
                      default_region: str | None = None) -> tuple[dict[str, Any], bool]:
    """(the render mapping of `profile_ref`, or else of the audience's first reachable profile,
    or else of the built-in sample; whether it is the sample). NotFound for an unknown ref."""
    from smsconsole.services.profiles.reading import find_profile

    if profile_ref:
        return profile_mapping(await find_profile(session, profile_ref, default_region=default_region)), False
    row = await _audience_sample(session, document)
    return (dict(SAMPLE_PROFILE), True) if row is None else (profile_mapping(row), False)


async def preview(session: AsyncSession, document: Any, *, profile_ref: str | None = None,
                  default_region: str | None = None, client: httpx.AsyncClient | None = None) -> Preview:
    """The body of `document` (a CampaignDocument) rendered for one profile: `profile_ref` (user
    id, phone or profile id), else the first reachable profile of its audience, else the built-in
    sample "Alex". Linked content is fetched (through `client`, or a client of its own). A
    profile_ref naming no one raises services.errors.NotFound."""
    mapping, sample = await profile_for(session, document, profile_ref, default_region=default_region)
    label = _label(mapping, sample)
    what = document.what
    linked = LinkedContent(client, timeout=what.linked_timeout, on_failure="skip")
    try:
        text = await render_for(compile_body(what.body), mapping, linked=linked)
    except RenderProblem as problem:
        return Preview("", 0, "GSM-7", 0, (), label, problem.reason)
    finally:
        await linked.aclose()
    info = analyze(text)
    culprits = tuple(dict.fromkeys(c.char for c in ucs2_culprits(text)))
    return Preview(text, info.characters, str(info.encoding), info.segments, culprits, label, None)


async def known_properties(session: AsyncSession) -> list[str]:
    """What the `@` menu offers: the built-in fields, then every declared profile property (as
    profile.properties.<name>, which never collides with a built-in field)."""
    names = await session.scalars(
        select(PropertyDef.name).where(PropertyDef.scope == "profile").order_by(PropertyDef.name)
    )
    return [f"profile.{field}" for field in PROFILE_FIELDS] + [f"profile.properties.{name}" for name in names]


# --- aborting a run -----------------------------------------------------------------------------


async def abort_run(session: AsyncSession, run_id: int, reason: str, *, now: datetime | None = None) -> int:
    """Stop a run whose linked content failed under the "abort" policy: the run becomes `failed`
    with the reason, its queued and held messages are suppressed ("run aborted: reason"). Returns
    how many messages were suppressed. Idempotent; the caller commits. Messages already claimed
    by an engine are settled by that engine."""
    now = now or clock.now()
    text = f"run aborted: {reason}"
    await session.execute(
        update(CampaignRun)
        .where(CampaignRun.id == run_id, CampaignRun.state.in_(("planned", "materializing", "running", "paused")))
        .values(state="failed", reason=text, finished_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    result = await session.execute(
        update(Message)
        .where(Message.run_id == run_id, Message.state.in_(("queued", "held")))
        .values(state="suppressed", reason=text, finished_at=now, updated_at=now, next_attempt_at=None,
                claim_token=None)
        .execution_options(synchronize_session=False)
    )
    campaign_id = await session.scalar(select(CampaignRun.campaign_id).where(CampaignRun.id == run_id))
    if campaign_id is not None:
        from smsconsole.services import audit

        await audit.record(session, "engine", "campaign.run_failed", f"C{campaign_id}", run_id=run_id,
                           reason=text)
    return result.rowcount or 0

