"""What every section screen shares: the top bar, the footer, and the way to the runtime."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from textual.app import ComposeResult
from textual.binding import ActiveBinding, Binding, BindingType
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Input, TextArea
from textual.worker import Worker

from smsconsole.runtime import Runtime
from smsconsole.screens.dialogs.confirm import ConfirmDialog
from smsconsole.screens.widgets.errors import report_worker_error
from smsconsole.screens.widgets.footer import FittingFooter
from smsconsole.screens.widgets.live import LiveRefresh
from smsconsole.screens.widgets.top_bar import TopBar
from smsconsole.services.errors import ServiceError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from smsconsole.app import SmsConsoleApp

ACTOR = "console"
ResultT = TypeVar("ResultT")
TEXT_FIELDS = (Input, TextArea)  # widgets that take printable keys, so section keys do not reach the app


class SectionScreen(Screen[ResultT]):
    """A section's base screen, or a screen pushed over it (a profile, the segment builder) that
    keeps its top bar. Subclasses set MODE and compose their body.

    Focus (issue 11): MAIN names the screen's main widget, a list or table, never a text field
    unless the screen is nothing but a form. The focus goes there when the screen is first shown
    (unless on_mount placed it), whenever it is shown again with the focus in a text field or
    nowhere (back from a profile, back to a section), and on escape from any other widget, so the
    section keys always work again after one escape."""

    MODE: ClassVar[str]
    MAIN: ClassVar[str | None] = None
    AUTO_FOCUS = ""  # placed by on_screen_resume, never into a text field by accident
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "leave_field", "Leave field", show=False, id="section.leave-field",
                tooltip="Back to the section's list, so the section keys work again"),
    ]
    _shown = False

    def compose(self) -> ComposeResult:
        yield TopBar(self.MODE)
        yield from self.compose_body()
        yield FittingFooter()

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

    @property
    def active_bindings(self) -> dict[str, ActiveBinding]:
        """Textual's, with the priority keys (the app's F1-F9) after the others. A focused widget
        that binds the same key (a TextArea binds F6 and F7) leaves the key at its own place in
        the map, and the footer would show the section keys split in two groups."""
        bindings = super().active_bindings

        def place(item: tuple[str, ActiveBinding]) -> tuple[bool, int]:
            key, active = item
            if not active.binding.priority:
                return False, 0
            keys = list(active.node._bindings.key_to_bindings)  # textual is pinned
            return True, keys.index(key) if key in keys else len(keys)

        return dict(sorted(bindings.items(), key=place))

    # --- focus -------------------------------------------------------------------------------

    @property
    def main_widget(self) -> Widget | None:
        """The main widget when it can take the focus now (a hidden empty list cannot)."""
        if self.MAIN is None:
            return None
        return next((widget for widget in self.query(self.MAIN) if widget.focusable), None)

    def focus_main(self) -> None:
        self.set_focus(self.main_widget)

    def leave_field(self) -> bool:
        """Escape's first step: from a text field that is not the main widget, to the main widget.
        False when the focus was not in such a field (escape may then go back)."""
        focused = self.focused
        if isinstance(focused, TEXT_FIELDS) and focused is not self.main_widget:
            self.focus_main()
            return True
        return False

    def action_leave_field(self) -> None:
        if not self.leave_field() and self.focused is not self.main_widget:
            self.focus_main()

    def on_screen_resume(self) -> None:
        focused = self.focused
        if focused is None and not self._shown or self._shown and (
                focused is None or isinstance(focused, TEXT_FIELDS) and focused is not self.main_widget):
            self.focus_main()
        self._shown = True

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
