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


# name: (parser, built-in default, meaning). config.ini restates most of them for people to
# edit; a file with only the course's four keys gets the rest from here.
SETTINGS: dict[str, tuple[Callable[[str], object], str, str]] = {
    "SERVER_PORT": (_int(1, 65535), "12345", "TCP port"),
    "SERVER_IP": (
        _optional_path,
        "",
        "accepted for the course's files; the server listens on all interfaces",
    ),
    "SERVER_LISTEN_BACKLOG": (_int(1), "2048", "listen backlog"),
    "LOGGING_LEVEL": (parse_level, "INFO", "log level"),
    "AGENCIES": (_int(1), "5", "agencies that must send END before the draw (ids 1..AGENCIES)"),
    "STORAGE_DIR": (_path, ".data", "where bets.csv and bets.db live"),
    "WINNING_NUMBER": (_int(0, 9999), "7574", "the drawn number"),
    "MAX_CONNECTIONS": (_int(1), "10000", "client connections open at once (capped by open files)"),
    "WORKERS": (_workers, "0", "worker processes answering messages (0: 2 x CPUs + 1)"),
    "IDLE_TIMEOUT_S": (
        _seconds,
        "30",
        "a connection with no complete message for this long is closed",
    ),
    "WINNERS_WAIT_S": (_seconds, "5", "how long a WINNERS before the draw is held open"),
    "SHUTDOWN_GRACE_S": (_seconds, "5", "how long shutdown waits for connections to finish"),
    "AGENCY_KEYS": (_optional_path, "", "file of <agency>:<key> lines; empty: open mode"),
}


@dataclass(frozen=True)
class ServerConfig:
    server_port: int
    server_ip: str
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
    # Keys of the file that are not settings (a typo must be visible): logged as warnings.
    unknown_keys: tuple[str, ...] = ()

    def describe(self) -> dict[str, object]:
        """Every setting by its lower-case name, for the start-up log line."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "unknown_keys"}


def load_config(path: Path | None = None, environ: Mapping[str, str] = os.environ) -> ServerConfig:
    """Read the file (SERVER_CONFIG, else server/config.ini), apply environment overrides,
    fill in built-in defaults, validate; raise ConfigError naming the key."""
    if path is None:
        path = Path(environ.get("SERVER_CONFIG") or CONFIG_PATH)
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keep keys upper-case as written
    try:
        if not parser.read(path, encoding="utf-8"):
            raise ConfigError(f"cannot read configuration file {path}")
    except configparser.Error as exc:
        raise ConfigError(f"{path}: {exc}") from None
    file_values = parser.defaults()
    values = {}
    for name, (parse, default, _meaning) in SETTINGS.items():
        raw = environ.get(name, file_values.get(name, default))
        try:
            values[name.lower()] = parse(raw.strip())
        except ValueError as exc:
            raise ConfigError(f"{name}: {exc}") from None
    unknown = tuple(sorted(set(file_values) - set(SETTINGS)))
    return ServerConfig(**values, unknown_keys=unknown)
