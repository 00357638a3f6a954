"""A campaign's What compiled for sending: the body template, the per-recipient option templates
(a Generic provider's template variables and body values), the fixed options (DLT fields, the
Generic template id, header and global values: no personalization, they may sit outside a
batch's per-recipient item) and the linked-content cache. The engine compiles one per run
(engine/personalize.py); a campaign's test send compiles one for its single message."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from smsconsole.services.campaigns.definition import MAX_BODY, parse_document
from smsconsole.services.campaigns.render import (
    LinkedContent,
    RenderProblem,
    compile_body,
    render_for,
    render_text,
)


@dataclass
class RunContent:
    """One run's compiled What."""

    body: Any = None
    problem: str | None = None  # the document cannot be rendered at all: every message suppressed
    variables: list[Any] = field(default_factory=list)
    body_values: dict[str, Any] = field(default_factory=dict)
    fixed: dict[str, str] = field(default_factory=dict)
    linked: LinkedContent | None = None

    @property
    def personal_options(self) -> bool:
        return bool(self.variables or self.body_values)


def run_content(document: Mapping[str, Any] | None, client: httpx.AsyncClient | None) -> RunContent:
    """A document (a run's snapshot, or a campaign's current one) compiled for rendering."""
    if not document:
        return RunContent(problem="the run has no document")
    doc, _ = parse_document(document, strict=False)
    what = doc.what
    content = RunContent(linked=LinkedContent(client, timeout=what.linked_timeout, on_failure=what.linked_on_failure))
    generic = what.generic
    try:
        content.body = compile_body(what.body)
        content.variables = [compile_body(str(v)) for v in generic.get("template_variables") or ()]
        content.body_values = {str(k): compile_body(str(v)) for k, v in (generic.get("body_values") or {}).items()}
    except RenderProblem as problem:
        content.problem = problem.reason
        return content
    fixed = {str(k): str(v) for k, v in what.dlt.items() if str(v).strip()}
    if generic.get("template_id"):
        fixed["template_id"] = str(generic["template_id"])
    for key in ("global_values", "header_values"):
        fixed.update({str(k): str(v) for k, v in (generic.get(key) or {}).items()})
    content.fixed = fixed
    return content


async def render_message(content: RunContent, profile: Mapping[str, Any] | None, *,
                         body: bool = True) -> tuple[str | None, dict[str, str]]:
    """(the body rendered for `profile`, or None when `body` is false; the provider options).
    Raises RenderProblem (LinkedAbort under the abort policy) for anything that cannot be sent."""
    if content.problem is not None:
        raise RenderProblem(content.problem)
    if (body or content.personal_options) and profile is None:
        raise RenderProblem("the recipient's profile no longer exists")
    text = None
    if body:
        text = await render_for(content.body, profile or {}, linked=content.linked)
        if len(text) > MAX_BODY:
            raise RenderProblem(f"the message is {len(text):,} characters; at most {MAX_BODY:,} are sent")
    options = dict(content.fixed)
    if content.variables:
        values = [await render_text(t, profile or {}, linked=content.linked) for t in content.variables]
        options["template_variables"] = ",".join(v.strip() for v in values)
    for key, template in content.body_values.items():
        options[key] = (await render_text(template, profile or {}, linked=content.linked)).strip()
    return text, options
