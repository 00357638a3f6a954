"""The campaign settings (services/settings.py): frequency caps per person per day and week, the
misfire grace and the alert webhook; each refused value names its reason; the typed accessor."""

from __future__ import annotations

import pytest

from smsconsole.services.settings import SETTINGS, CampaignLimits, campaign_limits_from


@pytest.mark.parametrize(("key", "raw", "stored"), [
    ("campaign_cap_day", "", ""),
    ("campaign_cap_day", "2", "2"),
    ("campaign_cap_day", "007", "7"),
    ("campaign_cap_week", "1000000", "1000000"),
    ("campaign_misfire_grace", "", "3600"),
    ("campaign_misfire_grace", "0", "0"),
    ("campaign_misfire_grace", "900", "900"),
    ("campaign_alert_webhook", "", ""),
    ("campaign_alert_webhook", "https://alerts.example.com/sms?team=ops", "https://alerts.example.com/sms?team=ops"),
    ("campaign_alert_webhook", "http://127.0.0.1:9000/hook", "http://127.0.0.1:9000/hook"),
], ids=["cap-empty", "cap-2", "cap-leading-zeros", "cap-week-max", "grace-default", "grace-zero", "grace-900",
        "webhook-empty", "webhook-https", "webhook-http"])
def test_accepted_values(key: str, raw: str, stored: str) -> None:
    assert SETTINGS[key].parse(raw) == (stored, None)


@pytest.mark.parametrize(("key", "raw", "reason"), [
    ("campaign_cap_day", "0", "whole number from 1 to 1,000,000"),
    ("campaign_cap_day", "-1", "whole number from 1 to 1,000,000"),
    ("campaign_cap_day", "2.5", "whole number"),
    ("campaign_cap_day", "two", "whole number"),
    ("campaign_cap_day", "\u0662", "whole number"),  # an Arabic-Indic digit two
    ("campaign_cap_week", "1000001", "from 1 to 1,000,000"),
    ("campaign_misfire_grace", "-5", "seconds from 0 to 604,800"),
    ("campaign_misfire_grace", "1h", "seconds"),
    ("campaign_misfire_grace", "604801", "604,800"),
    ("campaign_alert_webhook", "alerts.example.com", "http(s) URL"),
    ("campaign_alert_webhook", "ftp://alerts.example.com", "http(s) URL"),
    ("campaign_alert_webhook", "https://", "http(s) URL"),
], ids=["cap-zero", "cap-negative", "cap-fraction", "cap-word", "cap-other-digits", "cap-too-big",
        "grace-negative", "grace-unit", "grace-too-long", "webhook-no-scheme", "webhook-ftp", "webhook-no-host"])
def test_refused_values_say_why(key: str, raw: str, reason: str) -> None:
    value, problem = SETTINGS[key].parse(raw)
    assert value is None and problem is not None and reason in problem


def test_each_campaign_setting_has_a_label_and_help() -> None:
    for key in ("campaign_cap_day", "campaign_cap_week", "campaign_misfire_grace", "campaign_alert_webhook"):
        assert SETTINGS[key].label and SETTINGS[key].help


@pytest.mark.parametrize(("values", "expected"), [
    ({}, CampaignLimits(None, None, 3600.0, None)),
    ({"campaign_cap_day": "2", "campaign_cap_week": "5", "campaign_misfire_grace": "0",
      "campaign_alert_webhook": "https://alerts.example.com/sms"},
     CampaignLimits(2, 5, 0.0, "https://alerts.example.com/sms")),
    ({"campaign_cap_day": "", "campaign_cap_week": "3", "campaign_misfire_grace": ""},
     CampaignLimits(None, 3, 3600.0, None)),
    # a stored value that no longer reads is not applied
    ({"campaign_cap_day": "lots", "campaign_misfire_grace": "soon"}, CampaignLimits(None, None, 3600.0, None)),
], ids=["defaults", "all-set", "week-only", "unreadable"])
def test_campaign_limits(values: dict[str, str], expected: CampaignLimits) -> None:
    assert campaign_limits_from(values) == expected
