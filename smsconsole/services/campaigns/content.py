"""A campaign's What compiled for sending: the body template, the per-recipient option templates
(a Generic provider's template variables and body values), the fixed options (DLT fields, the
Generic template id, header and global values: no personalization, they may sit outside a
batch's per-recipient item) and the linked-content cache. A live campaign's templates also read
`event`, the message's triggering event. The engine compiles one per run
(engine/personalize.py); a campaign's test send compiles one for its single message.

Each variant (A-E) is compiled on its own: a message renders with its row's variant
(`messages.variant`), its body, Generic fields and DLT fields; a variant whose template does not
compile suppresses only its own messages."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from smsconsole.services.campaigns.arms import Variant
from smsconsole.services.campaigns.definition import LIVE_TYPES, MAX_BODY, parse_document
from smsconsole.services.campaigns.render import (
    LinkedContent,
    RenderProblem,
    compile_body,
    render_for,
    render_text,
)


@dataclass
class VariantContent:
    """One variant's compiled What."""

    body: Any = None
    problem: str | None = None  # the variant cannot be rendered: each of its messages is suppressed
    variables: list[Any] = field(default_factory=list)
    body_values: dict[str, Any] = field(default_factory=dict)
    fixed: dict[str, str] = field(default_factory=dict)

    @property
    def personal_options(self) -> bool:
        return bool(self.variables or self.body_values)


@dataclass
class RunContent:
    """One run's compiled What: each variant's, by name ("A"…"E")."""

    variants: dict[str, VariantContent] = field(default_factory=dict)
    failure: str | None = None  # the run itself cannot be rendered (no document)
    linked: LinkedContent | None = None
    live: bool = False  # a live campaign: its messages carry the event `event` reads

    @property
    def problem(self) -> str | None:
        """Why nothing of the run can be rendered: no document, or every variant fails (the
        first one's reason); None when at least one variant renders."""
        if self.failure is not None:
            return self.failure
        problems = [v.problem for v in self.variants.values()]
        return problems[0] if problems and all(problems) else None

    def variant(self, name: str | None) -> VariantContent:
        """Variant `name` (A for a row without one); a variant the run no longer has is a problem
        (its rows are suppressed, never sent with another variant's text)."""
        if self.failure is not None:
            return VariantContent(problem=self.failure)
        found = self.variants.get(name or "A")
        if found is None:
            return VariantContent(problem=f"the campaign has no variant {name}")
        return found


def _compile_variant(variant: Variant, live: bool) -> VariantContent:
    generic = variant.generic
    content = VariantContent()
    try:
        content.body = compile_body(variant.body, live)
        content.variables = [compile_body(str(v), live) for v in generic.get("template_variables") or ()]
        content.body_values = {str(k): compile_body(str(v), live)
                               for k, v in (generic.get("body_values") or {}).items()}
    except RenderProblem as problem:
        content.problem = problem.reason
        return content
    fixed = {str(k): str(v) for k, v in variant.dlt.items() if str(v).strip()}
    if generic.get("template_id"):
        fixed["template_id"] = str(generic["template_id"])
    for key in ("global_values", "header_values"):
        fixed.update({str(k): str(v) for k, v in (generic.get(key) or {}).items()})
    content.fixed = fixed
    return content


def run_content(document: Mapping[str, Any] | None, client: httpx.AsyncClient | None) -> RunContent:
    """A document (a run's snapshot, or a campaign's current one) compiled for rendering, every
    variant of it."""
    if not document:
        return RunContent(failure="the run has no document")
    doc, _ = parse_document(document, strict=False)
    what = doc.what
    live = doc.type in LIVE_TYPES
    variants = {v.name: _compile_variant(v, live) for v in what.arms}
    if len(variants) > 1:  # say which variant a suppression reason is about
        for name, variant in variants.items():
            if variant.problem is not None:
                variant.problem = f"variant {name}: {variant.problem}"
    return RunContent(variants=variants,
                      linked=LinkedContent(client, timeout=what.linked_timeout, on_failure=what.linked_on_failure),
                      live=live)


async def render_message(content: RunContent, profile: Mapping[str, Any] | None, *, body: bool = True,
                         event: Mapping[str, Any] | None = None,
                         variant: str | None = None, links: Any = None) -> tuple[str | None, dict[str, str]]:
    """(the body of `variant` (A when None) rendered for `profile` and, for a live campaign, its
    triggering `event` (None: none, or gone: `event` is empty); None when `body` is false; the
    variant's provider options). Raises RenderProblem (LinkedAbort under the abort policy) for
    anything that cannot be sent. `links` makes the short links of `track` (render.render_text)."""
    arm = content.variant(variant)
    if arm.problem is not None:
        raise RenderProblem(arm.problem)
    if (body or arm.personal_options) and profile is None:
        raise RenderProblem("the recipient's profile no longer exists")
    text = None
    if body:
        text = await render_for(arm.body, profile or {}, linked=content.linked, event=event, links=links)
        if len(text) > MAX_BODY:
            raise RenderProblem(f"the message is {len(text):,} characters; at most {MAX_BODY:,} are sent")
    options = dict(arm.fixed)
    if arm.variables:
        values = [await render_text(t, profile or {}, linked=content.linked, event=event, links=links)
                  for t in arm.variables]
        options["template_variables"] = ",".join(v.strip() for v in values)
    for key, template in arm.body_values.items():
        options[key] = (await render_text(template, profile or {}, linked=content.linked, event=event,
                                          links=links)).strip()
    return text, options
