"""Command palette commands that name a provider or a group: "Test provider connection: NAME",
"Edit group: NAME", ..."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

from smsconsole.services.groups import list_groups
from smsconsole.services.providers import list_providers

if TYPE_CHECKING:
    from smsconsole.app import SmsConsoleApp


class _NamedCommands(Provider):
    """Commands built from names read from the database when the palette opens."""

    names: tuple[str, ...] = ()

    async def read_names(self, session: Any) -> tuple[str, ...]:
        raise NotImplementedError

    async def startup(self) -> None:
        app = cast("SmsConsoleApp", self.app)
        runtime = await app.runtime()
        async with runtime.factory() as session:
            self.names = await self.read_names(session)

    def _commands(self) -> list[tuple[str, str, Callable[[], Awaitable[Any]]]]:
        raise NotImplementedError

    async def discover(self) -> Hits:
        for title, help_text, callback in self._commands():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in self._commands():
            if (score := matcher.match(title)) > 0:
                yield Hit(score, matcher.highlight(title), callback, text=title, help=help_text)


class ProviderCommands(_NamedCommands):
    async def read_names(self, session: Any) -> tuple[str, ...]:
        return tuple(view.name for view in await list_providers(session))

    def _commands(self) -> list[tuple[str, str, Callable[[], Awaitable[Any]]]]:
        app = cast("SmsConsoleApp", self.app)
        commands: list[tuple[str, str, Callable[[], Awaitable[Any]]]] = []
        for name in self.names:
            commands.append((f"Test provider connection: {name}", "Check credentials and reachability; sends nothing",
                             partial(app.test_provider_connection, name)))
            commands.append((f"Edit provider: {name}", "Open the provider's form",
                             partial(app.edit_provider, name)))
        return commands


class GroupCommands(_NamedCommands):
    async def read_names(self, session: Any) -> tuple[str, ...]:
        return tuple(view.name for view in await list_groups(session))

    def _commands(self) -> list[tuple[str, str, Callable[[], Awaitable[Any]]]]:
        app = cast("SmsConsoleApp", self.app)
        commands: list[tuple[str, str, Callable[[], Awaitable[Any]]]] = []
        for name in self.names:
            commands.append((f"Edit group: {name}", "Open the group's form: providers, order, countries",
                             partial(app.edit_group, name)))
            commands.append((f"Make default group: {name}", "Messages with no group or country group use it",
                             partial(app.make_default_group, name)))
        return commands


class CampaignCommands(_NamedCommands):
    """Open, pause, resume and stop a campaign by name or Campaign ID."""

    campaigns: tuple[tuple[str, str, str], ...] = ()  # (code, name, state)

    async def startup(self) -> None:
        from smsconsole.services.campaigns.crud import list_campaigns  # noqa: PLC0415 (lazy: the palette's first use)

        app = cast("SmsConsoleApp", self.app)
        runtime = await app.runtime()
        async with runtime.factory() as session:
            self.campaigns = tuple((view.code, view.name, view.state) for view in await list_campaigns(session))

    def _commands(self) -> list[tuple[str, str, Callable[[], Awaitable[Any]]]]:
        app = cast("SmsConsoleApp", self.app)
        commands: list[tuple[str, str, Callable[[], Awaitable[Any]]]] = []
        for code, name, state in self.campaigns:
            commands.append((f"Open campaign: {name} ({code})", f"Its choices and runs with live counts ({state})",
                             partial(app.open_campaign, code)))
            if state in ("scheduled", "running"):
                commands.append((f"Pause campaign: {name} ({code})", "Nothing of it leaves until it resumes",
                                 partial(app.campaign_action, code, "pause")))
            if state in ("paused", "blocked"):
                commands.append((f"Resume campaign: {name} ({code})", "Its held messages go out again",
                                 partial(app.campaign_action, code, "resume")))
            if state in ("scheduled", "running", "paused", "blocked"):
                commands.append((f"Stop campaign: {name} ({code})", "No more runs; asks first",
                                 partial(app.campaign_action, code, "stop")))
        return commands
