"""Every adapter module is in the registry, declared the same way (courier's rule: one module per
channel, an explicit registry)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import subprocess
import sys

import pytest

import smsconsole.providers as providers_package
from smsconsole.providers import ADAPTERS, REGISTRY, provider_class
from smsconsole.providers.base import RECEIPT_STATES, Capabilities, ErrorKind, ErrorRules, Provider

SUPPORT_MODULES = {"base"}  # shared code, not adapters
PACKAGE = providers_package.__name__ + "."
PROVIDER_MODULES = sorted(m.name.removeprefix(PACKAGE) for m in pkgutil.walk_packages(providers_package.__path__, PACKAGE)
                          if not m.ispkg and m.name.removeprefix(PACKAGE) not in SUPPORT_MODULES)
EXPECTED_KINDS = {"twilio", "generic", "sandbox", "vonage", "plivo", "msg91", "exotel", "netcore", "textlocal",
                  "bulksms", "sinch", "infobip", "smpp"}


@pytest.mark.parametrize("module_name", PROVIDER_MODULES)
def test_every_adapter_module_is_registered(module_name: str) -> None:
    module = importlib.import_module(PACKAGE + module_name)
    adapters = [cls for _, cls in inspect.getmembers(module, inspect.isclass)
                if issubclass(cls, Provider) and cls is not Provider and cls.__module__ == module.__name__]
    for adapter in adapters:
        assert REGISTRY.get(adapter.kind) is adapter, f"{adapter.__name__} ({adapter.kind}) is not in REGISTRY"
    registered = {spec.partition(":")[0] for spec in ADAPTERS.values()}
    assert bool(adapters) == (module_name in registered), f"{module_name}: an adapter module defines one adapter"


def test_every_kind_the_issue_names_is_registered() -> None:
    assert EXPECTED_KINDS <= set(REGISTRY)


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_adapters_declare_themselves_fully(kind: str) -> None:
    adapter = REGISTRY[kind]
    assert adapter.display_name and adapter.description
    assert isinstance(adapter.capabilities, Capabilities) and adapter.capabilities.max_batch >= 1
    names = [f.name for f in adapter.config_fields]
    assert len(names) == len(set(names)), "a config field is declared twice"
    assert not {"name", "base_url", "enabled", "preset"} & set(names), "a field would shadow a form field or CLI flag"
    assert all(f.label and f.help for f in adapter.config_fields), "every field needs a label and help"
    # Infobip's base URL is per account, a required setting; SMPP binds to a host and port, not a URL
    if kind not in ("sandbox", "generic", "infobip", "smpp"):
        assert adapter.default_base_url.startswith("https://"), "a real provider's default endpoint is HTTPS"


def test_importing_the_registry_loads_no_adapter_and_no_httpx() -> None:
    """The CLI and console import the registry at start-up; adapters and httpx load on first use."""
    code = ("import sys, smsconsole.providers, smsconsole.providers.base\n"
            "print(sorted(m for m in sys.modules if m == 'httpx' or m.startswith('smsconsole.providers.')))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "['smsconsole.providers.base', 'smsconsole.providers.common']"


def test_registry_reads_like_a_mapping_and_loads_on_lookup() -> None:
    assert list(REGISTRY) == list(ADAPTERS) and len(REGISTRY) == len(ADAPTERS)
    assert "twilio" in REGISTRY and "nope" not in REGISTRY and REGISTRY.get("nope") is None
    assert provider_class("twilio").__name__ == "TwilioProvider" and REGISTRY["twilio"].kind == "twilio"


ERROR_SPACES = {"code", "report", "status", "http", "warning", "words"}
# The names error tables went by before ERROR_RULES: none may come back.
OLD_TABLES = {"ERROR_CODES", "ERROR_TYPES", "DETAILED_CODES", "HTTP_ERRORS", "ERROR_PATTERNS", "REJECTED_STATUSES",
              "STATUS_ERRORS", "REPORT_CODES", "DLR_ERROR_CODES", "WARNING_CODES", "FAILURE_SUBTYPES", "_ERROR_HINTS"}


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_every_adapter_module_has_the_same_shape(kind: str) -> None:
    """One adapter class, one ERROR_RULES table (maybe empty) and, where the provider has statuses
    of its own, a STATUS_MAP onto receipt states."""
    adapter = REGISTRY[kind]
    module = importlib.import_module(adapter.__module__)
    defined = [cls for _, cls in inspect.getmembers(module, inspect.isclass)
               if issubclass(cls, Provider) and cls.__module__ == module.__name__]
    assert defined == [adapter]
    rules = module.ERROR_RULES
    assert isinstance(rules, ErrorRules)
    assert len({(rule.on, rule.code) for rule in rules}) == len(rules), "a code is listed twice"
    for rule in rules:
        assert isinstance(rule.kind, ErrorKind) and rule.on in ERROR_SPACES and rule.code
        if rule.on == "words":
            re.compile(rule.code)
    status_map = getattr(module, "STATUS_MAP", {})
    assert isinstance(status_map, dict) and set(status_map.values()) <= {*RECEIPT_STATES, None}
    assert not OLD_TABLES & set(vars(module)), "error tables are ERROR_RULES"
