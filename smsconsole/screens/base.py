"""What every section screen shares: the top bar, the footer, and the way to the runtime."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer
from textual.worker import Worker

from smsconsole.runtime import Runtime
from smsconsole.screens.dialogs.confirm import ConfirmDialog
from smsconsole.screens.widgets.errors import report_worker_error
from smsconsole.screens.widgets.live import LiveRefresh
from smsconsole.screens.widgets.top_bar import TopBar
from smsconsole.services.errors import ServiceError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from smsconsole.app import SmsConsoleApp

ACTOR = "console"
ResultT = TypeVar("ResultT")


class SectionScreen(Screen[ResultT]):
    """A section's base screen, or a screen pushed over it (a profile, the segment builder) that
    keeps its top bar. Subclasses set MODE and compose their body."""

    MODE: ClassVar[str]
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "leave_field", "Leave field", show=False, id="section.leave-field",
                tooltip="Move focus out of the field, so section keys work again"),
    ]

    def compose(self) -> ComposeResult:
        yield TopBar(self.MODE)
        yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> ComposeResult:
        raise NotImplementedError

    @property
    def console(self) -> SmsConsoleApp:
        return cast("SmsConsoleApp", self.app)

    async def runtime(self) -> Runtime:
        """The open runtime, once the app has opened it."""
        return await self.console.runtime()

    async def confirm_and_apply(self, title: str, question: str, confirm_label: str,
                                apply: Callable[[AsyncSession], Awaitable[object]], *, refused: str) -> bool | None:
        """Ask `question`; when confirmed, run `apply` in one transaction. A refusal by the service
        is shown (titled `refused`) and changes nothing. None: not confirmed; False: refused; True: done."""
        if not await self.app.push_screen_wait(ConfirmDialog(title, question, confirm_label=confirm_label,
                                                             destructive=True)):
            return None
        runtime = await self.runtime()
        try:
            async with runtime.factory() as session, session.begin():
                await apply(session)
        except ServiceError as exc:
            self.notify(str(exc), title=refused, severity="error", timeout=8)
            return False
        return True

    def action_leave_field(self) -> None:
        self.set_focus(None)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        report_worker_error(self.app, event)


class LiveSectionScreen(SectionScreen[ResultT]):
    """A section that refreshes itself from the database at a bounded rate while it is shown
    (dolphie's loop, widgets/live.py): paused when hidden, resumed when shown, `r` refreshes now."""

    _live: LiveRefresh | None = None

    def start_live(self, interval: float, start: Callable[[], Worker[Any]]) -> None:
        self._live = LiveRefresh(self, interval, start)

    def on_screen_resume(self) -> None:
        if self._live is not None:
            self._live.resume()

    def on_screen_suspend(self) -> None:
        if self._live is not None:
            self._live.pause()

    def action_refresh(self) -> None:
        if self._live is not None:
            self._live.tick()
