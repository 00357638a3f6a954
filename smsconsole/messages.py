"""Textual messages that cross screens: posted by the screen that did something, handled by the app
(e.g. poke the engine) and by any screen that shows the same data."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message


@dataclass
class ProviderSaved(Message):
    name: str
    created: bool


@dataclass
class ProviderRemoved(Message):
    name: str


@dataclass
class ProviderTested(Message):
    name: str
    ok: bool
    detail: str


@dataclass
class TestMessageQueued(Message):
    """A test message is in the outbox; the engine should dispatch now rather than at its next tick."""

    __test__ = False  # not a pytest test class

    message_id: int
    to_number: str
    provider_name: str


@dataclass
class SettingsSaved(Message):
    values: dict[str, str]
