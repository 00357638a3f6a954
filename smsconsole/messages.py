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


@dataclass
class ImportProgressed(Message):
    """A running import read further into its file. Only the latest matters, so a pending one is
    replaced rather than queued behind (a big file reports thousands of batches)."""

    rows: int
    bytes_read: int
    file_size: int

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ImportProgressed)


@dataclass
class AudienceImported(Message):
    """A file of profiles or events was imported (some rows may have been bad)."""

    kind: str
    rows: int
    bad_rows: int


@dataclass
class SubscriptionChanged(Message):
    """An operator subscribed or unsubscribed one profile."""

    profile_id: int
    state: str


@dataclass
class ApiKeyCreated(Message):
    """A key was created. Carries only its public prefix: the key itself is shown once, never sent."""

    name: str
    prefix: str


@dataclass
class ApiKeyRevoked(Message):
    prefix: str
