"""The server's settings: declared once (name, default, parser, meaning), read from
server/config.ini's [DEFAULT] section, each overridable by an environment variable."""

import configparser
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from common.logs import parse_level

CONFIG_PATH = Path(__file__).resolve().parent / "config.ini"


class ConfigError(ValueError):
    """A setting is missing or invalid; the message names the key and the problem."""


def _int(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not an integer") from None
        if value < low or (high is not None and value > high):
            raise ValueError(f"{value} is not in {low}..{high if high is not None else ''}")
        return value

    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{text!r} must be a positive number of seconds")
    return value


def _workers(text: str) -> int:
    count = _int(0, 1024)(text)
    # 0: twice the CPUs plus one (gunicorn's rule of thumb): a worker waiting on an fsync
    # leaves its CPU to another.
    return count or 2 * (os.cpu_count() or 1) + 1


def _optional_path(text: str) -> str:
    return text.strip()


def _path(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be empty")
    return text


# name: (parser, meaning). Defaults live in config.ini, the one file people edit.
SETTINGS: dict[str, tuple[Callable[[str], object], str]] = {
    "SERVER_PORT": (_int(1, 65535), "TCP port"),
    "SERVER_LISTEN_BACKLOG": (_int(1), "listen backlog"),
    "LOGGING_LEVEL": (parse_level, "log level"),
    "AGENCIES": (_int(1), "agencies that must send END before the draw (ids 1..AGENCIES)"),
    "STORAGE_DIR": (_path, "where bets.csv and bets.db live"),
    "WINNING_NUMBER": (_int(0, 9999), "the drawn number"),
    "MAX_CONNECTIONS": (_int(1), "client connections open at once (capped by open files)"),
    "WORKERS": (_workers, "worker processes answering messages (0: 2 x CPUs + 1)"),
    "IDLE_TIMEOUT_S": (_seconds, "a connection with no complete message for this long is closed"),
    "WINNERS_WAIT_S": (_seconds, "how long a WINNERS before the draw is held open"),
    "SHUTDOWN_GRACE_S": (_seconds, "how long shutdown waits for connections to finish"),
    "AGENCY_KEYS": (_optional_path, "file of <agency>:<key> lines; empty: open mode"),
}


@dataclass(frozen=True)
class ServerConfig:
    server_port: int
    server_listen_backlog: int
    logging_level: str
    agencies: int
    storage_dir: str
    winning_number: int
    max_connections: int
    workers: int
    idle_timeout_s: float
    winners_wait_s: float
    shutdown_grace_s: float
    agency_keys: str  # the path only: keys are loaded by server.keys and never logged

    def describe(self) -> dict[str, object]:
        """Every setting by its lower-case name, for the start-up log line."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def load_config(path: Path = CONFIG_PATH, environ: Mapping[str, str] = os.environ) -> ServerConfig:
    """Read the file, apply environment overrides, validate; raise ConfigError."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keep keys upper-case as written
    try:
        if not parser.read(path, encoding="utf-8"):
            raise ConfigError(f"cannot read configuration file {path}")
    except configparser.Error as exc:
        raise ConfigError(f"{path}: {exc}") from None
    file_values = parser.defaults()
    unknown = set(file_values) - set(SETTINGS)
    if unknown:
        raise ConfigError(f"{path}: unknown key {sorted(unknown)[0]}")
    values = {}
    for name, (parse, _meaning) in SETTINGS.items():
        raw = environ.get(name, file_values.get(name))
        if raw is None:
            raise ConfigError(f"{name}: missing (set it in {path.name} or the environment)")
        try:
            values[name.lower()] = parse(raw.strip())
        except ValueError as exc:
            raise ConfigError(f"{name}: {exc}") from None
    return ServerConfig(**values)
