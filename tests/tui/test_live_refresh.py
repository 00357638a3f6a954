"""The live loop (screens/widgets/live.py) keeps ticking when its worker is cancelled before it
started: a screen's own reload in the same exclusive group (after a save) cancels the tick's
worker while it is still pending, and Textual leaves such a worker PENDING for ever."""

from __future__ import annotations

from textual import work
from textual.app import App

from smsconsole.screens.widgets.live import LiveRefresh


class _Probe(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.loads = 0

    @work(exclusive=True, group="probe-load")
    async def load(self) -> None:
        self.loads += 1


async def test_a_tick_cancelled_before_it_started_does_not_stop_the_loop() -> None:
    app = _Probe()
    async with app.run_test() as pilot:
        live = LiveRefresh(app, 0.05, app.load)
        live.resume()  # a tick: its worker is created, not started yet
        app.load()  # the same group, exclusive: cancels the tick's worker before it ran
        await pilot.pause(0.5)
        assert app.loads >= 4  # ticks went on: ~10 intervals, each starting a load
