"""`smsconsole web` in a real headless browser (Debian's Chromium driven by Playwright): the page
loads, the console's Home renders, and a test send through the Sandbox changes state on screen;
with a web token, the address with ?token= opens the console.

The console is drawn by xterm.js on a canvas, so the tests read the terminal's own buffer: a
script added before the page's scripts keeps the xterm Terminal that textual-serve's page creates
(it is assigned to a `terminal` property), and `buffer.active` gives each row's text and the
cursor, which Textual keeps on the focused input.

Skipped when /usr/bin/chromium or the playwright package is missing (`.ci/run` installs Chromium)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.web.support import WebServer, run_cli, running_web, web_env

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"no browser: {CHROMIUM} is not installed (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")

pytestmark = pytest.mark.xdist_group("browser")  # one browser at a time on a 2-core machine

TOKEN = "k3Jq-8d1X_vW0pZr5tYb"  # test-only
TO = "+447400123456"
VIEWPORT = {"width": 1280, "height": 800}
WAIT = 60.0  # seconds for anything to appear: a console starts in ~1.5 s, far slower on a loaded CI machine

KEEP_TERMINAL = """
Object.defineProperty(Object.prototype, 'terminal', {
  configurable: true,
  set(value) {
    Object.defineProperty(this, 'terminal', {value, writable: true, configurable: true, enumerable: true});
    if (value && value.buffer && typeof value.write === 'function') window.__smsconsoleTerminal = value;
  },
});
"""
READ_SCREEN = """() => {
  const terminal = window.__smsconsoleTerminal;
  if (!terminal) return null;
  const buffer = terminal.buffer.active, rows = [];
  for (let y = 0; y < terminal.rows; y++) {
    const line = buffer.getLine(buffer.viewportY + y);
    rows.push(line ? line.translateToString(true) : '');
  }
  return {rows, cursor: [buffer.cursorX, buffer.cursorY]};
}"""


class Screen:
    """What the console shows in the page: its rows of text and where its cursor is."""

    def __init__(self, page: sync_api.Page) -> None:
        self.page = page
        self.rows: list[str] = []
        self.cursor = (0, 0)

    def read(self) -> Screen:
        shown = self.page.evaluate(READ_SCREEN)
        if shown is not None:
            self.rows, self.cursor = shown["rows"], tuple(shown["cursor"])
        return self

    @property
    def text(self) -> str:
        return "\n".join(self.rows)

    def wait(self, condition: Callable[[Screen], object], what: str, timeout: float = WAIT) -> None:
        deadline = time.monotonic() + timeout
        while not condition(self.read()):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; the screen:\n{self.text}")
            self.page.wait_for_timeout(100)

    def where(self, label: str) -> tuple[int, int]:
        """(column, row) of `label`'s first appearance."""
        for y, row in enumerate(self.rows):
            if (x := row.find(label)) >= 0:
                return x, y
        raise AssertionError(f"{label!r} is not on the screen:\n{self.text}")

    def cursor_in_field(self, label: str) -> bool:
        """True when the cursor is in the field under `label` (a form field's input is the row below)."""
        if label not in self.text:
            return False
        x, y = self.where(label)
        return self.cursor[1] == y + 1 and self.cursor[0] >= x


@pytest.fixture
def browser() -> Iterator[sync_api.Browser]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield browser
        finally:
            browser.close()


def open_console(browser: sync_api.Browser, address: str, **context: object) -> tuple[sync_api.Page, Screen]:
    """A page in a new browser context (`context`: its options, e.g. http_credentials) at `address`."""
    page = browser.new_context(viewport=VIEWPORT, **context).new_page()  # type: ignore[arg-type]
    page.add_init_script(KEEP_TERMINAL)
    response = page.goto(address)
    assert response is not None and response.status == 200
    return page, Screen(page)


def message_state(screen: Screen) -> str | None:
    """The state the Recent test messages table shows for the message to TO."""
    for row in screen.rows:
        if found := re.search(re.escape(TO) + r"\s+sandbox\s+([a-z]+)", row):
            return found.group(1)
    return None


def test_the_console_in_a_browser_sends_a_test_message_and_shows_its_state_change(
    tmp_path: Path, browser: sync_api.Browser,
) -> None:
    env = web_env(tmp_path)
    # a database named by the global flag, not the default one: the browser's console must use it too
    database = ["--database-url", f"sqlite:///{tmp_path / 'elsewhere.db'}"]
    added = run_cli(env, *database, "providers", "add", "sandbox", "--name", "sandbox", "--receipt-delay", "3")
    assert added.returncode == 0, added.stderr
    with running_web(env, tmp_path / "web.out", *database) as web:
        page, screen = open_console(browser, web.url)
        screen.wait(lambda s: "Providers (last hour)" in s.text
                    and re.search(r"sandbox\s+\S+ (unknown|healthy)", s.text), "Home with the sandbox provider")

        page.locator(".xterm-helper-textarea").focus()
        page.keyboard.press("3")
        screen.wait(lambda s: "Recent test messages" in s.text, "the Test send section")
        page.keyboard.press("e")
        screen.wait(lambda s: s.cursor_in_field("To ("), "the cursor in To")
        page.keyboard.type(TO)
        screen.wait(lambda s: f"✔ {TO} · United Kingdom · mobile" in s.text, "the number checked")
        page.keyboard.press("Tab")
        screen.wait(lambda s: s.cursor_in_field("Message"), "the cursor in Message")
        page.keyboard.type("Hello from the browser")
        screen.wait(lambda s: "22 chars · GSM-7 · 1 segment" in s.text, "the message counted")
        page.keyboard.press("Control+s")

        seen: list[str] = []

        def record(s: Screen) -> bool:
            state = message_state(s)
            if state is not None and (not seen or seen[-1] != state):
                seen.append(state)
            return state == "delivered"

        screen.wait(record, "the Sandbox's delivery receipt")
        # shown while the Sandbox holds its receipt (3 s), then changed on the same screen
        assert "sent" in seen and seen[-1] == "delivered", seen
        assert set(seen) <= {"queued", "sending", "sent", "delivered"}, seen

        # stopping `web` with the tab still open quits its console, whose engine lets the lease go
        assert web.stop() == 0, web.printed()
        page.wait_for_function("document.body.classList.contains('-closed')")  # "Session ended."
    assert "engine stopped, lease released" in (tmp_path / "data" / "smsconsole.log").read_text()


def test_with_a_token_the_console_opens_with_it_and_only_with_it(tmp_path: Path, browser: sync_api.Browser) -> None:
    with running_web(web_env(tmp_path, web_token=TOKEN), tmp_path / "web.out") as web:
        # no token: the server asks for credentials (401), and a browser with none to give stops there
        with pytest.raises(sync_api.Error, match="ERR_INVALID_AUTH_CREDENTIALS"):
            browser.new_page().goto(web.url)

        # the address with ?token=: a session cookie, and the token leaves the address bar
        page, screen = open_console(browser, f"{web.url}?token={TOKEN}")
        assert page.url == web.url
        screen.wait(lambda s: "Providers (last hour)" in s.text and "Engine" in s.text, "Home")
        page.close()

        # the browser's sign-in prompt, answered with the token as the password
        page, screen = open_console(browser, web.url, http_credentials={"username": "support", "password": TOKEN})
        screen.wait(lambda s: "Providers (last hour)" in s.text and "Engine" in s.text, "Home")
        page.close()
    assert_stopped_cleanly(web)


def assert_stopped_cleanly(web: WebServer) -> None:
    """SIGTERM ended `smsconsole web` in time, with exit 0."""
    assert web.stop() == 0, web.printed()
