"""A definition in words, for the segment list, the builder's tree and the CLI: one line such as
`plan is "gold" AND did order ≥ 2 times in the last 30 days`, with the operator catalogue's words."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from smsconsole.services.segments.operators import (
    COUNT_CATALOGUE,
    DAYS,
    NO_VALUE,
    OPERATOR_CATALOGUE,
    PAIR,
    operator_label,
)


def _value_words(op: Any, value: Any) -> str:
    known = OPERATOR_CATALOGUE.get(op)
    if known is not None and known.takes == NO_VALUE:
        return ""
    if known is not None and known.takes == DAYS:
        return f" {value} {known.unit}"
    if known is not None and known.takes == PAIR:
        return f" {json.dumps(value[0])} and {json.dumps(value[1])}"
    return " " + json.dumps(value, ensure_ascii=False)


def describe_definition(document: Mapping[str, Any]) -> str:
    """One line an operator can read: `plan is "gold" AND did order ≥ 2 times in the last 30 days`."""
    def words(node: Mapping[str, Any], top: bool) -> str:
        if "conditions" in node and not any(k in node for k in ("property", "field", "event")):
            parts = [words(c, False) for c in node.get("conditions", [])]
            if not parts:
                return "everyone"
            joined = (" AND " if node.get("match", "all") == "all" else " OR ").join(parts)
            return joined if top or len(parts) == 1 else f"({joined})"
        if "property" in node or "field" in node:
            return f"{node.get('property') or node.get('field')} {operator_label(node.get('op'))}" \
                   f"{_value_words(node.get('op', ''), node.get('value'))}"
        if "event" in node:
            text = f"did {node['event']}" if node.get("did", True) else f"did not do {node['event']}"
            count = node.get("count")
            if count:
                sign = COUNT_CATALOGUE[count["op"]].sign
                text += f" {sign} {count['value']} times"
            window = node.get("window", "ever")
            if isinstance(window, Mapping) and "last_days" in window:
                text += f" in the last {window['last_days']} days"
            elif isinstance(window, Mapping) and "between" in window:
                text += f" between {window['between'][0]} and {window['between'][1]}"
            if node.get("where"):
                text += " where " + " and ".join(words(w, False) for w in node["where"])
            return text
        if "subscription" in node:
            states = node["subscription"]
            return f"subscription is {states}" if isinstance(states, str) else f"subscription is one of {', '.join(states)}"
        if "reachable" in node:
            return "reachable by SMS" if node["reachable"] else "not reachable by SMS"
        return "?"

    return words(document, True)

