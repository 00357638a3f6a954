"""What the engine reads from an adapter's capabilities holds for every adapter in the registry:
a status lookup is declared exactly where `fetch_statuses` is implemented, and a receipt delay
names one of the adapter's own settings."""

from __future__ import annotations

import pytest

from smsconsole.providers import REGISTRY
from smsconsole.providers.base import Provider


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_status_lookup_is_declared_where_fetch_statuses_is_implemented(kind: str) -> None:
    adapter = REGISTRY[kind]
    implemented = adapter.fetch_statuses is not Provider.fetch_statuses
    assert adapter.capabilities.status_lookup is implemented


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_a_receipt_delay_names_one_of_the_adapters_settings(kind: str) -> None:
    adapter = REGISTRY[kind]
    setting = adapter.capabilities.receipt_delay_field
    assert not setting or setting in {field.name for field in adapter.config_fields}


def test_only_the_sandbox_makes_its_own_receipts() -> None:
    assert [kind for kind, adapter in REGISTRY.items() if adapter.capabilities.receipt_delay_field] == ["sandbox"]
