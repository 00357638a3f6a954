"""Lift arithmetic (services/campaigns/lift.py) against cases computed by hand from the formulas:
d = p1 - p0; Wald (unpooled) 95% CI d ± 1.959964·sqrt(p1(1-p1)/n1 + p0(1-p0)/n0); pooled z-test
z = d / sqrt(p(1-p)(1/n1 + 1/n0)), p = (c1+c0)/(n1+n0), p-value 2(1 - Φ(|z|)). A verdict only with
at least 100 people in each arm and an interval that excludes 0."""

from __future__ import annotations

import pytest

from smsconsole.services.campaigns.lift import MIN_PEOPLE, compare


def test_a_variant_that_beats_control() -> None:
    # p1 = 120/1000 = 0.12, p0 = 80/1000 = 0.08, d = 0.04 → +4.0 pts
    # var = 0.12·0.88/1000 + 0.08·0.92/1000 = 0.0001056 + 0.0000736 = 0.0001792, sqrt = 0.0133866
    # half width = 1.959964 · 0.0133866 = 0.0262372 → CI 0.0137628 to 0.0662372 (+1.38 to +6.62 pts)
    # pooled p = 200/2000 = 0.1, se = sqrt(0.1·0.9·(2/1000)) = sqrt(0.00018) = 0.0134164
    # z = 0.04 / 0.0134164 = 2.98142 → p-value = 2(1 - Φ(2.98142)) = 0.002869
    lift = compare("B", 120, 1000, 80, 1000)
    assert lift.rate == pytest.approx(0.12) and lift.control_rate == pytest.approx(0.08)
    assert lift.diff_pts == pytest.approx(4.0)
    assert lift.low_pts == pytest.approx(1.37628, abs=1e-4)
    assert lift.high_pts == pytest.approx(6.62372, abs=1e-4)
    assert lift.p_value == pytest.approx(0.002869, abs=1e-5)
    assert lift.significant
    assert lift.verdict == "B beats control: +4.0 pts, 95% CI +1.4 to +6.6"
    assert (lift.variant, lift.people, lift.conversions, lift.control_people, lift.control_conversions) == (
        "B", 1000, 120, 1000, 80)


def test_a_variant_that_trails_control() -> None:
    # p1 = 0.05, p0 = 0.08, d = -0.03 → -3.0 pts
    # var = 0.05·0.95/1000 + 0.08·0.92/1000 = 0.0000475 + 0.0000736 = 0.0001211, sqrt = 0.0110045
    # half width = 1.959964 · 0.0110045 = 0.0215685 → CI -0.0515685 to -0.0084315
    # pooled p = 130/2000 = 0.065, se = sqrt(0.065·0.935·0.002) = sqrt(0.00012155) = 0.0110250
    # z = 0.03 / 0.0110250 = 2.72109 → p-value = 0.006507
    lift = compare("B", 50, 1000, 80, 1000)
    assert lift.diff_pts == pytest.approx(-3.0)
    assert lift.low_pts == pytest.approx(-5.15685, abs=1e-4)
    assert lift.high_pts == pytest.approx(-0.84315, abs=1e-4)
    assert lift.p_value == pytest.approx(0.006507, abs=1e-5)
    assert lift.significant
    assert lift.verdict == "B trails control: -3.0 pts, 95% CI -5.2 to -0.8"


def test_an_interval_that_spans_zero_gives_no_verdict() -> None:
    # p1 = 0.105, p0 = 0.1, d = +0.5 pts
    # var = 0.105·0.895/1000 + 0.1·0.9/1000 = 0.000093975 + 0.00009 = 0.000183975, sqrt = 0.0135637
    # half width = 1.959964 · 0.0135637 = 0.0265844 → CI -0.0215844 to +0.0315844
    # pooled p = 205/2000 = 0.1025, se = sqrt(0.1025·0.8975·0.002) = 0.0135642, z = 0.368617 → p = 0.7124
    lift = compare("C", 105, 1000, 100, 1000)
    assert lift.diff_pts == pytest.approx(0.5)
    assert lift.low_pts == pytest.approx(-2.15844, abs=1e-4)
    assert lift.high_pts == pytest.approx(3.15844, abs=1e-4)
    assert lift.p_value == pytest.approx(0.7124, abs=1e-4)
    assert not lift.significant
    assert lift.verdict == "no clear difference yet: +0.5 pts, 95% CI -2.2 to +3.2 spans 0"


def test_a_verdict_needs_a_hundred_people_in_each_arm() -> None:
    # 30/100 vs 10/100: d = 0.2; var = 0.3·0.7/100 + 0.1·0.9/100 = 0.0021 + 0.0009 = 0.003,
    # sqrt = 0.0547723, half width = 0.107351 → CI +9.26 to +30.74 pts: excludes 0, and 100 each
    enough = compare("B", 30, 100, 10, 100)
    assert enough.low_pts == pytest.approx(9.26484, abs=1e-4)
    assert enough.high_pts == pytest.approx(30.73516, abs=1e-4)
    assert enough.significant
    assert enough.verdict == "B beats control: +20.0 pts, 95% CI +9.3 to +30.7"
    # One person fewer in B: the interval still excludes 0, but no verdict is given.
    short = compare("B", 30, MIN_PEOPLE - 1, 10, 100)
    assert short.diff_pts is not None and short.low_pts is not None and short.low_pts > 0
    assert not short.significant
    assert short.verdict == "no clear difference yet: too few people (B 99, control 100; at least 100 each)"
    control_short = compare("B", 300, 1000, 5, 50)
    assert not control_short.significant and "too few people" in control_short.verdict


def test_no_one_converted_anywhere() -> None:
    # p1 = p0 = 0: d = 0, the interval is [0, 0], the pooled se is 0: p-value 1 (no difference)
    lift = compare("B", 0, 200, 0, 200)
    assert (lift.diff_pts, lift.low_pts, lift.high_pts, lift.p_value) == (0.0, 0.0, 0.0, 1.0)
    assert not lift.significant and lift.verdict.startswith("no clear difference yet")


def test_an_arm_that_reached_no_one_has_no_rate() -> None:
    lift = compare("B", 5, 10, 0, 0)
    assert lift.rate == 0.5 and lift.control_rate is None
    assert (lift.diff_pts, lift.low_pts, lift.high_pts, lift.p_value) == (None, None, None, None)
    assert lift.verdict == "no clear difference yet: control reached no one" and not lift.significant
    assert compare("D", 0, 0, 3, 300).verdict == "no clear difference yet: D reached no one"


def test_another_confidence_level() -> None:
    # 90%: z = 1.644854; half width = 1.644854 · 0.0133866 = 0.0220191 → CI +1.80 to +6.20 pts
    lift = compare("C", 120, 1000, 80, 1000, confidence=0.90)
    assert lift.low_pts == pytest.approx(1.79809, abs=1e-4)
    assert lift.high_pts == pytest.approx(6.20191, abs=1e-4)
    assert lift.verdict == "C beats control: +4.0 pts, 90% CI +1.8 to +6.2"


def test_bad_counts() -> None:
    with pytest.raises(ValueError):
        compare("B", -1, 10, 0, 10)
    with pytest.raises(ValueError):
        compare("B", 1, 10, 0, 10, confidence=1.0)
    # More conversions than people (a message failed after its person converted): taken as people.
    capped = compare("B", 12, 10, 0, 10)
    assert capped.conversions == 10 and capped.rate == 1.0
