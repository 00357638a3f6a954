"""How the console colours campaign and run states. The words of a campaign document are in
services/campaigns/words.py (shared with the CLI)."""

from __future__ import annotations

STATE_STYLES = {"draft": "dim", "scheduled": "cyan", "running": "bold green", "paused": "yellow",
                "stopped": "magenta", "completed": "green", "blocked": "bold red", "missed": "yellow",
                "failed": "bold red", "planned": "cyan", "materializing": "bold cyan", "live": "bold green"}
