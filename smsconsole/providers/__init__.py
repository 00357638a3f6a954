"""The explicit registry of provider adapters, by kind."""

from __future__ import annotations

from smsconsole.providers.base import Provider
from smsconsole.providers.generic import GenericHttpProvider
from smsconsole.providers.sandbox import SandboxProvider
from smsconsole.providers.twilio import TwilioProvider

REGISTRY: dict[str, type[Provider]] = {
    provider.kind: provider
    for provider in (TwilioProvider, GenericHttpProvider, SandboxProvider)
}


def provider_class(kind: str) -> type[Provider]:
    """The adapter class for `kind`; KeyError when there is none."""
    return REGISTRY[kind]
