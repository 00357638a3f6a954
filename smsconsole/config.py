"""Process configuration: defaults, then the TOML file in the config dir, then `SMSCONSOLE_*`
environment variables, then command-line flags. Business settings an operator edits in the
console (default region, public callback URL, ...) live in the database, not here."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import platformdirs

APP_NAME = "smsconsole"


class ConfigError(Exception):
    """The configuration cannot be used; the message is one line for the user."""


@dataclass(frozen=True)
class Config:
    config_dir: Path
    data_dir: Path
    database_url: str = ""
    secret_key: str = field(default="", repr=False)
    log_level: str = "INFO"
    log_file: str = ""
    lease_ttl_seconds: float = 15.0
    heartbeat_seconds: float = 5.0
    dispatch_batch_size: int = 50
    dispatch_interval_seconds: float = 0.5
    max_send_attempts: int = 5
    send_timeout_seconds: float = 15.0
    listen_host: str = "127.0.0.1"
    listen_port: int = 0  # 0: the webhook/ingestion listener is off
    listen_max_connections: int = 256  # beyond: the longest-waiting unfinished one is closed, else 503
    listen_request_timeout_seconds: float = 15.0  # to send a request's headers and body, or 408 and closed
    listen_keep_alive_seconds: float = 5.0  # an idle kept-alive connection is closed after this
    poll_interval_seconds: float = 30.0  # receipts/replies pollers, per provider
    reconcile_after_seconds: float = 900.0  # ask the provider about `sent` messages with no final receipt
    # PostgreSQL: a `serve` that does not hold the lease dispatches beside the holder (false: it waits idle)
    worker_dispatch: bool = True
    web_token: str = field(default="", repr=False)  # `smsconsole web` requires it of every request when set

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.toml"

    @property
    def key_file(self) -> Path:
        return self.config_dir / "secret.key"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'smsconsole.db'}"

    @property
    def effective_log_file(self) -> Path:
        return Path(self.log_file) if self.log_file else self.data_dir / "smsconsole.log"

    def masked(self) -> dict[str, Any]:
        """The effective configuration as printable values, secrets masked."""
        from smsconsole.secrets import mask_url

        shown: dict[str, Any] = {
            "config_file": str(self.config_file),
            "config_dir": str(self.config_dir),
            "data_dir": str(self.data_dir),
            "database_url": mask_url(self.effective_database_url),
            "secret_key": "set (SMSCONSOLE_SECRET_KEY)" if self.secret_key else f"key file {self.key_file}",
            "log_level": self.log_level,
            "log_file": str(self.effective_log_file),
        }
        for name in _TUNABLES:
            shown[name] = getattr(self, name)
        shown["listener"] = f"{self.listen_host}:{self.listen_port}" if self.listen_port else "off (set listen_port)"
        shown["web_token"] = "set (web requires it)" if self.web_token else "not set (web: loopback only)"
        return shown


# Keys a user may set in the file or the environment, with their types.
_TUNABLES = {
    "lease_ttl_seconds": float,
    "heartbeat_seconds": float,
    "dispatch_batch_size": int,
    "dispatch_interval_seconds": float,
    "max_send_attempts": int,
    "send_timeout_seconds": float,
    "poll_interval_seconds": float,
    "reconcile_after_seconds": float,
    "listen_max_connections": int,
    "listen_request_timeout_seconds": float,
    "listen_keep_alive_seconds": float,
    "worker_dispatch": bool,
}
_SETTABLE: dict[str, type] = {
    "listen_host": str,
    "listen_port": int,
    "database_url": str,
    "secret_key": str,
    "web_token": str,
    "log_level": str,
    "log_file": str,
    "data_dir": str,
    **_TUNABLES,
}
WEB_TOKEN_MIN_CHARS = 16
_LOG_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR"}
_BOOLEANS = {"true": True, "yes": True, "1": True, "on": True, "false": False, "no": False, "0": False, "off": False}


def _coerce(name: str, raw: Any, where: str) -> Any:
    kind = _SETTABLE[name]
    try:
        if kind is bool:
            if isinstance(raw, bool):
                return raw
            if isinstance(raw, str) and raw.strip().lower() in _BOOLEANS:
                return _BOOLEANS[raw.strip().lower()]
            raise ConfigError(f"{where}: {name} must be true or false, got {raw!r}")
        if kind is float:
            if isinstance(raw, bool):
                raise ValueError
            value: Any = float(raw)
            if value <= 0:
                raise ConfigError(f"{where}: {name} must be greater than 0, got {raw!r}")
            return value
        if kind is int:
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError
            value = int(raw)
            if name == "listen_port":
                if not 0 <= value <= 65535:
                    raise ConfigError(f"{where}: listen_port must be from 0 (off) to 65535, got {raw!r}")
                return value
            if value <= 0:
                raise ConfigError(f"{where}: {name} must be greater than 0, got {raw!r}")
            return value
        if not isinstance(raw, str):
            raise ValueError
        if name == "log_level":
            if raw.upper() not in _LOG_LEVELS:
                raise ConfigError(f"{where}: log_level must be one of {', '.join(sorted(_LOG_LEVELS))}, got {raw!r}")
            return raw.upper()
        if name == "web_token" and raw and len(raw) < WEB_TOKEN_MIN_CHARS:
            raise ConfigError(f"{where}: web_token must be at least {WEB_TOKEN_MIN_CHARS} characters, got {len(raw)} "
                              "(make one: python3 -c 'import secrets; print(secrets.token_urlsafe())')")
        return raw
    except ValueError:
        raise ConfigError(f"{where}: {name} must be a {kind.__name__}, got {raw!r}") from None


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    values: dict[str, Any] = {}
    for key, raw in data.items():
        line = _line_of(text, key)
        where = f"{path}, line {line}" if line else str(path)
        if key not in _SETTABLE:
            known = ", ".join(sorted(_SETTABLE))
            raise ConfigError(f"{where}: unknown key {key!r} (known keys: {known})")
        values[key] = _coerce(key, raw, where)
    return values


def _line_of(text: str, key: str) -> int | None:
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith(key) and stripped[len(key):].lstrip().startswith("="):
            return number
    return None


def load_config(
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> Config:
    """Resolve the configuration. Raises ConfigError with a one-line reason."""
    env = os.environ if environ is None else environ
    config_dir = Path(env.get("SMSCONSOLE_CONFIG_DIR") or platformdirs.user_config_dir(APP_NAME))
    values: dict[str, Any] = _read_file(config_dir / "config.toml")
    for name in _SETTABLE:
        env_name = f"SMSCONSOLE_{name.upper()}"
        if env.get(env_name):
            values[name] = _coerce(name, env[env_name], env_name)
    for name, raw in (overrides or {}).items():
        if raw is not None:
            values[name] = _coerce(name, raw, f"--{name.replace('_', '-')}")
    data_dir = Path(values.pop("data_dir", None) or platformdirs.user_data_dir(APP_NAME))
    config = Config(config_dir=config_dir, data_dir=data_dir)
    known = {f.name for f in fields(Config)}
    return replace(config, **{k: v for k, v in values.items() if k in known})
