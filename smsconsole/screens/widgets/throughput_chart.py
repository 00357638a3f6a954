"""The Stats section's live throughput chart: messages sent per minute over the last hour, a line
per provider (plotext braille lines through textual-plotext), the minutes labelled in UTC. It fills
the space it is given: a few rows at 80×24, more at 120×36."""

from __future__ import annotations

from datetime import UTC, datetime

from textual_plotext import PlotextPlot

TICKS = 4  # minute labels along the bottom (the last is the current minute)


class ThroughputChart(PlotextPlot):
    """Sent per minute by provider; `show` replaces what it draws."""

    def show(self, per_provider: dict[str, list[int]], last_minute: int, minutes: int) -> None:
        """`per_provider` holds `minutes` counts each, oldest first, ending at `last_minute`
        (whole minutes since 1970, UTC)."""
        plt = self.plt
        plt.clear_figure()
        xs = list(range(-minutes + 1, 1))
        peak = max((max(values, default=0) for values in per_provider.values()), default=0)
        if per_provider:
            for name, values in per_provider.items():
                plt.plot(xs, values, label=name, marker="braille")
        else:
            plt.plot(xs, [0] * minutes, marker="braille", color="gray")
        step = max(1, minutes // TICKS)
        ticks = list(range(0, -minutes, -step))[::-1]
        plt.xticks(ticks, [_clock(last_minute + tick) for tick in ticks])
        top = max(peak, 1)
        plt.yticks(sorted({0, top // 2, top}) if top > 1 else [0, 1])
        plt.ylim(0, top)
        plt.xlim(xs[0], xs[-1])
        plt.frame(False)
        self.refresh()


def _clock(minute: int) -> str:
    return datetime.fromtimestamp(minute * 60, tz=UTC).strftime("%H:%M")
