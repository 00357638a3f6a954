"""Reading a Generic HTTP provider's answer: which statuses and bodies mean success, where the
message id is (a JSON path or a regex), and the outcome of every recipient of a request."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from smsconsole.providers.base import ConfigurationError, PermanentError, Provider, ProviderError, SendOutcome
from smsconsole.providers.common import snippet

if TYPE_CHECKING:
    import httpx

    from smsconsole.providers.generic.request import GenericSpec

logger = logging.getLogger(__name__)

@dataclass(frozen=True)
class StatusRule:
    """Which HTTP statuses mean success: `2xx`, `200`, `200-204`, comma-separated."""

    text: str
    ranges: tuple[tuple[int, int], ...]

    @classmethod
    def parse(cls, text: str) -> StatusRule:
        ranges = []
        for token in (t.strip().lower() for t in text.split(",")):
            if re.fullmatch(r"[1-5]xx", token):
                first = int(token[0]) * 100
                ranges.append((first, first + 99))
            elif match := re.fullmatch(r"(\d{3})\s*-\s*(\d{3})", token):
                low, high = int(match[1]), int(match[2])
                if not 100 <= low <= high <= 599:
                    raise ValueError(f"{token!r} is not a range of HTTP statuses")
                ranges.append((low, high))
            elif re.fullmatch(r"\d{3}", token) and 100 <= int(token) <= 599:
                ranges.append((int(token), int(token)))
            else:
                raise ValueError(f"{token or '(empty)'!r} is not a status; use e.g. 2xx or 200,201,202")
        return cls(text.strip(), tuple(ranges))

    def matches(self, status: int) -> bool:
        return any(low <= status <= high for low, high in self.ranges)


@dataclass(frozen=True)
class BodyRule:
    """Text the answer must contain for success: a substring, or a regex after `re:`."""

    text: str
    regex: re.Pattern[str] | None

    @classmethod
    def parse(cls, text: str) -> BodyRule:
        if text.startswith("re:"):
            try:
                return cls(text, re.compile(text[3:]))
            except re.error as exc:
                raise ValueError(f"is not a valid regular expression: {exc}") from None
        return cls(text, None)

    def matches(self, body: str) -> bool:
        return bool(self.regex.search(body)) if self.regex else self.text in body


WILDCARD = None  # a `[*]` step in a JSON path
PathStep = str | int | None


def parse_json_path(text: str) -> tuple[PathStep, ...]:
    """`messages[0].id`, `$.data.id`, `results[*].id`, `["key with spaces"]` into steps."""
    rest = text.strip()
    rest = rest[1:] if rest.startswith("$") else rest
    steps: list[PathStep] = []
    token = re.compile(r"""\.?([A-Za-z_][\w-]*)|\[(-?\d+|\*)\]|\[(["'])(.*?)\3\]|\.\*""")
    position = 0
    while position < len(rest):
        match = token.match(rest, position)
        if not match:
            raise ValueError(f"cannot read {rest[position:]!r}; use a path like messages[0].id or $.data.id")
        if match[1] is not None:
            steps.append(match[1])
        elif match[2] == "*" or match[0] == ".*":
            steps.append(WILDCARD)
        elif match[2] is not None:
            steps.append(int(match[2]))
        else:
            steps.append(match[4])
        position = match.end()
    if not steps:
        raise ValueError("is empty; use a path like messages[0].id or $.data.id")
    return tuple(steps)


def _walk(document: Any, steps: Sequence[PathStep]) -> list[Any]:
    nodes = [document]
    for step in steps:
        found: list[Any] = []
        for node in nodes:
            if step is WILDCARD:
                found.extend(node if isinstance(node, list) else node.values() if isinstance(node, dict) else ())
            elif isinstance(step, int):
                if isinstance(node, list) and -len(node) <= step < len(node):
                    found.append(node[step])
            elif isinstance(node, dict) and step in node:
                found.append(node[step])
        nodes = found
    return nodes


def _scalar_id(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        return value or None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return None


@dataclass(frozen=True)
class IdRule:
    """Where the provider's message id is in the answer: a JSON path, or a regex after `re:`
    whose first group is the id. A `[*]` in the path yields one id per recipient, in order."""

    text: str
    steps: tuple[PathStep, ...] = ()
    regex: re.Pattern[str] | None = None

    @classmethod
    def parse(cls, text: str) -> IdRule:
        if text.startswith("re:"):
            try:
                regex = re.compile(text[3:])
            except re.error as exc:
                raise ValueError(f"is not a valid regular expression: {exc}") from None
            if regex.groups < 1:
                raise ValueError("the regular expression needs a group around the id, e.g. re:id=(\\w+)")
            return cls(text, regex=regex)
        return cls(text, steps=parse_json_path(text))

    @property
    def per_recipient(self) -> bool:
        return WILDCARD in self.steps

    def extract(self, body: str, count: int) -> list[str | None]:
        """One id (or None) per recipient. Unreadable JSON gives None; a `[*]` path must find
        exactly `count` ids, since an id given to the wrong message is worse than none."""
        if self.regex is not None:
            match = self.regex.search(body)
            return [(match[1] or None) if match else None] * count
        try:
            document = json.loads(body)
        except ValueError:
            return [None] * count
        values = _walk(document, self.steps)
        if self.per_recipient:
            if len(values) != count:
                logger.debug("generic: %d ids at %s for %d recipients; ids left empty", len(values), self.text, count)
                return [None] * count
            return [_scalar_id(value) for value in values]
        return [_scalar_id(values[0]) if values else None] * count


def read_response(spec: GenericSpec, response: httpx.Response, refs: Sequence[str]) -> list[SendOutcome]:
    """One outcome per recipient of a request, from its answer."""
    status = response.status_code
    text = response.text
    error: ProviderError | None = None
    if not spec.success_status.matches(status):
        error = _status_error(spec, response, text)
    elif spec.success_body and not spec.success_body.matches(text):
        error = PermanentError(
            f"HTTP {status} but the answer does not contain {spec.success_body.text!r}: "
            f"{snippet(text) or '(empty body)'}", http_status=status,
        )
    if error is not None:
        return [SendOutcome(ref=ref, error=error, http_status=status) for ref in refs]
    ids = spec.message_id.extract(text, len(refs)) if spec.message_id else [None] * len(refs)
    return [
        SendOutcome(ref=ref, provider_message_id=message_id, provider_status="accepted", http_status=status)
        for ref, message_id in zip(refs, ids, strict=True)
    ]


def _status_error(spec: GenericSpec, response: httpx.Response, text: str) -> ProviderError:
    status = response.status_code
    body = snippet(text)
    if 300 <= status < 400:
        location = response.headers.get("Location", "elsewhere")
        return ConfigurationError(f"HTTP {status}: redirected to {location}; use the final URL", http_status=status)
    if status < 300:
        return PermanentError(
            f"HTTP {status} is not a success status ({spec.success_status.text})" + (f": {body}" if body else ""),
            http_status=status,
        )
    return Provider.classify_http(response, f"HTTP {status}: {body}" if body else "")
