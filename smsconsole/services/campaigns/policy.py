"""A campaign's compliance choices and budget, two optional top-level parts of its document:

    compliance:
      category: promotional     # promotional (the default) | transactional | service: which
                                # country rules apply (quiet hours, promotional windows, opt-out text)
      on_block: hold            # at run start, a country with a blocking finding: hold the run
                                # (the default) or suppress that country's recipients and send the rest
    budget:
      amount: 250               # the most one run may cost (estimated before it starts)
      currency: USD

Both are read by the preflight (services/compliance/preflight.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from smsconsole.services.campaigns.fields import Problems, Reader

CATEGORIES = ("promotional", "transactional", "service")
ON_BLOCK = ("hold", "suppress")
MAX_BUDGET = 1_000_000_000.0


@dataclass(frozen=True)
class Compliance:
    category: str = "promotional"
    on_block: str = "hold"


@dataclass(frozen=True)
class Budget:
    amount: float
    currency: str = "USD"


def parse_compliance(data: Any, problems: Problems) -> Compliance:
    if data in (None, {}, ""):
        return Compliance()
    r = Reader(data, "compliance", problems)
    if not isinstance(data, Mapping):
        return Compliance()
    for key in sorted(set(data) - {"category", "on_block"}):
        r.problem(str(key), "unknown field; compliance has category and on_block")
    return Compliance(r.choice("category", CATEGORIES, "promotional"), r.choice("on_block", ON_BLOCK, "hold"))


def parse_budget(data: Any, problems: Problems) -> Budget | None:
    if data in (None, {}, ""):
        return None
    r = Reader(data, "budget", problems)
    if not isinstance(data, Mapping):
        return None
    for key in sorted(set(data) - {"amount", "currency"}):
        r.problem(str(key), "unknown field; a budget has amount and currency")
    if data.get("amount") in (None, ""):
        r.problem("amount", "give the most a run may cost, e.g. 250")
        return None
    amount = r.number("amount", low=0, high=MAX_BUDGET, default=-1.0)
    currency = r.text("currency", max_len=3) or "USD"
    if not (len(currency) == 3 and currency.isalpha()):
        r.problem("currency", "must be a three-letter currency code such as USD, EUR or INR")
        return None
    return Budget(amount, currency.upper()) if amount > 0 else None


def compliance_dict(value: Compliance) -> dict[str, Any] | None:
    return None if value == Compliance() else {"category": value.category, "on_block": value.on_block}


def budget_dict(value: Budget | None) -> dict[str, Any] | None:
    return None if value is None else {"amount": value.amount, "currency": value.currency}
