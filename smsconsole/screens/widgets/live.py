"""Dolphie's live loop: a paused interval timer ticks at a bounded rate, and a tick starts a refresh
only when the previous one has finished, so database polls never overlap or pile up."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.timer import Timer
from textual.widget import Widget
from textual.worker import Worker


class LiveRefresh:
    """Owned by a screen: `resume()` on ScreenResume, `pause()` on ScreenSuspend."""

    def __init__(self, owner: Widget, interval: float, start: Callable[[], Worker[Any]]) -> None:
        self._start = start
        self._worker: Worker[Any] | None = None
        self._timer: Timer = owner.set_interval(interval, self.tick, pause=True)

    @property
    def busy(self) -> bool:
        # A worker cancelled before it started (an exclusive worker of the same group began in the
        # same frame: the screen's own reload after a save) stays PENDING for ever: not busy.
        return self._worker is not None and not self._worker.is_finished and not self._worker.is_cancelled

    def tick(self) -> None:
        if not self.busy:
            self._worker = self._start()

    def resume(self) -> None:
        self._timer.resume()
        self.tick()

    def pause(self) -> None:
        self._timer.pause()
