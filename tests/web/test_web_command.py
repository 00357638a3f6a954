"""`smsconsole web` without a browser: it refuses bad input in one line, serves loopback only
unless a web token is set, and with a token every path it serves (the page, its scripts, the
console's websocket, downloads) answers 401 until the request carries it."""

from __future__ import annotations

import base64
import json
import socket
from pathlib import Path

import httpx
import pytest

from tests.web.support import free_port, run_cli, running_web, web_env

TOKEN = "k3Jq-8d1X_vW0pZr5tYb"  # test-only
WEBSOCKET_HEADERS = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                     "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


def test_another_host_than_loopback_needs_a_token(tmp_path: Path) -> None:
    done = run_cli(web_env(tmp_path), "web", "--host", "0.0.0.0", "--port", str(free_port()))
    assert done.returncode == 1 and done.stdout == ""
    line = one_line(done.stderr)
    assert "0.0.0.0 is not loopback" in line and "web_token" in line and "SMSCONSOLE_WEB_TOKEN" in line


@pytest.mark.parametrize(("port", "expected"), [
    ("abc", "argument --port: expected a port number from 1 to 65535, got 'abc'"),
    ("0", "argument --port: expected a port number from 1 to 65535, got 0"),
    ("70000", "argument --port: expected a port number from 1 to 65535, got 70000"),
])
def test_a_bad_port_is_one_line(tmp_path: Path, port: str, expected: str) -> None:
    done = run_cli(web_env(tmp_path), "web", "--port", port)
    assert done.returncode == 2 and done.stdout == ""
    assert expected in one_line(done.stderr)


def test_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = run_cli(web_env(tmp_path), "web", "--port", str(port))
    assert done.returncode == 1 and done.stdout == ""
    assert f"--port {port}: the port is in use on 127.0.0.1" in one_line(done.stderr)


def test_a_short_token_is_refused_with_where_it_was_set(tmp_path: Path) -> None:
    done = run_cli(web_env(tmp_path, web_token="short"), "web")
    assert done.returncode == 2
    assert "SMSCONSOLE_WEB_TOKEN: web_token must be at least 16 characters, got 5" in one_line(done.stderr)


def test_config_shows_whether_the_token_is_set_never_the_token(tmp_path: Path) -> None:
    unset = run_cli(web_env(tmp_path), "config", "--json")
    assert json.loads(unset.stdout)["web_token"] == "not set (web: loopback only)"
    shown = run_cli(web_env(tmp_path, web_token=TOKEN), "config", "--json")
    assert shown.returncode == 0 and TOKEN not in shown.stdout
    assert json.loads(shown.stdout)["web_token"] == "set (web requires it)"


def test_without_a_token_only_this_machine_is_served(tmp_path: Path) -> None:
    with running_web(web_env(tmp_path), tmp_path / "web.out") as web:
        assert "smsconsole web: open http://127.0.0.1:" in web.printed()
        page = httpx.get(web.url)
        assert page.status_code == 200
        host = web.url.split("/")[2]
        assert f'data-session-websocket-url="ws://{host}/ws"' in page.text
        # a page elsewhere cannot reach it through a name that resolves here (DNS rebinding) …
        rebound = httpx.get(web.url, headers={"Host": f"attacker.example:{host.split(':')[1]}"})
        assert rebound.status_code == 403 and "set web_token" in rebound.text
        # … nor open the console's websocket from a visitor's browser
        foreign = httpx.get(web.url + "ws", headers={**WEBSOCKET_HEADERS, "Origin": "http://attacker.example"})
        assert foreign.status_code == 403


def test_with_a_token_every_path_needs_it(tmp_path: Path) -> None:
    env = web_env(tmp_path, web_token=TOKEN)
    port = free_port()
    with running_web(env, tmp_path / "web.out", host="0.0.0.0", port=port) as web:
        assert f"smsconsole web: open http://{socket.gethostname()}:{port}/" in web.printed()
        for path in ("", "static/js/textual.js", "static/css/xterm.css", "download/some-key", "ws"):
            refused = httpx.get(web.url + path, headers=WEBSOCKET_HEADERS if path == "ws" else {})
            assert refused.status_code == 401, path
            assert refused.headers["WWW-Authenticate"].startswith('Basic realm="smsconsole"'), path
        assert httpx.get(web.url, params={"token": TOKEN[:-1] + "x"}).status_code == 401
        assert httpx.get(web.url, auth=("anyone", "wrong-password-000")).status_code == 401

        # ?token= sets the session cookie and sends the browser to the address without the token
        entry = httpx.get(web.url, params={"token": TOKEN, "fontsize": "14"})
        assert entry.status_code == 303 and entry.headers["Location"] == "/?fontsize=14"
        cookie = entry.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie
        with httpx.Client(cookies=entry.cookies) as browser:
            assert browser.get(web.url).status_code == 200
            assert browser.get(web.url + "static/js/textual.js").status_code == 200
        assert httpx.get(web.url, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        basic = httpx.get(web.url, auth=("support", TOKEN))
        assert basic.status_code == 200 and "smsconsole_web=" in basic.headers["Set-Cookie"]
    printed = web.printed() + (tmp_path / "data" / "smsconsole.log").read_text()
    assert TOKEN not in printed
    assert "web: refused GET / from 127.0.0.1: no valid token" in printed


def test_basic_credentials_that_are_not_base64_are_refused(tmp_path: Path) -> None:
    with running_web(web_env(tmp_path, web_token=TOKEN), tmp_path / "web.out") as web:
        assert httpx.get(web.url, headers={"Authorization": "Basic !!!"}).status_code == 401
        garbled = base64.b64encode(b"\xff\xfe:" + TOKEN.encode()).decode()
        assert httpx.get(web.url, headers={"Authorization": f"Basic {garbled}"}).status_code == 401
