"""Placeholder, replaced by the full adapter."""

from smsconsole.providers.base import Provider


class TwilioProvider(Provider):
    kind = "twilio"
    display_name = "Twilio"
