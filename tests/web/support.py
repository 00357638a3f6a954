"""Running `smsconsole web` as a child process (in its own process group, so the consoles it
starts for browser sessions are stopped with it) on a free loopback port, with its own config and
data dirs."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

START_TIMEOUT = 60.0  # migrating a new database on a loaded 2-core CI machine
STOP_TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def web_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    """This process's environment without any SMSCONSOLE_* setting, with fresh config and data
    dirs under tmp_path and `settings` (e.g. WEB_TOKEN="...") as SMSCONSOLE_<NAME> variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSCONSOLE_")}
    env["SMSCONSOLE_CONFIG_DIR"] = str(tmp_path / "config")
    env["SMSCONSOLE_DATA_DIR"] = str(tmp_path / "data")
    env.update({f"SMSCONSOLE_{name.upper()}": value for name, value in settings.items()})
    return env


def run_cli(env: dict[str, str], *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "smsconsole", *argv], env=env, capture_output=True, text=True,
                          check=False, timeout=timeout)


@dataclass
class WebServer:
    process: subprocess.Popen[bytes]
    url: str
    output: Path

    def printed(self) -> str:
        return self.output.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int | None:
        """SIGTERM to the whole group, SIGKILL if it does not end in time; the exit code of
        `smsconsole web` when it ended on SIGTERM, else None."""
        code: int | None = None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            code = self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            code = None
        with contextlib.suppress(ProcessLookupError):  # what is left of the group: consoles, shells
            os.killpg(self.process.pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.wait(STOP_TIMEOUT)
        return code


@contextlib.contextmanager
def running_web(env: dict[str, str], output: Path, *argv: str, port: int | None = None,
                host: str = "127.0.0.1") -> Iterator[WebServer]:
    """`smsconsole [argv] web --host host --port port` until it answers HTTP; stopped on exit.
    `argv` goes before `web` (global flags such as --database-url)."""
    port = port or free_port()
    with output.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "smsconsole", *argv, "web", "--host", host,
                                    "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    server = WebServer(process, f"http://127.0.0.1:{port}/", output)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                raise AssertionError(f"smsconsole web exited with {process.returncode}: {server.printed()}")
            with contextlib.suppress(httpx.TransportError):
                httpx.get(server.url, timeout=5)
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"smsconsole web did not answer in {START_TIMEOUT:.0f} s: {server.printed()}")
            time.sleep(0.1)
        yield server
    finally:
        server.stop()
