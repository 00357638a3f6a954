"""The explicit registry of provider adapters, by kind (tests/providers/test_registry.py fails when
an adapter module is missing from it)."""

from __future__ import annotations

from smsconsole.providers.base import Provider
from smsconsole.providers.bulksms import BulkSmsProvider
from smsconsole.providers.exotel import ExotelProvider
from smsconsole.providers.generic import GenericHttpProvider
from smsconsole.providers.infobip import InfobipProvider
from smsconsole.providers.msg91 import Msg91Provider
from smsconsole.providers.netcore import NetcoreProvider
from smsconsole.providers.plivo import PlivoProvider
from smsconsole.providers.sandbox import SandboxProvider
from smsconsole.providers.sinch import SinchProvider
from smsconsole.providers.textlocal import TextlocalProvider
from smsconsole.providers.twilio import TwilioProvider
from smsconsole.providers.vonage import VonageProvider

REGISTRY: dict[str, type[Provider]] = {
    provider.kind: provider
    for provider in (
        TwilioProvider, VonageProvider, PlivoProvider, SinchProvider, InfobipProvider, BulkSmsProvider,
        TextlocalProvider, Msg91Provider, ExotelProvider, NetcoreProvider, GenericHttpProvider, SandboxProvider,
    )
}


def provider_class(kind: str) -> type[Provider]:
    """The adapter class for `kind`; KeyError when there is none."""
    return REGISTRY[kind]
