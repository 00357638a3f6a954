"""Why people of a run were held back before any message was written, in words: the codes kept
in campaign_runs.suppressed (and in estimates), for the CLI, the console and reports."""

from __future__ import annotations

from collections.abc import Mapping

from smsconsole.services.queries.reach import UNREACHABLE_REASONS

HELD_BACK_WORDS: dict[str, str] = {
    **dict(UNREACHABLE_REASONS),
    "sampled_out": "outside the reach sample",
    "target_limit": "over the target limit",
    "run_limit": "over the run limit",
    "daily_limit": "over the daily limit",
    "local_time_passed": "local time already passed",
    "dnd_discard": "do-not-disturb hours (discarded)",
}


def held_back_words(code: str) -> str:
    """The words for a held-back reason code (an unknown code is shown as it is)."""
    return HELD_BACK_WORDS.get(code, code.replace("_", " "))


def describe_held_back(reasons: Mapping[str, int]) -> str:
    """'unsubscribed 150, outside the reach sample 826', largest first, zero counts left out."""
    items = sorted(((held_back_words(code), n) for code, n in reasons.items() if n), key=lambda item: -item[1])
    return ", ".join(f"{words} {n:,}" for words, n in items)
