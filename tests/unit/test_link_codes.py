"""Short-link codes (services/links.py): CODE_LENGTH characters of the 62-letter alphabet, drawn
with `secrets`: a million of them are (all but a handful) distinct, use every letter about equally
in every place, and follow no sequence; link-preview bots and bad long URLs are told apart."""

from __future__ import annotations

import itertools
import secrets
from collections import Counter

import pytest

from smsconsole.services import links
from smsconsole.services.links import (
    ALPHABET,
    CODE_LENGTH,
    LinkProblem,
    check_url,
    is_code,
    is_preview,
    new_code,
)

MILLION = 1_000_000


@pytest.fixture(scope="module")
def codes() -> list[str]:
    return [new_code() for _ in range(MILLION)]


def test_the_alphabet_is_62_letters_and_codes_are_7_of_them(codes: list[str]) -> None:
    assert len(ALPHABET) == len(set(ALPHABET)) == 62 and ALPHABET.isalnum() and ALPHABET.isascii()
    assert CODE_LENGTH >= 7
    assert all(len(code) == CODE_LENGTH and is_code(code) for code in codes)
    assert set("".join(codes[:10_000])) == set(ALPHABET)


def test_a_million_codes_are_unique(codes: list[str]) -> None:
    # 62^7 ≈ 3.5e12 codes: a million draws repeat one with probability ≈ n²/2N ≈ 0.14; the unique
    # index redraws such a code, so at most a couple of repeats may show here, never more.
    assert MILLION - len(set(codes)) <= 3


def test_every_place_uses_every_letter_about_equally(codes: list[str]) -> None:
    expected = MILLION / 62  # ≈ 16,129 per letter and place; 5 standard deviations is ≈ 630
    for place in range(CODE_LENGTH):
        counts = Counter(code[place] for code in codes)
        assert set(counts) == set(ALPHABET)
        assert max(abs(n - expected) for n in counts.values()) < 700, f"place {place}"


def test_codes_follow_no_sequence(codes: list[str]) -> None:
    def number(code: str) -> int:
        return sum(ALPHABET.index(c) * 62 ** i for i, c in enumerate(code))

    values = [number(code) for code in codes[:20_000]]
    steps = [b - a for a, b in itertools.pairwise(values)]
    assert len(set(steps)) > len(steps) * 0.99  # no constant or repeating step
    assert 0.45 < sum(1 for step in steps if step > 0) / len(steps) < 0.55  # up as often as down
    assert min(abs(step) for step in steps) > 62 ** 2  # neighbours are never close


def test_codes_come_from_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[int] = []

    def spy(n: int) -> int:
        drawn.append(n)
        return secrets.SystemRandom().randrange(n)

    monkeypatch.setattr(links.secrets, "randbelow", spy)
    new_code()
    assert drawn == [62 ** CODE_LENGTH]


@pytest.mark.parametrize("text", ["", "abc", "abcdef", "a" * 17, "abc-def", "abc/def1", "Ab3x9K\u0131", "Ab3x9Kq\n"])
def test_what_is_not_a_code(text: str) -> None:
    assert not is_code(text)


@pytest.mark.parametrize(("agent", "method", "preview"), [
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Safari/604.1", "GET", False),
    ("Mozilla/5.0 (Linux; Android 14) Chrome/120.0 Mobile Safari/537.36", "GET", False),
    ("Mozilla/5.0 (iPhone) Safari/604.1", "HEAD", True),
    ("facebookexternalhit/1.1", "GET", True), ("WhatsApp/2.23", "GET", True), ("TelegramBot (like TwitterBot)", "GET", True),
    ("Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)", "GET", True), ("", "GET", True), (None, "GET", True),
])
def test_previews_are_told_from_people(agent: str | None, method: str, preview: bool) -> None:
    assert is_preview(agent, method) is preview


@pytest.mark.parametrize("value", ["", None, "shop.example.com/x", "javascript:alert(1)", "ftp://x.example/a",
                                   "https://", "https://a.example/ b", "https://" + "a" * 3000 + ".example"])
def test_track_takes_only_http_urls(value: object) -> None:
    with pytest.raises(LinkProblem):
        check_url(value)


def test_track_keeps_a_good_url_as_is() -> None:
    assert check_url(" https://shop.example.com/cart?u=42&x=%20 ") == "https://shop.example.com/cart?u=42&x=%20"
