"""The client's settings: declared once, read from client/config.yaml, overridable by
environment variables."""

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from common.logs import parse_level

CONFIG_PATH = Path(__file__).resolve().parent / "config.yaml"


class ConfigError(ValueError):
    """A setting is missing or invalid; the message names the key."""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(f"{value} must be at least 1")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{text!r} must be a number of seconds >= 0")
    return value


_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def _duration(text: str) -> float:
    """A Go-style duration ("150ms", "5s", "1m30s"; "0") or a plain number of seconds."""
    text = text.strip()
    try:
        return _seconds(text)
    except ValueError:
        pass
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{text!r} is not a duration such as 150ms, 5s or 1m30s")
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)


def _address(text: str) -> tuple[str, int]:
    host, colon, port = text.rpartition(":")
    if not colon or not host:
        raise ValueError(f"{text!r} is not host:port")
    number = int(port)
    if not 1 <= number <= 65535:
        raise ValueError(f"port {number} is not in 1..65535")
    return host, number


def _text(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be empty")
    return text


# yaml key: (environment variable, default, parser, meaning)
SETTINGS: dict[str, tuple[str, object, Callable[[str], object], str]] = {
    "id": ("CLI_ID", None, _positive_int, "agency number"),
    "server.address": ("CLI_SERVER_ADDRESS", "server:12345", _address, "host:port"),
    "batch.maxAmount": ("CLI_BATCH_MAXAMOUNT", 128, _positive_int, "bets per batch at most"),
    "log.level": ("CLI_LOG_LEVEL", "INFO", parse_level, "log level"),
    "data.path": ("CLI_DATA_PATH", "/data/agency.csv", _text, "the agency's bets"),
    "data.rejectsPath": ("CLI_REJECTS_PATH", None, _text, "where refused rows are written"),
    "retry.maxSeconds": ("CLI_RETRY_MAXSECONDS", 30, _seconds, "how long to keep reconnecting"),
    "auth.keyPath": ("CLI_KEY_PATH", None, _text, "a file holding the agency's key"),
    "loop.period": ("CLI_LOOP_PERIOD", 0, _duration, "a pause between batches"),
    "loop.amount": ("CLI_LOOP_AMOUNT", None, _text, "accepted for the course's files; unused"),
}


@dataclass(frozen=True)
class ClientConfig:
    agency: int
    server: tuple[str, int]
    batch_max_amount: int
    log_level: str
    data_path: Path
    rejects_path: Path
    retry_max_seconds: float
    key_path: Path | None = None  # read once at start; the key itself is never logged
    loop_period: float = 0.0
    unknown_keys: tuple[str, ...] = ()  # in the file but not settings: logged as warnings

    def describe(self) -> dict[str, object]:
        return {
            "id": self.agency,
            "server": f"{self.server[0]}:{self.server[1]}",
            "batch_max_amount": self.batch_max_amount,
            "data_path": self.data_path,
            "rejects_path": self.rejects_path,
            "retry_max_seconds": self.retry_max_seconds,
            "key_path": self.key_path or "-",
            "loop_period": self.loop_period,
        }


def _lookup(document: dict, dotted: str):
    node = document
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def load_config(environ: Mapping[str, str] = os.environ) -> ClientConfig:
    """Read CLI_CONFIG (default client/config.yaml), apply the environment, validate."""
    path = Path(environ.get("CLI_CONFIG", CONFIG_PATH))
    try:
        document = yaml.safe_load(path.read_text("utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"CLI_CONFIG: cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"CLI_CONFIG: {path} is not valid YAML: {exc}") from None
    if not isinstance(document, dict):
        raise ConfigError(f"CLI_CONFIG: {path} must hold a mapping of settings")
    values = {}
    for key, (env, default, parse, _meaning) in SETTINGS.items():
        raw = environ.get(env)
        if raw is None:
            raw = _lookup(document, key)
        if raw is None:
            raw = default
        if raw is None:
            values[key] = None
            continue
        try:
            values[key] = parse(str(raw).strip())
        except ValueError as exc:
            raise ConfigError(f"{key} ({env}): {exc}") from None
    if values["id"] is None:
        raise ConfigError("id (CLI_ID): missing; set it in config.yaml or the environment")
    data_path = Path(values["data.path"])
    rejects = values["data.rejectsPath"]
    return ClientConfig(
        agency=values["id"],
        server=values["server.address"],
        batch_max_amount=values["batch.maxAmount"],
        log_level=values["log.level"],
        data_path=data_path,
        rejects_path=Path(rejects) if rejects else Path(f"{data_path}.rejected.csv"),
        retry_max_seconds=values["retry.maxSeconds"],
        key_path=Path(values["auth.keyPath"]) if values["auth.keyPath"] else None,
        loop_period=values["loop.period"],
        unknown_keys=tuple(k for k in _leaves(document) if k not in SETTINGS),
    )


def _leaves(document: dict, prefix: str = "") -> list[str]:
    """The dotted names of a YAML document's leaves (server.address, ...)."""
    found = []
    for key, value in document.items():
        name = f"{prefix}{key}"
        found += _leaves(value, name + ".") if isinstance(value, dict) else [name]
    return found


def read_key(path: Path) -> str:
    """The agency's key from its file (surrounding whitespace ignored); ValueError if the
    file cannot be read or does not hold a key of 16-128 characters from [A-Za-z0-9_-]."""
    try:
        key = path.read_text("utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    if not (16 <= len(key) <= 128) or not all(
        c.isascii() and (c.isalnum() or c in "_-") for c in key
    ):
        raise ValueError(f"{path} does not hold a key (16-128 characters from A-Z a-z 0-9 _ -)")
    return key
