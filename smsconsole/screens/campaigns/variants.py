"""The wizard's variants, on the draft mapping (`what` of the campaign file): the single-variant
form keeps `body`, `generic` and `dlt` in `what`; once a second variant is added they move into
`what.variants` (A first), and removing down to one moves them back, so a campaign without an
A/B test reads as it always did. A variant's message fields are its "holder": `what` itself, or
its entry in `what.variants`. Splits left blank share what the control leaves equally (the
document's rule), so adding or removing a variant clears them to equal shares."""

from __future__ import annotations

import copy
import re
from typing import Any

from smsconsole.services.campaigns.arms import LETTERS, MAX_VARIANTS

MESSAGE_KEYS = ("body", "generic", "dlt")
DEFAULT_CONTROL = 10
_VARIANT_PATH = re.compile(r"^what\.variants\.(\d+)(?:\.|$)")


def variant_list(what: dict[str, Any]) -> list[dict[str, Any]] | None:
    """`what.variants` when the draft uses the variants form, else None."""
    raw = what.get("variants")
    if isinstance(raw, list) and raw:
        for index, item in enumerate(raw):
            if not isinstance(item, dict):
                raw[index] = {}
        return raw
    return None


def holders(what: dict[str, Any]) -> list[dict[str, Any]]:
    """Each variant's message fields, A first: `what` itself in the single-variant form."""
    return variant_list(what) or [what]


def variant_path(what: dict[str, Any], index: int) -> str:
    """The document path of variant `index`'s message fields: `what`, or `what.variants.N`."""
    return "what" if variant_list(what) is None else f"what.variants.{index + 1}"


def variant_of_problem(field: str) -> int | None:
    """The 0-based variant a problem's field names (`what.variants.2.body` → 1), else None."""
    match = _VARIANT_PATH.match(field)
    return int(match.group(1)) - 1 if match else None


def _clear_splits(variants: list[dict[str, Any]]) -> None:
    for index, holder in enumerate(variants):
        holder["name"] = LETTERS[index]
        holder.pop("split", None)


def add_variant(what: dict[str, Any], copy_of: int) -> int | None:
    """Add a variant, starting as a copy of variant `copy_of` (its body, Generic and DLT fields);
    every split back to an equal share. The new variant's index, or None when there are five."""
    variants = variant_list(what)
    if variants is None:
        variants = [{"name": "A", **{key: what.pop(key) for key in MESSAGE_KEYS if key in what}}]
        what["variants"] = variants
    if len(variants) >= MAX_VARIANTS:
        return None
    source = variants[min(copy_of, len(variants) - 1)]
    variants.append({key: copy.deepcopy(source[key]) for key in MESSAGE_KEYS if key in source})
    _clear_splits(variants)
    return len(variants) - 1


def remove_variant(what: dict[str, Any], index: int) -> None:
    """Remove variant `index`; the rest take their letters by position and equal shares. The last
    one left goes back to the single-variant form."""
    variants = variant_list(what)
    if variants is None or len(variants) < 2:
        return
    del variants[index]
    _clear_splits(variants)
    if len(variants) == 1:
        only = variants[0]
        del what["variants"]
        for key in MESSAGE_KEYS:
            if key in only:
                what[key] = only[key]
