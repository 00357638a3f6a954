"""Linked content: `{% connected_content "URL" as name %}` in a campaign body fetches JSON at
send time (the tag, and the per-run fetches), and the render problems every renderer raises.

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
import io
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httpx
from liquid import RenderContext
from liquid.ast import Node
from liquid.builtin.expressions import Identifier, parse_identifier
from liquid.exceptions import LiquidSyntaxError
from liquid.stream import TokenStream
from liquid.tag import Tag
from liquid.token import TOKEN_AS, TOKEN_STRING, TOKEN_TAG, TOKEN_WORD, Token

LINKED_TAG = "connected_content"
LINKED_MAX_BYTES = 256_000  # a linked answer larger than this is a failure
LINKED_CACHE_URLS = 10_000  # answers kept per run (per-recipient URLs: the oldest go first)
LINKED_KEY = "smsconsole.linked"  # where a render keeps its LinkedContent (RenderContext.tag_namespace)


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
        linked: LinkedContent | None = context.tag_namespace.get(LINKED_KEY)
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


class LinkedTag(Tag):
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
