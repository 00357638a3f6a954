"""The console's sections: each one is a Textual mode with a key, a tab and palette commands."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Section:
    mode: str
    title: str
    key: str
    tooltip: str
    short: str = ""  # the tab's title on a narrow terminal, when `title` is too long for six tabs

    @property
    def short_title(self) -> str:
        return self.short or self.title

    @property
    def fkey(self) -> str:
        """The F-key that switches to it from anywhere: F1-F9, and F10 for 0."""
        return f"f{int(self.key) or 10}"


SECTIONS: tuple[Section, ...] = (
    Section("home", "Home", "1", "Engine status, provider health and today's message counts"),
    Section("providers", "Providers", "2", "Add, edit, remove and test SMS providers", short="Prov"),
    Section("test-send", "Test send", "3", "Send a test SMS and watch its status change live", short="Test"),
    Section("settings", "Settings", "4", "Default region, callback URL, API keys, configuration and audit log",
            short="Sett"),
    Section("audience", "Audience", "5", "Find people by phone, user id or name; open a profile; import a file",
            short="Aud"),
    Section("segments", "Segments", "6", "Saved segments: build, estimate reach, duplicate and delete", short="Seg"),
    Section("groups", "Groups", "7", "Provider groups: priority order, failover, countries, health", short="Grp"),
    Section("inbox", "Inbox", "8", "Replies as they arrive: keyword matched, action taken, the message answered"),
    Section("stats", "Stats", "9", "Live delivery stats per provider, with throughput"),
    Section("campaigns", "Campaigns", "0", "Campaigns: create with the When/Who/What wizard, runs with live counts, "
            "pause, resume, stop", short="Camp"),
)
