"""DLT template matching: variables, spacing, case, Unicode, placeholders, metacharacters, best match."""

from __future__ import annotations

import unicodedata

import pytest

from smsconsole.services.compliance.dlt import (
    MAX_VARIABLE,
    VARIABLE,
    best_match,
    liquid_skeleton,
    match_template,
)

OTP = "Dear {#var#}, your OTP is {#var#}. Do not share it. - ACME"


@pytest.mark.parametrize(
    ("template", "body", "values"),
    [
        # no variable
        ("Your parcel has shipped. - ACME", "Your parcel has shipped. - ACME", ()),
        # one variable
        ("Your OTP is {#var#}. - ACME", "Your OTP is 482913. - ACME", ("482913",)),
        # several variables
        (OTP, "Dear Asha, your OTP is 1234. Do not share it. - ACME", ("Asha", "1234")),
        # a variable may take several words
        (OTP, "Dear Asha Rao, your OTP is 1234. Do not share it. - ACME", ("Asha Rao", "1234")),
        # at the start and at the end
        ("{#var#} is your code", "5521 is your code", ("5521",)),
        ("Your code is {#var#}", "Your code is 5521", ("5521",)),
        # empty values, with the whitespace around them
        ("Your code is {#var#}", "Your code is", ("",)),
        ("{#var#} is your code", "is your code", ("",)),
        ("Hi {#var#} welcome", "Hi welcome", ("",)),
        # adjacent variables share their budget, 30 each from the left
        ("Track {#var#}{#var#}", "Track " + "a" * 45, ("a" * 30, "a" * 15)),
        ("Track {#var#}{#var#} now", "Track https://ex.example/t/1 now", ("https://ex.example/t/1", "")),
        # exactly 30 characters
        ("Code {#var#} ok", "Code " + "x" * 30 + " ok", ("x" * 30,)),
        # the whole template a variable
        ("{#var#}", "anything at all", ("anything at all",)),
    ],
)
def test_matching_bodies_give_each_variable_its_value(template, body, values):
    match = match_template(template, body)
    assert match.ok, match.difference
    assert match.values == values
    assert match.difference == ""


def test_thirty_one_characters_is_one_too_many():
    match = match_template("Code {#var#} ok", "Code " + "x" * 31 + " ok")
    assert not match.ok
    assert match.difference == "variable 1 takes 31 characters, at most 30"
    assert MAX_VARIABLE == 30


def test_the_too_long_variable_is_named_by_its_number():
    match = match_template(OTP, "Dear Asha, your OTP is " + "9" * 41 + ". Do not share it. - ACME")
    assert match.difference == "variable 2 takes 41 characters, at most 30"


def test_adjacent_variables_over_their_shared_budget():
    match = match_template("Track {#var#}{#var#}", "Track " + "a" * 61)
    assert match.difference == "variables 1–2 take 61 characters, at most 60"


# --- spacing ---


@pytest.mark.parametrize(
    "body",
    [
        "Dear  Asha,  your OTP is 1234.   Do not share it. - ACME",  # double spaces
        "Dear Asha, your OTP is 1234. Do not share it. - ACME\n",  # trailing newline
        "  Dear Asha, your OTP is 1234. Do not share it. - ACME",  # leading spaces
        "Dear Asha,\nyour OTP is 1234.\tDo not share it. - ACME",  # newline and tab between words
    ],
)
def test_runs_of_whitespace_equal_one_another(body):
    match = match_template(OTP, body)
    assert match.ok, match.difference
    assert match.values == ("Asha", "1234")


def test_template_spacing_is_normalised_too():
    assert match_template("Your  OTP\nis {#var#}", "Your OTP is 1").ok


def test_missing_whitespace_is_a_difference():
    match = match_template("Pay Rs. {#var#} today", "Pay Rs.500 today")
    assert not match.ok
    assert match.difference == 'template has "Rs.", message has "Rs.500" (word 2)'


# --- which words differ ---


@pytest.mark.parametrize(
    ("body", "difference"),
    [
        ("Hi Asha, your OTP is 1234. Do not share it. - ACME", 'template has "Dear", message has "Hi" (word 1)'),
        ("Dear Asha, your code is 1234. Do not share it. - ACME", 'template has "OTP", message has "code" (word 4)'),
        ("Dear Asha, your OTP is 1234. Do not share it. - ACME Ltd", 'message has extra words at the end: "Ltd" (word 13)'),
        ("Dear Asha, your OTP", 'message ends early: template continues with "is {#var#}. Do not share it. - ACME" (word 5)'),
        ("", 'message ends early: template continues with "Dear {#var#}, your OTP is {#var#}. Do …" (word 1)'),
    ],
)
def test_the_difference_names_the_first_differing_word(body, difference):
    match = match_template(OTP, body)
    assert not match.ok and match.values == ()
    assert match.difference == difference


def test_a_word_that_only_starts_like_the_template_word_differs():
    assert match_template("Hi John", "Hi Johnny").difference == 'template has "John", message has "Johnny" (word 2)'


# --- case ---


def test_letter_case_matters_and_the_difference_says_so():
    match = match_template(OTP, "dear Asha, your OTP is 1234. Do not share it. - ACME")
    assert not match.ok
    assert match.difference == (
        'template has "Dear", message has "dear" (word 1): only the letter case differs, and DLT matching is case-sensitive'
    )


def test_a_variable_takes_any_case():
    assert match_template(OTP, "Dear ASHA, your OTP is AbC1. Do not share it. - ACME").values == ("ASHA", "AbC1")


# --- Unicode ---


def test_composed_and_decomposed_accents_are_the_same_letter():
    composed = "Café {#var#} ouvert"
    decomposed_body = unicodedata.normalize("NFD", "Café Lumière ouvert")
    assert decomposed_body != "Café Lumière ouvert"
    match = match_template(composed, decomposed_body)
    assert match.ok and match.values == ("Lumière",)
    assert match_template(unicodedata.normalize("NFD", composed), "Café Lumière ouvert").ok


def test_hindi_text_and_the_rupee_sign():
    template = "प्रिय {#var#}, आपका ₹{#var#} का भुगतान सफल रहा। - ACME"
    match = match_template(template, "प्रिय राहुल, आपका ₹1,250 का भुगतान सफल रहा। - ACME")
    assert match.ok and match.values == ("राहुल", "1,250")
    miss = match_template(template, "प्रिय राहुल, आपका ₹1,250 का भुगतान विफल रहा। - ACME")
    assert miss.difference == 'template has "सफल", message has "विफल" (word 7)'


def test_a_variable_length_counts_characters_not_bytes():
    assert match_template("नाम {#var#}", "नाम " + "क" * 30).ok
    assert match_template("Pay ₹{#var#}", "Pay ₹" + "₹" * 30).ok


# --- the placeholder's spelling ---


@pytest.mark.parametrize("placeholder", ["{#var#}", "{#VAR#}", "{#Var#}", "{# var #}", "{#  VAR #}"])
def test_the_placeholder_is_matched_case_insensitively_with_spaces_inside(placeholder):
    match = match_template(f"Your OTP is {placeholder}. - ACME", "Your OTP is 7788. - ACME")
    assert match.ok and match.values == ("7788",)


def test_other_placeholder_spellings_are_literal_text():
    assert not match_template("Your OTP is ##var##", "Your OTP is 7788").ok


# --- regex metacharacters in the template are literal ---


@pytest.mark.parametrize(
    ("template", "body", "ok"),
    [
        ("Pay $5.00 now {#var#}", "Pay $5.00 now ok", True),
        ("Pay $5.00 now", "Pay $5x00 now", False),  # "." is not "any character"
        ("Total (incl. tax) {#var#}", "Total (incl. tax) 12", True),
        ("a+b*c? [x] {y} ^z|w \\d", "a+b*c? [x] {y} ^z|w \\d", True),
        ("Balance $ {#var#}", "Balance $ 10", True),
    ],
)
def test_regex_metacharacters_are_plain_text(template, body, ok):
    assert match_template(template, body).ok is ok


# --- best_match ---

TEMPLATES = [
    ("1107000000000000001", "Your OTP is {#var#}. - ACME"),
    ("1107000000000000002", "Dear {#var#}, your order {#var#} has shipped. - ACME"),
    ("1107000000000000003", "Dear {#var#}, your order {#var#} is out for delivery. - ACME"),
]


def test_best_match_picks_the_template_that_matches():
    template_id, match = best_match(TEMPLATES, "Dear Ravi, your order 8812 is out for delivery. - ACME")
    assert template_id == "1107000000000000003"
    assert match.ok and match.values == ("Ravi", "8812")


def test_best_match_returns_the_closest_with_its_difference_when_none_match():
    template_id, match = best_match(TEMPLATES, "Dear Ravi, your order 8812 is out for delivery today. - ACME")
    assert template_id == "1107000000000000003"
    assert not match.ok
    assert match.difference == 'template has "delivery.", message has "delivery" (word 9)'


def test_best_match_prefers_a_too_long_variable_over_a_different_text():
    template_id, match = best_match(TEMPLATES, "Your OTP is " + "1" * 35 + ". - ACME")
    assert template_id == "1107000000000000001"
    assert match.difference == "variable 1 takes 35 characters, at most 30"


def test_best_match_without_templates():
    template_id, match = best_match([], "anything")
    assert template_id is None and not match.ok and match.difference


# --- liquid_skeleton ---


def test_liquid_skeleton_replaces_each_output_with_the_placeholder():
    skeleton = liquid_skeleton("Hi {{ profile.name }}, your OTP is {{ event.code | upcase }}")
    assert skeleton == f"Hi {VARIABLE}, your OTP is {VARIABLE}"
    assert match_template(skeleton.replace("Hi", "Dear"), "Dear Asha, your OTP is 12").ok


def test_liquid_skeleton_honours_whitespace_control_and_leaves_tags():
    assert liquid_skeleton("Hi {{- name -}} !") == "Hi{#var#}!"
    assert liquid_skeleton("{% if vip %}VIP{% endif %} {{name}}") == "{% if vip %}VIP{% endif %} {#var#}"


def test_a_skeleton_checks_a_body_template_against_a_registered_template():
    skeleton = liquid_skeleton("Dear {{ profile.first_name }}, your order {{ order.id }} has shipped. - ACME")
    template_id, match = best_match(TEMPLATES, skeleton)
    assert template_id == "1107000000000000002" and match.ok


def test_a_many_variable_template_against_a_body_that_does_not_match_is_quick():
    """A backtracking regex took 15–50 s on these; the matcher is linear in tokens × length."""
    import time

    template = "{#var#} a {#var#} a {#var#} a {#var#} a {#var#} a {#var#} b"
    started = time.perf_counter()
    match = match_template(template, " ".join(["a"] * 80))
    miss = match_template("Dear {#var#} {#var#} {#var#} {#var#} {#var#} {#var#}, ready.", "Dear " + "w " * 40 + ", not ready.")
    assert not match.ok and not miss.ok
    assert time.perf_counter() - started < 1.0
