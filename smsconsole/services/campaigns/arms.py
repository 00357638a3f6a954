"""A campaign's arms and goal in the document: up to five variants (A–E, each its own body,
Generic and DLT fields, and a split in percent), an optional control group (a percentage held
out: qualified, recorded, never sent), and the conversion goal (an event, conditions on its
properties, a window, a numeric property as its value).

    what:
      body: "..."            # the single-variant form: variant A gets 100% minus the control
      variants:              # or up to five; each {body, split, generic, dlt}; letters by position
        - {body: "Sale today", split: 45}
        - {body: "20% off today", split: 45}
      control: 10            # percent held out (0-50)
    goal: {event: order, where: [{property: amount, op: greater, value: 0}], window: 24h, value: amount}

Splits and control add up to 100; a variant without a split shares what is left equally.

Assignment is a stable pseudo-random bucket per (campaign, person), the same in SQL and Python:
((profile id · ARM_MULTIPLIER + arm_seed(campaign)) mod 2^31-1) · 10000 div (2^31-1), a basis
point 0-9999 compared with the arms' cumulative thresholds (A, B, …, then control). A recurring
campaign keeps each person in the same arm while its split is unchanged; every message row
records its arm (`messages.variant`: "A"-"E", or "control" on a held-out row)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, String, case, literal

from smsconsole.services.campaigns.fields import Problems, Reader
from smsconsole.services.campaigns.trigger import _conditions, parse_minutes

LETTERS = ("A", "B", "C", "D", "E")
MAX_VARIANTS = len(LETTERS)
CONTROL = "control"  # the arm name of held-out rows (messages.variant, state "control")
MAX_CONTROL = 50.0
ARM_MODULUS = 2_147_483_647  # 2^31 - 1, prime
ARM_MULTIPLIER = 889_516_852  # ≈ modulus · (√2 - 1): independent of the reach sample's key
BASIS = 10_000
DEFAULT_WINDOW_MINUTES = 24 * 60
MAX_WINDOW_MINUTES = 30 * 24 * 60


@dataclass(frozen=True)
class Variant:
    name: str  # "A" … "E"
    body: str = ""
    split: float = 100.0  # percent of the run's people
    generic: dict[str, Any] = field(default_factory=dict)
    dlt: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Goal:
    """The conversion: `event` (with `where` on its properties) within `window_minutes` after the
    message was sent (after the would-be send time for control); `value`: a numeric property of
    the event summed as revenue."""

    event: str
    where: tuple[dict[str, Any], ...] = ()
    window_minutes: int = DEFAULT_WINDOW_MINUTES
    value: str | None = None


def arm_seed(campaign_id: int) -> int:
    return (campaign_id * 2_246_822_519 + 1) % ARM_MODULUS


def arm_bucket(campaign_id: int, profile_id: int) -> int:
    """The person's basis point (0-9999) in this campaign: the Python twin of `arm_bucket_sql`."""
    return (profile_id * ARM_MULTIPLIER + arm_seed(campaign_id)) % ARM_MODULUS * BASIS // ARM_MODULUS


def arm_bucket_sql(campaign_id: int, profile_id: Any) -> ColumnElement[int]:
    """`arm_bucket` in SQL (integer arithmetic that reads the same on SQLite and PostgreSQL)."""
    return (profile_id * ARM_MULTIPLIER + arm_seed(campaign_id)) % ARM_MODULUS * BASIS // ARM_MODULUS


def thresholds(variants: tuple[Variant, ...]) -> list[tuple[str, int]]:
    """(arm, exclusive upper basis point) for each variant in order; control takes the rest."""
    out, upper = [], 0
    for variant in variants:
        upper += round(variant.split * 100)
        out.append((variant.name, min(upper, BASIS)))
    return out


def arm_of(campaign_id: int, profile_id: int, variants: tuple[Variant, ...]) -> str:
    """The arm ("A"…"E" or "control") of one person."""
    bucket = arm_bucket(campaign_id, profile_id)
    for name, upper in thresholds(variants):
        if bucket < upper:
            return name
    return CONTROL


def arm_sql(campaign_id: int, profile_id: Any, variants: tuple[Variant, ...]) -> ColumnElement[str]:
    """`arm_of` in SQL: a CASE over the bucket (a literal "A" when A takes everyone)."""
    limits = thresholds(variants)
    if len(limits) == 1 and limits[0][1] >= BASIS:
        return literal(limits[0][0], String)
    bucket = arm_bucket_sql(campaign_id, profile_id)
    return case(*((bucket < upper, literal(name, String)) for name, upper in limits), else_=literal(CONTROL, String))


def has_arms(variants: tuple[Variant, ...], control: float) -> bool:
    """More than one variant, or a control group."""
    return len(variants) > 1 or control > 0


# --- reading and writing -------------------------------------------------------------------------

def _split(value: Any) -> float | None:
    if isinstance(value, bool) or value in (None, ""):
        return None
    try:
        number = float(str(value).strip().rstrip("%"))
    except ValueError:
        return None
    return number


def parse_variants(r: Reader, read_one: Any) -> tuple[tuple[Variant, ...], float]:
    """The variants and the control percent of `what` (Reader `r`). `read_one(reader, path)`
    reads one variant's (body, generic, dlt) with the same checks as the single body."""
    control_raw = r.data.get("control")
    control = 0.0
    if control_raw not in (None, "", 0):
        number = _split(control_raw)
        if number is None or not 0 <= number <= MAX_CONTROL:
            r.problem("control", f"must be a percentage from 0 to {MAX_CONTROL:g} (the share held out, never sent)")
        else:
            control = round(number, 2)
    raw = r.data.get("variants")
    if raw in (None, [], ()):
        body, generic, dlt = read_one(r)
        return (Variant("A", body, round(100 - control, 2), generic, dlt),), control
    if not isinstance(raw, list | tuple):
        r.problem("variants", "must be a list of variants, each with a body (and a split in percent)")
        body, generic, dlt = read_one(r)
        return (Variant("A", body, round(100 - control, 2), generic, dlt),), control
    if r.data.get("body") not in (None, ""):
        r.problem("body", "give the body inside each variant (what.variants), not both")
    if len(raw) > MAX_VARIANTS:
        r.problem("variants", f"at most {MAX_VARIANTS} variants (A-E)")
        raw = raw[:MAX_VARIANTS]
    parts: list[tuple[str, str, dict[str, Any], dict[str, str], float | None]] = []
    for index, item in enumerate(raw):
        letter = LETTERS[index]
        path = f"variants.{index + 1}"
        if not isinstance(item, Mapping):
            r.problem(path, "must be a variant: a table with body and split")
            item = {}
        vr = Reader(item, f"{r.path}.{path}", r.problems)
        name = item.get("name")
        if name not in (None, "") and str(name).strip().upper() != letter:
            vr.problem("name", f"variants are named by their position: this one is {letter}")
        unknown = sorted(set(item) - {"name", "body", "split", "generic", "dlt"})
        if unknown:
            vr.problem(str(unknown[0]), "unknown variant field; a variant has body, split, generic and dlt")
        split = None
        if item.get("split") not in (None, ""):
            split = _split(item.get("split"))
            if split is None or not 0 < split <= 100:
                vr.problem("split", "must be a percentage above 0 and at most 100")
                split = None
        body, generic, dlt = read_one(vr)
        parts.append((letter, body, generic, dlt, split))
    given = sum(p[4] for p in parts if p[4] is not None)
    missing = [p for p in parts if p[4] is None]
    left = round(100 - control - given, 2)
    shares: list[float] = []
    if missing:
        each = round(left / len(missing), 2) if left > 0 else 0.0
        shares = [each] * len(missing)
        if left > 0:
            shares[-1] = round(left - each * (len(missing) - 1), 2)
        else:
            r.problem("variants", "the splits and the control already take 100%: give every variant a split")
    elif abs(left) > 0.001:
        r.problem("variants", f"the splits ({given:g}%) and the control ({control:g}%) must add up to 100%")
    variants = []
    for letter, body, generic, dlt, split in parts:
        share = split if split is not None else (shares.pop(0) if shares else 0.0)
        variants.append(Variant(letter, body, round(share, 2), generic, dlt))
    return tuple(variants), control


def variants_dict(variants: tuple[Variant, ...], control: float) -> dict[str, Any]:
    """The `what` keys for the arms: the single-variant form keeps `body` (and generic, dlt)."""
    if len(variants) == 1:
        v = variants[0]
        out: dict[str, Any] = {"body": v.body, "generic": dict(v.generic), "dlt": dict(v.dlt)}
        if control:
            out["control"] = control
        return out
    return {"variants": [{"name": v.name, "split": v.split, "body": v.body, "generic": dict(v.generic),
                          "dlt": dict(v.dlt)} for v in variants],
            "control": control}


def parse_goal(data: Any, problems: Problems) -> Goal | None:
    if data in (None, {}, ""):
        return None
    r = Reader(data, "goal", problems)
    if not isinstance(data, Mapping):
        return None
    unknown = sorted(set(data) - {"event", "where", "window", "value"})
    if unknown:
        r.problem(str(unknown[0]), "unknown goal field; a goal has event, where, window and value")
    event = r.text("event", max_len=128)
    if not event:
        r.problem("event", "name the conversion event (e.g. order)")
    where = _conditions(r, "where")
    window = DEFAULT_WINDOW_MINUTES
    raw = data.get("window")
    if raw not in (None, ""):
        minutes = parse_minutes(raw)
        if minutes is None or not 1 <= minutes <= MAX_WINDOW_MINUTES:
            r.problem("window", 'must be a duration from 1 minute to 30 days, e.g. "24h", "30m" or "7d"')
        else:
            window = minutes
    value = r.text("value", max_len=128)
    return Goal(event, where, window, value) if event else None


def goal_dict(goal: Goal | None) -> dict[str, Any] | None:
    if goal is None:
        return None
    return {"event": goal.event, "where": [dict(w) for w in goal.where], "window": window_words(goal.window_minutes),
            "value": goal.value}


def window_words(minutes: int) -> str:
    """24h, 90m, 7d: the shortest exact form (what parse_minutes reads back)."""
    if minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"
