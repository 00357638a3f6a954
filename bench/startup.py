"""Startup as a person feels it: (a) the console's first full frame against a bare Textual app
(a header, a table, a footer) measured the same way, and (b) the wall time of quick CLI commands.

    .venv/bin/python -m bench.startup                 # 5 runs each, figures as a table
    .venv/bin/python -m bench.startup --runs 9 --importtime

How: both apps are started in a pseudo-terminal of 80×24 (what an SSH session gives them), and
the clock runs from launch until the screen has shown the marker text of the home content — for
the console, the demo's Sandbox provider in the Home providers table (so the database was opened,
migrated and read), for the bare app its table row; then `q` is pressed. The time until the header
says the engine runs in this process is reported too. The CLI commands run against the same demo
database. Each figure is the median of `--runs` runs after one warm-up run; the data and config
directories are temporary, and Python writes bytecode caches (to a temporary PYTHONPYCACHEPREFIX),
as an installed smsconsole would have them.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import re
import resource
import select
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|P[^\x1b]*\x1b\\|[@-Z\\-_])")
CONSOLE_READY = re.compile(r"sandbox\s*\(Sandbox\)")  # Home's provider detail, shown once the table is read
ENGINE_READY = re.compile(r"running here")
BARE_READY = re.compile(r"bare-ready-row")
CLI_COMMANDS = [
    ("smsconsole --help", ["--help"]),
    ("smsconsole --version", ["--version"]),
    ("smsconsole providers list", ["--demo", "providers", "list"]),
    ("smsconsole profiles search Smith", ["--demo", "profiles", "search", "Smith"]),
    # the floor under any command that reads the database: the interpreter and SQLAlchemy's ORM
    ("python: import SQLAlchemy ORM + asyncio (floor)", ["-c", "import sqlalchemy.orm, sqlalchemy.ext.asyncio"]),
    ("python: the bare interpreter", ["-c", "pass"]),
]

BARE_APP = """
from textual.app import App
from textual.widgets import DataTable, Footer, Header

class Bare(App):
    BINDINGS = [("q", "quit", "Quit")]

    def compose(self):
        yield Header()
        yield DataTable()
        yield Footer()

    def on_mount(self):
        table = self.query_one(DataTable)
        table.add_columns("Name", "Health")
        table.add_row("bare-ready-row", "ok")

Bare().run()
"""


def _environment(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSCONSOLE_") and k != "PYTHONDONTWRITEBYTECODE"}
    env.update(SMSCONSOLE_DATA_DIR=str(data / "data"), SMSCONSOLE_CONFIG_DIR=str(data / "config"),
               PYTHONPYCACHEPREFIX=str(data / "pycache"), TERM="xterm-256color", COLUMNS="80", LINES="24")
    return env


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) the process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


FRAME_CPU: list[float] = []  # the console's CPU seconds at its first full frame, one per run


def first_frame(argv: list[str], env: dict[str, str], ready: re.Pattern[str], later: re.Pattern[str] | None = None,
                timeout: float = 60.0) -> tuple[float, float | None]:
    """Seconds from launch until `ready` is on the screen (and until `later` is, if given). The
    process's CPU time at the `ready` moment goes to FRAME_CPU (load-independent, unlike the wall
    time)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=ROOT, start_new_session=True)
    os.close(slave)
    screen, ready_at, later_at = "", None, None
    try:
        while time.perf_counter() - started < timeout:
            readable, _, _ = select.select([master], [], [], 0.02)
            if readable:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                screen += ANSI.sub("", chunk.decode("utf-8", "replace"))
            now = time.perf_counter()
            if ready_at is None and ready.search(screen):
                ready_at = now - started
                FRAME_CPU.append(_cpu_seconds(proc.pid))
            if later is not None and later_at is None and later.search(screen):
                later_at = now - started
            if ready_at is not None and (later is None or later_at is not None):
                break
        os.write(master, b"q")
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    finally:
        os.close(master)
    if ready_at is None:
        raise RuntimeError(f"{argv[-1]}: the marker {ready.pattern!r} did not appear in {timeout:.0f} s")
    return ready_at, later_at


def cli_time(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one command. On a loaded machine the wall
    time waits for a core; the CPU time is what the command itself costs."""
    argv = [PYTHON, *args] if args[:1] == ["-c"] else [PYTHON, "-m", "smsconsole", *args]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, env=env, cwd=ROOT, check=True, capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def importtime(code: str, env: dict[str, str], top: int) -> list[tuple[float, str]]:
    """The `top` imports with the largest cumulative time (ms) for `code`, as -X importtime says."""
    done = subprocess.run([PYTHON, "-X", "importtime", "-c", code], env=env, cwd=ROOT, capture_output=True,
                          text=True, check=True)
    rows = []
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]) / 1000, parts[2].rstrip()))
    return sorted(rows, reverse=True)[:top]


def quick(runs: int = 3, profiles: int = 1000) -> list[dict[str, object]]:
    """For bench/run: the console's first full frame against the bare app, and three CLI commands,
    median of `runs` after a warm-up (a demo of `profiles` profiles). The goals are full-size ones
    already: first full frame < 1 s and ≤ 2× the bare app, a quick command < 0.3 s."""
    from bench._quick import row, under

    rows = []
    with tempfile.TemporaryDirectory(prefix="smsc-startup-") as tmp:
        env = _environment(Path(tmp))
        subprocess.run([PYTHON, "-m", "smsconsole", "demo", "--yes", "--profiles", str(profiles)], env=env,
                       cwd=ROOT, check=True, capture_output=True)
        bare_argv = [PYTHON, "-c", BARE_APP]
        console_argv = [PYTHON, "-m", "smsconsole", "--demo"]
        first_frame(bare_argv, env, BARE_READY)
        first_frame(console_argv, env, CONSOLE_READY)
        bare, console = [], []
        for _ in range(runs):
            bare.append(first_frame(bare_argv, env, BARE_READY)[0])
            console.append(first_frame(console_argv, env, CONSOLE_READY)[0])
        frame, bare_frame = statistics.median(console), statistics.median(bare)
        rows.append(under(f"startup: console first full frame, 80×24 pty (median of {runs})",
                          f"{frame:.2f} s (bare Textual app {bare_frame:.2f} s)", "< 1 s", frame, 1.0))
        rows.append(row("startup: first full frame / bare Textual app", f"{frame / bare_frame:.1f}×", "≤ 2×",
                        frame / bare_frame / 2, frame / bare_frame <= 2))
        for name, argv in CLI_COMMANDS[:3]:
            cli_time(argv, env)
            walls = [cli_time(argv, env)[0] for _ in range(runs)]
            wall = statistics.median(walls)
            rows.append(under(f"startup: `{name}` wall (median of {runs})", f"{wall:.2f} s", "< 0.3 s", wall, 0.3))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--profiles", type=int, default=1000, help="demo profiles (default 1,000)")
    parser.add_argument("--importtime", action="store_true", help="also list the slowest imports")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="smsc-startup-") as tmp:
        env = _environment(Path(tmp))
        subprocess.run([PYTHON, "-m", "smsconsole", "demo", "--yes", "--profiles", str(args.profiles)], env=env,
                       cwd=ROOT, check=True, capture_output=True)
        bare_argv = [PYTHON, "-c", BARE_APP]
        console_argv = [PYTHON, "-m", "smsconsole", "--demo"]
        first_frame(bare_argv, env, BARE_READY)  # warm-up: bytecode caches written
        first_frame(console_argv, env, CONSOLE_READY, ENGINE_READY)
        bare, console, engine, bare_cpu, console_cpu = [], [], [], [], []
        for _ in range(args.runs):  # interleaved, so both see the same machine
            bare.append(first_frame(bare_argv, env, BARE_READY)[0])
            bare_cpu.append(FRAME_CPU[-1])
            frame, running = first_frame(console_argv, env, CONSOLE_READY, ENGINE_READY)
            console_cpu.append(FRAME_CPU[-1])
            console.append(frame)
            if running is not None:
                engine.append(running)
        print(f"first full frame, median of {args.runs} (min–max), 80×24 pty:")
        for name, values in (("bare Textual app (header, table, footer)", bare), ("smsconsole --demo, Home", console),
                             ("smsconsole --demo, engine running", engine)):
            if values:
                print(f"  {name:<44} {statistics.median(values):6.2f} s  ({min(values):.2f}–{max(values):.2f})")
        print(f"  console / bare: {statistics.median(console) / statistics.median(bare):.1f}×")
        print(f"  CPU time at the first full frame: bare {statistics.median(bare_cpu):.2f} s, "
              f"console {statistics.median(console_cpu):.2f} s "
              f"({statistics.median(console_cpu) / statistics.median(bare_cpu):.1f}×)")
        print(f"CLI, median of {args.runs}: wall time (min–max) and CPU time (user + system):")
        for name, argv in CLI_COMMANDS:
            cli_time(argv, env)
            runs = [cli_time(argv, env) for _ in range(args.runs)]
            walls, cpus = [w for w, _ in runs], [c for _, c in runs]
            print(f"  {name:<48} {statistics.median(walls):6.2f} s  ({min(walls):.2f}–{max(walls):.2f})"
                  f"  cpu {statistics.median(cpus):.2f} s")
        if args.importtime:
            for code in ("import smsconsole.app", "import smsconsole.cli",
                         "import smsconsole.runtime, smsconsole.services.providers"):
                print(f"python -X importtime -c {code!r}: slowest (cumulative ms)")
                for ms, name in importtime(code, env, 12):
                    print(f"  {ms:8.1f}  {name}")


if __name__ == "__main__":
    main()
