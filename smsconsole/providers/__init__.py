"""The explicit registry of provider adapters, by kind (tests/providers/test_registry.py fails when
an adapter module is missing from it). Each adapter is named as "module:Class" and imported on
first use, so importing this package costs neither the adapters nor httpx (CLI and console
start-up)."""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from smsconsole.providers.base import Provider

ADAPTERS: dict[str, str] = {
    "twilio": "twilio:TwilioProvider",
    "vonage": "vonage:VonageProvider",
    "plivo": "plivo:PlivoProvider",
    "sinch": "sinch:SinchProvider",
    "infobip": "infobip:InfobipProvider",
    "bulksms": "bulksms:BulkSmsProvider",
    "textlocal": "textlocal:TextlocalProvider",
    "msg91": "msg91:Msg91Provider",
    "exotel": "exotel:ExotelProvider",
    "netcore": "netcore:NetcoreProvider",
    "generic": "generic.adapter:GenericHttpProvider",
    "smpp": "smpp.adapter:SmppProvider",
    "sandbox": "sandbox:SandboxProvider",
}


class Registry(Mapping[str, "type[Provider]"]):
    """kind → adapter class, importing an adapter's module the first time its kind is looked up."""

    def __init__(self, adapters: Mapping[str, str]) -> None:
        self._adapters = dict(adapters)
        self._loaded: dict[str, type[Provider]] = {}

    def __getitem__(self, kind: str) -> type[Provider]:
        if kind not in self._loaded:
            module_name, _, class_name = self._adapters[kind].partition(":")
            module = importlib.import_module(f"{__name__}.{module_name}")
            self._loaded[kind] = getattr(module, class_name)
        return self._loaded[kind]

    def __contains__(self, kind: object) -> bool:
        return kind in self._adapters

    def __iter__(self) -> Iterator[str]:
        return iter(self._adapters)

    def __len__(self) -> int:
        return len(self._adapters)


REGISTRY = Registry(ADAPTERS)


def provider_class(kind: str) -> type[Provider]:
    """The adapter class for `kind`; KeyError when there is none."""
    return REGISTRY[kind]
