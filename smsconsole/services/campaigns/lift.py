"""Lift: a variant's conversion rate against the control group's, and whether the numbers say
the message made a difference.

With p1 = conversions / people of the variant and p0 the same of control (people: reached, see
conversions.REACHED_STATES):

- the difference d = p1 - p0, reported in percentage points;
- its confidence interval is the Wald interval with unpooled variances,
  d ± z · sqrt(p1(1 - p1)/n1 + p0(1 - p0)/n0), z the normal quantile of (1 + confidence)/2
  (1.95996 for 95 %);
- the p-value is the two-sided pooled two-proportion z-test: with p = (c1 + c0)/(n1 + n0),
  z = d / sqrt(p(1 - p)(1/n1 + 1/n0)) and p-value = 2(1 - Φ(|z|)).

A verdict ("B beats control: +2.1 pts, 95% CI +0.8 to +3.4", or "B trails control: …") is given
only when both arms reached at least MIN_PEOPLE people and the interval excludes 0; otherwise the
sentence says "no clear difference yet" and why. The normal distribution is the standard
library's statistics.NormalDist (no SciPy)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

MIN_PEOPLE = 100  # per arm, before any verdict


@dataclass(frozen=True)
class Lift:
    """One variant against control. Rates are fractions (0.052); the difference and its interval
    are in percentage points (+2.1). None where an arm reached nobody."""

    variant: str
    people: int
    conversions: int
    control_people: int
    control_conversions: int
    rate: float | None
    control_rate: float | None
    diff_pts: float | None
    low_pts: float | None
    high_pts: float | None
    p_value: float | None
    verdict: str  # always a sentence
    significant: bool


def _pts(value: float) -> str:
    return f"{value:+.1f}"


def compare(variant: str, conversions: int, people: int, control_conversions: int, control_people: int,
            confidence: float = 0.95) -> Lift:
    """The lift of `variant` over control (see the module docstring for the statistics). Counts
    below zero raise ValueError; conversions above people (a message whose state changed after
    its person converted) are taken as people."""
    if min(conversions, people, control_conversions, control_people) < 0:
        raise ValueError("counts cannot be negative")
    if not 0 < confidence < 1:
        raise ValueError("confidence must be between 0 and 1")
    conversions, control_conversions = min(conversions, people), min(control_conversions, control_people)
    rate = conversions / people if people else None
    control_rate = control_conversions / control_people if control_people else None
    level = f"{confidence * 100:g}% CI"
    if rate is None or control_rate is None:
        missing = "control" if control_rate is None else variant
        return Lift(variant, people, conversions, control_people, control_conversions, rate, control_rate,
                    None, None, None, None, f"no clear difference yet: {missing} reached no one", False)
    diff = rate - control_rate
    z = NormalDist().inv_cdf((1 + confidence) / 2)
    spread = z * math.sqrt(rate * (1 - rate) / people + control_rate * (1 - control_rate) / control_people)
    low, high = diff - spread, diff + spread
    pooled = (conversions + control_conversions) / (people + control_people)
    error = math.sqrt(pooled * (1 - pooled) * (1 / people + 1 / control_people))
    if error > 0:
        p_value = 2 * (1 - NormalDist().cdf(abs(diff) / error))
    else:  # everyone or no one converted in both arms: no difference at all
        p_value = 1.0
    diff_pts, low_pts, high_pts = diff * 100, low * 100, high * 100
    figures = f"{_pts(diff_pts)} pts, {level} {_pts(low_pts)} to {_pts(high_pts)}"
    significant = False
    if min(people, control_people) < MIN_PEOPLE:
        verdict = (f"no clear difference yet: too few people ({variant} {people:,}, control {control_people:,}; "
                   f"at least {MIN_PEOPLE} each)")
    elif low <= 0 <= high:
        verdict = f"no clear difference yet: {figures} spans 0"
    else:
        significant = True
        verdict = f"{variant} {'beats' if diff > 0 else 'trails'} control: {figures}"
    return Lift(variant, people, conversions, control_people, control_conversions, rate, control_rate,
                diff_pts, low_pts, high_pts, p_value, verdict, significant)
