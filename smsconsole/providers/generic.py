"""Placeholder, replaced by the full adapter."""

from smsconsole.providers.base import Provider


class GenericHttpProvider(Provider):
    kind = "generic"
    display_name = "Generic HTTP"
