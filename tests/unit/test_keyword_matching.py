"""Keyword normalization: what counts as the whole reply being a keyword, in several languages."""

from __future__ import annotations

import pytest

from smsconsole.services.keywords import DEFAULT_KEYWORDS, normalize

DEFAULT_WORDS = {word: (action, language) for word, action, language in DEFAULT_KEYWORDS}

CASES = [
    # (reply as typed, the default keyword it is, or None for a plain reply)
    ("STOP", "STOP"),
    ("stop", "STOP"),
    ("Stop.", "STOP"),
    ("  STOP!! ", "STOP"),
    ("stop\n", "STOP"),
    ("opt-out", "OPT OUT"),
    ("Opt Out", "OPT OUT"),
    ("OPT   OUT", "OPT OUT"),
    ("optout", "OPTOUT"),
    ("Unsubscribe", "UNSUBSCRIBE"),
    ("revoke", "REVOKE"),
    ("Baja", "BAJA"),
    ("¡ALTO!", "ALTO"),
    ("parar.", "PARAR"),
    ("Detener", "DETENER"),
    ("Sair", "SAIR"),
    ("pare", "PARE"),
    ("Cancelar", "CANCELAR"),
    ("arrêt", "ARRET"),
    ("ARRÊT", "ARRET"),
    ("Arret !", "ARRET"),
    ("désabonner", "DESABONNER"),
    ("start", "START"),
    ("Unstop", "UNSTOP"),
    ("yes!", "YES"),
    ("Sí", "SI"),
    ("sim", "SIM"),
    ("Oui.", "OUI"),
    ("help?", "HELP"),
    ("info", "INFO"),
    ("¿Ayuda?", "AYUDA"),
    ("ajuda", "AJUDA"),
    ("Aide", "AIDE"),
    # not keywords: a keyword inside a longer reply is a reply
    ("stop sending me deals", None),
    ("Please stop", None),
    ("STOPP", None),
    ("st op", None),
    ("thanks!", None),
    ("", None),
    ("!!!", None),
    ("yes please", None),
]


@pytest.mark.parametrize(("text", "keyword"), CASES, ids=[repr(text) for text, _ in CASES])
def test_whole_reply_matches_a_default_keyword(text: str, keyword: str | None) -> None:
    normalized = normalize(text)
    found = normalized if normalized in DEFAULT_WORDS else None
    assert found == keyword


def test_defaults_cover_each_action_in_four_languages() -> None:
    pairs = {(action, language) for action, language in DEFAULT_WORDS.values()}
    for action in ("opt_out", "opt_in", "help"):
        assert {language for a, language in pairs if a == action} == {"en", "es", "pt", "fr"}


def test_default_words_are_stored_normalized_and_unique() -> None:
    words = [word for word, _, _ in DEFAULT_KEYWORDS]
    assert all(normalize(word) == word for word in words)
    assert len(words) == len(set(words))
