"""How values look on screen: times, health and message states as styled text. Pure functions."""

from __future__ import annotations

import contextlib
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text

from smsconsole import clock

if TYPE_CHECKING:
    from smsconsole.services.messages import MessageView

HEALTH_STYLES = {"healthy": "green", "unhealthy": "bold red", "unknown": "dim"}
HEALTH_MARKS = {"healthy": "●", "unhealthy": "✖", "unknown": "○"}

STATE_STYLES = {
    "queued": "cyan",
    "retrying": "yellow",  # queued again after a failed attempt (MessageView.shown_state)
    "claimed": "cyan",
    "sending": "bold cyan",
    "sent": "green",
    "delivered": "bold green",
    "undelivered": "yellow",
    "failed": "bold red",
    "suppressed": "magenta",
    "unknown": "yellow",
    "held out (control)": "dim",  # a control-group row: recorded, never sent (MessageView.shown_state)
}
CIRCUIT_STYLES = {"closed": "green", "open": "bold red", "half_open": "yellow"}


def format_time(at: datetime | None, *, seconds: bool = False) -> str:
    """UTC clock time for today, date and time otherwise; '-' when never."""
    if at is None:
        return "-"
    now = clock.now()
    time_format = "%H:%M:%S" if seconds else "%H:%M"
    if at.date() == now.date():
        return at.strftime(time_format)
    return at.strftime(f"%Y-%m-%d {time_format}")


def format_day(at: datetime | None) -> str:
    """The clock time today, the date otherwise (narrow columns); '-' when never."""
    if at is None:
        return "-"
    return at.strftime("%H:%M") if at.date() == clock.now().date() else at.strftime("%Y-%m-%d")


def health_text(health: str) -> Text:
    mark = HEALTH_MARKS.get(health, "?")
    return Text(f"{mark} {health}", style=HEALTH_STYLES.get(health, ""))


def state_text(state: str) -> Text:
    return Text(state, style=STATE_STYLES.get(state, ""))


def circuit_text(state: str, until: datetime | None) -> Text:
    label = state.replace("_", "-")
    if state == "open" and until is not None:
        seconds = max(0, int((until - clock.now()).total_seconds()))
        label += f" {seconds}s"
    return Text(label, style=CIRCUIT_STYLES.get(state, ""))


def health_circuit_text(health: str, circuit: str, until: datetime | None, *, compact: bool = False) -> Text:
    """Health (its mark only when compact), and the circuit when it is not closed (a closed
    circuit is the normal case)."""
    text = health_text(health)
    if compact:
        text = Text(text.plain.split(" ", 1)[0], style=text.style)
    if circuit != "closed":
        text.append(" · ")
        text.append_text(circuit_text(circuit, until))
    return text


def throughput_caption(per_minute: list[int], *, short: bool = False) -> str:
    total, peak = sum(per_minute), max(per_minute, default=0)
    now = per_minute[-1] if per_minute else 0
    if short:
        return f"sent/min: peak {peak:,}, now {now:,}"
    return f"sent/min, last {len(per_minute)} min: {total:,} in all, peak {peak:,}, now {now:,}"


def message_detail(view: MessageView) -> str:
    """A message list's Detail column: the provider's message id once sent, else the error code
    and reason (with the next attempt's time while it is retrying)."""
    if view.state in ("sent", "delivered") and view.provider_message_id:
        return view.provider_message_id
    code = f"[{view.error_code}] " if view.error_code else ""
    if view.retrying:
        return f"next attempt {format_time(view.next_attempt_at, seconds=True)} · {code}{view.shown_reason or ''}".strip()
    return f"{code}{view.reason or ''}".strip()


def yes_no(value: bool) -> Text:
    return Text("yes", style="green") if value else Text("no", style="dim")


def compact_details(details: dict[str, Any]) -> str:
    """Audit details as `key=value` pairs on one line."""
    parts = []
    for key, value in details.items():
        shown = ",".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)
        parts.append(f"{key}={shown}")
    return " ".join(parts)


SUBSCRIPTION_STYLES = {"subscribed": "green", "unsubscribed": "yellow", "never": "dim"}


def subscription_text(state: str) -> Text:
    return Text(state, style=SUBSCRIPTION_STYLES.get(state, ""))


def reach_text(reachable: bool, reason: str | None = None) -> Text:
    """✔ yes, or ✖ and why SMS cannot reach the person now (or just `no` without a reason)."""
    if reachable:
        return Text("✔ yes", style="green")
    return Text(f"✖ {reason}" if reason else "✖ no", style="yellow")


def format_value(value: Any) -> str:
    """A stored property value as one line: lists joined by commas, booleans in lower case."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(item) for item in value) if value else "(empty list)"
    if isinstance(value, dict):
        return compact_details(value)
    return str(value)


def format_size(size: int) -> str:
    """Bytes as B, KB, MB or GB (powers of 1024), one decimal above bytes."""
    amount = float(size)
    for unit in ("B", "KB", "MB"):
        if amount < 1024:
            return f"{int(amount)} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} GB"


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """`1 row`, `2 rows`, with thousands separators."""
    return f"{count:,} {noun if count == 1 else (nouns or noun + 's')}"


def display_path(path: Path) -> str:
    """A path as short as it can be read unambiguously: relative to the working folder when inside
    it, else with the home folder as ~."""
    absolute = path.expanduser().absolute()
    with contextlib.suppress(ValueError):
        return str(absolute.relative_to(Path.cwd()))
    with contextlib.suppress(ValueError, RuntimeError):
        return str(Path("~") / absolute.relative_to(Path.home()))
    return str(absolute)


def display_folder(path: Path) -> str:
    """A folder with the home folder as ~ (the working folder itself would read as '.')."""
    absolute = path.expanduser().absolute()
    with contextlib.suppress(ValueError, RuntimeError):
        relative = absolute.relative_to(Path.home())
        return "~" if relative == Path(".") else str(Path("~") / relative)
    return str(absolute)


def shorten_middle(text: str, width: int) -> str:
    """`text` in at most `width` characters, its middle replaced by an ellipsis."""
    if len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    head = (width - 1) // 2
    tail = width - 1 - head
    return text[:head] + "…" + (text[-tail:] if tail else "")


def short_database_url(url: str, width: int) -> str:
    """A database URL that fits `width` without wrapping mid-word: as it is when it fits, else its
    kind and the database's own name kept whole (`sqlite:///…/demo.db`, `sqlite …/demo.db`,
    `postgresql db1.example.com/sms`, `postgresql …/sms`, where only the space may wrap), else with
    its middle elided."""
    if len(url) <= width:
        return url
    scheme, sep, rest = url.partition("://")
    if sep and "/" in rest:
        location, name = rest.rsplit("/", 1)
        host = location.rsplit("@", 1)[-1] if not location.startswith("/") else ""
        forms = [f"{scheme}:///…/{name}"] if location.startswith("/") else []
        forms += [f"{scheme} {host}/{name}"] if host else []
        for short in forms:
            if len(short) <= width:
                return short
        # the kind, then the name on the next line if need be: wrapped between words, not inside one
        return f"{scheme} …/{shorten_middle(name, width - 2)}"
    return shorten_middle(url, width)
