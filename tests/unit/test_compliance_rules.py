"""Country rules: every rule of every country in countries.toml, the loader's errors, the override file."""

from __future__ import annotations

import os
from datetime import time
from pathlib import Path

import pytest

from smsconsole.services.compliance.rules import (
    RULE_NAMES,
    SENDER_TYPES,
    RulesError,
    Window,
    load_rules,
    package_rules_path,
)

# One row per country: a change to countries.toml must show up here.
# (sender types, registration, consent (required, applies), quiet hours (window, applies),
#  promotional window, opt-out (required, applies), opt-out example)
COUNTRIES = {
    "US": (
        ("long_code", "short_code", "toll_free"),
        {"long_code": "10dlc", "toll_free": "toll_free_verification", "short_code": "short_code_program"},
        (True, "promotional"), ("08:00–21:00", "promotional"), None,
        (True, "all"), "Reply STOP to opt out",
    ),
    "CA": (
        ("long_code", "short_code", "toll_free"),
        {"toll_free": "toll_free_verification", "short_code": "short_code_program"},
        (True, "promotional"), None, None,
        (True, "promotional"), "Reply STOP to unsubscribe / Répondez ARRÊT pour vous désabonner",
    ),
    "IN": (
        ("alphanumeric", "short_code"),
        {"alphanumeric": "dlt", "short_code": "dlt"},
        (True, "promotional"), None, "09:00–21:00",
        (True, "promotional"), "To stop receiving offers, SMS STOP to 1909",
    ),
    "GB": (
        ("alphanumeric", "long_code", "short_code"), {},
        (True, "promotional"), None, None,
        (True, "promotional"), "Reply STOP to opt out",
    ),
    "DE": (
        ("alphanumeric", "long_code", "short_code"), {},
        (True, "promotional"), None, None,
        (True, "promotional"), "Abmelden: Antworte STOP",
    ),
    "FR": (
        ("alphanumeric", "short_code"), {},
        (True, "promotional"), ("08:00–20:00", "promotional"), None,
        (True, "promotional"), "STOP au 36111",
    ),
    "BR": (
        ("short_code", "alphanumeric"),
        {"short_code": "short_code_program", "alphanumeric": "sender_id_registration"},
        (True, "promotional"), ("09:00–22:00", "promotional"), None,
        (True, "promotional"), "Responda SAIR para nao receber mais",
    ),
    "AU": (
        ("alphanumeric", "long_code", "short_code"), {"alphanumeric": "sender_id_registration"},
        (True, "promotional"), None, None,
        (True, "promotional"), "Reply STOP to opt out",
    ),
    "AE": (
        ("alphanumeric",), {"alphanumeric": "sender_id_registration"},
        (True, "promotional"), None, "08:00–21:00",
        (True, "promotional"), "To opt out send B <sender id> to 7726",
    ),
    "SG": (
        ("alphanumeric", "long_code", "short_code"), {"alphanumeric": "sender_id_registration"},
        (True, "promotional"), None, None,
        (True, "promotional"), "<ADV> ... Reply STOP to unsubscribe",
    ),
}


@pytest.fixture(scope="module")
def book():
    return load_rules()


def test_the_package_file_is_versioned_and_covers_the_countries_the_issue_names(book):
    assert book.version == "2026-12-02"
    assert set(COUNTRIES) <= set(book.countries)
    assert book.files == (str(package_rules_path()),)


@pytest.mark.parametrize("country", sorted(COUNTRIES))
def test_country_rules(book, country):
    sender_types, registration, consent, quiet, promo, opt_out, example = COUNTRIES[country]
    rule = book.get(country)
    assert rule.country == country and rule.name
    assert rule.sender_types == sender_types
    assert dict(rule.registration) == registration
    assert (rule.consent_required, rule.consent_applies) == consent
    assert ((rule.quiet_hours.words(), rule.quiet_hours.applies) if rule.quiet_hours else None) == quiet
    assert (rule.promotional_window.words() if rule.promotional_window else None) == promo
    if rule.promotional_window:
        assert rule.promotional_window.applies == "promotional"
    assert (rule.opt_out_required, rule.opt_out_applies) == opt_out
    assert rule.opt_out_example == example
    assert rule.has_opt_out(example)


@pytest.mark.parametrize("country", sorted(COUNTRIES))
def test_every_rule_a_country_states_cites_a_source(book, country):
    rule = book.get(country)
    stated = {"sender_types", "consent", "opt_out", "registration"}
    stated |= {"quiet_hours"} if rule.quiet_hours else set()
    stated |= {"promotional_window"} if rule.promotional_window else set()
    for name in stated:
        sources = rule.sources_for(name)
        assert sources, f"{country}: no source for {name}"
        assert all(s.title and s.url.startswith("https://") for s in sources)


def test_alphanumeric_is_not_allowed_in_us_or_canada(book):
    assert "alphanumeric" not in book.get("US").sender_types
    assert "alphanumeric" not in book.get("CA").sender_types


def test_filtered_link_domains_are_public_shorteners_with_a_source(book):
    assert {"bit.ly", "tinyurl.com"} <= set(book.filtered_link_domains)
    assert book.filtered_link_sources and all(s.url.startswith("https://") for s in book.filtered_link_sources)


def test_get_is_case_insensitive_and_none_safe(book):
    assert book.get("us") is book.get("US")
    assert book.get(None) is None
    assert book.get("ZZ") is None


# --- Window ---


@pytest.mark.parametrize(
    ("start", "end", "at", "inside"),
    [
        (time(8), time(21), time(8), True),
        (time(8), time(21), time(20, 59), True),
        (time(8), time(21), time(21), False),  # end is exclusive
        (time(8), time(21), time(7, 59), False),
        (time(22), time(6), time(23), True),  # wraps midnight
        (time(22), time(6), time(0), True),
        (time(22), time(6), time(5, 59), True),
        (time(22), time(6), time(6), False),
        (time(22), time(6), time(12), False),
        (time(22), time(6), time(22), True),
    ],
)
def test_window_contains(start, end, at, inside):
    assert Window(start, end).contains(at) is inside


def test_window_words():
    assert Window(time(8), time(21)).words() == "08:00–21:00"


# --- applies / has_opt_out ---


def test_applies_all_covers_every_category_promotional_only_promotional(book):
    rule = book.get("US")
    assert all(rule.applies("all", category) for category in ("promotional", "transactional", "service"))
    assert rule.applies("promotional", "promotional")
    assert not rule.applies("promotional", "transactional")
    assert not rule.applies("promotional", "service")


@pytest.mark.parametrize(
    ("country", "body", "found"),
    [
        ("US", "Sale today! Reply STOP to opt out", True),
        ("US", "Sale today! reply stop to end", True),  # case-insensitive
        ("US", "Sale today! Text STOPS", False),  # a whole word only
        ("US", "Nonstop deals", False),
        ("US", "Sale. Opt  out: reply here", True),  # any whitespace inside a phrase
        ("US", "Sale. STOP.", True),  # punctuation is a word boundary
        ("US", "Sale today!", False),
        ("FR", "Promo -20% STOP au 36111", True),
        ("DE", "Angebot! Abmelden unter 0800", True),
        ("BR", "Oferta! Responda SAIR", True),
        ("IN", "Offer! To opt out call 1909", True),
    ],
)
def test_has_opt_out(book, country, body, found):
    assert book.get(country).has_opt_out(body) is found


# --- the override file ---


def write_override(config_dir: Path, text: str) -> Path:
    path = config_dir / "compliance-rules.toml"
    path.write_text(text, encoding="utf-8")
    return path


NZ = """
[countries.NZ]
name = "New Zealand"
sender_types = ["long_code", "short_code"]
consent = { required = true, applies = "promotional" }
opt_out = { required = true, applies = "promotional", phrases = ["STOP"], example = "Reply STOP to opt out" }
sources = [
  { rule = "sender_types", title = "Twilio SMS Guidelines: New Zealand", url = "https://www.twilio.com/en-us/guidelines/nz/sms" },
  { rule = "consent", title = "Unsolicited Electronic Messages Act 2007", url = "https://www.legislation.govt.nz/act/public/2007/0007/latest/" },
  { rule = "opt_out", title = "Unsolicited Electronic Messages Act 2007, s11", url = "https://www.legislation.govt.nz/act/public/2007/0007/latest/" },
]
"""

US_REPLACED = """
version = "acme-1"
filtered_link_domains = ["short.example"]

[countries.US]
name = "United States (ACME policy)"
sender_types = ["short_code"]
registration = { short_code = "short_code_program" }
consent = { required = true, applies = "all" }
quiet_hours = { start = "09:00", end = "20:00", applies = "all" }
opt_out = { required = true, applies = "all", phrases = ["STOP"], example = "Text STOP to quit" }
sources = [
  { rule = "sender_types", title = "ACME messaging policy", url = "https://policy.example/sms" },
  { rule = "registration", title = "ACME messaging policy", url = "https://policy.example/sms" },
  { rule = "consent", title = "ACME messaging policy", url = "https://policy.example/sms" },
  { rule = "quiet_hours", title = "ACME messaging policy", url = "https://policy.example/sms" },
  { rule = "opt_out", title = "ACME messaging policy", url = "https://policy.example/sms" },
]
"""


def test_without_an_override_file_the_package_rules_stand(tmp_path):
    book = load_rules(tmp_path)
    assert book.version == "2026-12-02"
    assert book.files == (str(package_rules_path()),)


def test_override_adds_a_country_and_keeps_the_rest(tmp_path):
    path = write_override(tmp_path, NZ)
    book = load_rules(tmp_path)
    assert book.get("NZ").name == "New Zealand"
    assert book.get("NZ").quiet_hours is None
    assert book.get("US").sender_types == ("long_code", "short_code", "toll_free")
    assert book.files == (str(package_rules_path()), str(path))
    assert book.version == "2026-12-02"


def test_override_replaces_a_country_whole_and_adds_link_domains(tmp_path):
    write_override(tmp_path, US_REPLACED)
    book = load_rules(tmp_path)
    us = book.get("US")
    assert us.name == "United States (ACME policy)"
    assert us.sender_types == ("short_code",)
    assert dict(us.registration) == {"short_code": "short_code_program"}
    assert (us.quiet_hours.words(), us.quiet_hours.applies) == ("09:00–20:00", "all")
    assert book.version == "2026-12-02 (override acme-1)"
    assert "short.example" in book.filtered_link_domains and "bit.ly" in book.filtered_link_domains
    assert book.get("IN").promotional_window.words() == "09:00–21:00"


def test_an_edited_override_is_read_again(tmp_path):
    path = write_override(tmp_path, NZ)
    assert load_rules(tmp_path).get("NZ").name == "New Zealand"
    path.write_text(NZ.replace('name = "New Zealand"', 'name = "Aotearoa New Zealand"'), encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert load_rules(tmp_path).get("NZ").name == "Aotearoa New Zealand"


def problems_of(tmp_path: Path, text: str) -> tuple[str, ...]:
    write_override(tmp_path, text)
    with pytest.raises(RulesError) as caught:
        load_rules(tmp_path)
    return caught.value.problems


@pytest.mark.parametrize(
    ("edit", "field", "reason"),
    [
        (('start = "09:00"', 'start = "9am"'), "countries.US.quiet_hours.start", "must be HH:MM (got '9am')"),
        (('end = "20:00"', 'end = "24:00"'), "countries.US.quiet_hours.end", "must be HH:MM (got '24:00')"),
        (('sender_types = ["short_code"]', 'sender_types = ["short_code", "shortcode"]'), "countries.US.sender_types[1]", "unknown sender type 'shortcode'"),
        (('consent = { required = true, applies = "all" }', 'consent = { required = true, appiles = "all" }'), "countries.US.consent.appiles", "unknown key"),
        (('name = "United States (ACME policy)"', 'name = "United States (ACME policy)"\nquiet_hour = 1'), "countries.US.quiet_hour", "unknown key"),
        (('version = "acme-1"', 'version = "acme-1"\nfiltered_links = []'), "filtered_links", "unknown key"),
        (('  { rule = "quiet_hours", title = "ACME messaging policy", url = "https://policy.example/sms" },\n', ""), "countries.US.sources", "no source for quiet_hours"),
        (('registration = { short_code = "short_code_program" }', 'registration = { short_code = "10DLC" }'), "countries.US.registration.short_code", "must be one of"),
        (('registration = { short_code = "short_code_program" }', 'registration = { long_code = "10dlc" }'), "countries.US.registration.long_code", "sender type not in sender_types"),
        (('applies = "all" }\nopt_out', 'applies = "some" }\nopt_out'), "countries.US.quiet_hours.applies", "must be one of all, promotional"),
        (('example = "Text STOP to quit"', 'example = "Text QUIT to quit"'), "countries.US.opt_out.example", "must contain one of the phrases"),
        (('url = "https://policy.example/sms" },\n  { rule = "registration"', 'url = "policy.example/sms" },\n  { rule = "registration"'), "countries.US.sources[0].url", "must start with https://"),
        (('{ rule = "consent"', '{ rule = "consnet"'), "countries.US.sources[2].rule", "must be one of"),
        (('[countries.US]', '[countries.usa]'), "countries.usa", "two capital letters"),
        (('start = "09:00", end = "20:00"', 'start = "09:00", end = "09:00"'), "countries.US.quiet_hours.end", "must differ from start"),
    ],
)
def test_loader_names_the_file_and_the_dotted_field(tmp_path, edit, field, reason):
    old, new = edit
    assert old in US_REPLACED
    problems = problems_of(tmp_path, US_REPLACED.replace(old, new, 1))
    expected_prefix = f"{tmp_path / 'compliance-rules.toml'}: {field}: "
    assert any(p.startswith(expected_prefix) and reason in p for p in problems), problems


def test_loader_reports_every_problem_at_once(tmp_path):
    text = US_REPLACED.replace('start = "09:00"', 'start = "9"').replace('sender_types = ["short_code"]', 'sender_types = ["pigeon", "short_code"]')
    problems = problems_of(tmp_path, text)
    assert any("countries.US.quiet_hours.start" in p for p in problems)
    assert any("countries.US.sender_types[0]" in p for p in problems)


def test_a_missing_required_rule_is_named(tmp_path):
    text = NZ.replace('consent = { required = true, applies = "promotional" }\n', "")
    problems = problems_of(tmp_path, text)
    assert any(p.endswith("countries.NZ.consent: missing") for p in problems), problems


def test_a_file_that_is_not_toml_says_so(tmp_path):
    problems = problems_of(tmp_path, "[countries.US\nname = 1")
    assert len(problems) == 1 and problems[0].startswith(f"{tmp_path / 'compliance-rules.toml'}: not valid TOML")


def test_rules_error_is_a_value_error_with_one_line_per_problem(tmp_path):
    write_override(tmp_path, US_REPLACED.replace('start = "09:00"', 'start = "x"'))
    with pytest.raises(ValueError) as caught:
        load_rules(tmp_path)
    assert "countries.US.quiet_hours.start: must be HH:MM" in str(caught.value)


def test_the_words_are_the_designs():
    assert SENDER_TYPES == ("long_code", "short_code", "toll_free", "alphanumeric")
    assert RULE_NAMES == ("sender_types", "registration", "consent", "quiet_hours", "promotional_window", "opt_out")
