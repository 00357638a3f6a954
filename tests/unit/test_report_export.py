"""How the campaign report writes its figures to CSV."""

from __future__ import annotations


def test_the_report_csv_keeps_revenue_and_cost_to_the_cent() -> None:
    from smsconsole.services.campaigns.report_export import _number

    assert _number(16499.85) == "16499.85"
    assert _number(1_234_567.89) == "1234567.89"
    assert _number(0.1 + 0.2) == "0.3" and _number(0.0333) == "0.0333" and _number(None) == ""
