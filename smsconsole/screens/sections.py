"""The console's sections: each one is a Textual mode with a key, a tab and palette commands."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Section:
    mode: str
    title: str
    key: str
    tooltip: str


SECTIONS: tuple[Section, ...] = (
    Section("home", "Home", "1", "Engine status, provider health and today's message counts"),
    Section("providers", "Providers", "2", "Add, edit, remove and test SMS providers"),
    Section("test-send", "Test send", "3", "Send a test SMS and watch its status change live"),
    Section("settings", "Settings", "4", "Default region, callback URL, configuration and audit log"),
)
