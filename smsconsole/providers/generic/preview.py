"""The request a Generic HTTP config sends, as a curl command with every secret masked: what the
form and the CLI show before anything is sent."""

from __future__ import annotations

import dataclasses
import re
import shlex
from collections.abc import Mapping
from urllib.parse import unquote_plus

from smsconsole.providers.base import OutboundMessage
from smsconsole.providers.generic.request import GenericRequestError, compile_config, render_request
from smsconsole.providers.generic.templating import SECRET_NAME
from smsconsole.secrets import MASK, mask, mask_url

def _mask_pairs(encoded: str) -> str:
    parts = []
    for part in encoded.split("&"):
        key, equals, _ = part.partition("=")
        parts.append(f"{key}={MASK}" if equals and SECRET_NAME.search(unquote_plus(key)) else part)
    return "&".join(parts)


def _mask_json(body: str) -> str:
    def hide(match: re.Match[str]) -> str:
        return f'{match[1]}"{MASK}"' if SECRET_NAME.search(match[2]) else match[0]

    return re.sub(r'("((?:[^"\\]|\\.)*)"\s*:\s*)"(?:[^"\\]|\\.)*"', hide, body)


def preview_curl(config: Mapping[str, str], sample: OutboundMessage | None = None) -> str:
    """The request as a curl command, secrets masked: for `sample`, or with placeholders in
    place when there is no sample. Raises GenericRequestError when it cannot be built."""
    spec, problems = compile_config(config)
    if spec is None:
        raise GenericRequestError(problems)
    request = render_request(dataclasses.replace(spec, api_key=MASK), [sample] if sample else None)

    base, question, query = mask_url(request.url).partition("?")
    url = base + question + _mask_pairs(query) if question else base
    first = ["curl"] + (["-X", request.method] if request.method != "GET" else []) + [shlex.quote(url)]
    lines = [" ".join(first)]
    if spec.username or spec.password:
        lines.append("-u " + shlex.quote(f"{spec.username}:{mask(spec.password)}"))
    for name, value in request.headers:
        shown = MASK if SECRET_NAME.search(name) and value else value
        lines.append("-H " + shlex.quote(f"{name}: {shown}"))
    if request.body is not None:
        body = request.body
        if spec.body_type == "form":
            body = _mask_pairs(body)
        elif spec.body_type == "json":
            body = _mask_json(body)
        lines.append("--data-raw " + shlex.quote(body))
    return " \\\n  ".join(lines)
