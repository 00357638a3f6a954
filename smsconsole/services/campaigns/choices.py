"""What the campaign wizard offers: the routes (default, groups, providers), and for a chosen route
which What-step blocks apply — the Generic provider's template and key-value blocks (shown only when
its request template uses them, the seed's rules) and the DLT fields of providers that carry them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole.providers.generic.templating import parse_custom_keys
from smsconsole.services.errors import ValidationError
from smsconsole.services.groups import list_groups
from smsconsole.services.providers import FieldView, ProviderView, kind_view, list_providers

DLT_FIELDS = ("dlt_entity_id", "dlt_template_id")
_PLACEHOLDER = re.compile(r"\$\$([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class RouteChoice:
    value: str  # "" default routing, "group:NAME", "provider:NAME"
    label: str


@dataclass(frozen=True)
class WhatBlocks:
    """The blocks the What step shows for a route (a group: the union over its providers)."""

    template_id: bool = False
    template_variables: bool = False
    body_keys: tuple[str, ...] = ()  # custom keys personalised per message
    header_keys: tuple[str, ...] = ()  # in headers (no personalisation when batching)
    global_keys: tuple[str, ...] = ()  # outside a batched item: no personalisation
    header_personalised: bool = True
    dlt_fields: tuple[FieldView, ...] = ()
    providers: tuple[str, ...] = field(default_factory=tuple)

    @property
    def generic(self) -> bool:
        return self.template_id or self.template_variables or bool(self.body_keys or self.header_keys
                                                                    or self.global_keys)


def route_value(route: dict[str, Any] | None) -> str:
    route = route or {}
    if route.get("group"):
        return f"group:{route['group']}"
    if route.get("provider"):
        return f"provider:{route['provider']}"
    return ""


def route_from_value(value: str) -> dict[str, str]:
    kind, _, name = value.partition(":")
    return {kind: name} if name and kind in ("group", "provider") else {}


async def route_choices(session: AsyncSession) -> list[RouteChoice]:
    choices = [RouteChoice("", "Default routing (country group, else the default group)")]
    for group in await list_groups(session):
        choices.append(RouteChoice(f"group:{group.name}", f"group: {group.name}" + (" ★" if group.is_default else "")))
    for view in await list_providers(session):
        choices.append(RouteChoice(f"provider:{view.name}",
                                   f"{view.name} ({view.display_name})" + ("" if view.enabled else " — disabled")))
    return choices


def _generic_blocks(view: ProviderView) -> dict[str, Any]:
    settings = view.settings
    batching = bool(settings.get("batch_key", "").strip()) and settings.get("batch_size", "1").strip() not in ("", "1")
    try:
        custom = set(parse_custom_keys(settings.get("custom_keys", "")))
    except ValueError:
        custom = set()

    def used(*names: str) -> set[str]:
        return {m for name in names for m in _PLACEHOLDER.findall(settings.get(name, ""))}

    outside = used("url", "params", "raw_body")
    item = used("batch_item")
    headers = used("headers")
    everywhere = outside | item | headers
    return {
        "template_id": "TemplateID" in everywhere,
        "template_variables": "TemplateVariables" in everywhere,
        "body": (custom & item) | ((custom & outside) if not batching else set()),
        "header": custom & headers,
        "global": (custom & outside) if batching else set(),
        "batching": batching,
    }


async def what_blocks(session: AsyncSession, route: dict[str, Any] | None) -> WhatBlocks:
    providers = {view.name: view for view in await list_providers(session)}
    route = route or {}
    if route.get("provider"):
        chosen = [providers[route["provider"]]] if route["provider"] in providers else []
    else:
        groups = await list_groups(session)
        group = next((g for g in groups if g.name == route.get("group")), None) if route.get("group") else \
            next((g for g in groups if g.is_default), None)
        chosen = [providers[name] for name in (group.provider_names if group else []) if name in providers]
    template_id = template_variables = False
    body: set[str] = set()
    header: set[str] = set()
    global_: set[str] = set()
    personalised = True
    dlt: dict[str, FieldView] = {}
    for view in chosen:
        if view.kind == "generic":
            blocks = _generic_blocks(view)
            template_id |= blocks["template_id"]
            template_variables |= blocks["template_variables"]
            body |= blocks["body"]
            header |= blocks["header"]
            global_ |= blocks["global"]
            personalised &= not blocks["batching"]
        try:
            fields = kind_view(view.kind).fields
        except ValidationError:
            continue
        for f in fields:
            if f.name in DLT_FIELDS:
                dlt.setdefault(f.name, f)
    return WhatBlocks(template_id, template_variables, tuple(sorted(body)), tuple(sorted(header)),
                      tuple(sorted(global_)), personalised, tuple(dlt[name] for name in DLT_FIELDS if name in dlt),
                      tuple(view.name for view in chosen))
