"""Settings declared once, the same shape for both programs (gunicorn's way): each has the key
it has in its file, the environment variable that overrides it, a built-in default, a parser
and a meaning. A program reads its file into {key: raw value}; resolve() does the rest."""

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from common.logs import parse_level


class ConfigError(ValueError):
    """A setting is missing or invalid; the message names the key and the problem."""


@dataclass(frozen=True)
class Setting:
    key: str  # as written in the program's file
    env: str  # the environment variable that overrides it
    default: object  # None: no default (optional unless required)
    parse: Callable[[str], object]
    meaning: str
    required: bool = False

    def name(self) -> str:
        return self.key if self.key == self.env else f"{self.key} ({self.env})"


def resolve(
    settings: list[Setting], file_values: Mapping[str, object], environ: Mapping[str, str]
) -> dict[str, object]:
    """Every setting's value by key: environment, else file, else default; parsed."""
    values: dict[str, object] = {}
    for setting in settings:
        raw = environ.get(setting.env)
        if raw is None:
            raw = file_values.get(setting.key)
        if raw is None:
            raw = setting.default
        if raw is None:
            if setting.required:
                raise ConfigError(
                    f"{setting.name()}: missing; set it in the file or the environment"
                )
            values[setting.key] = None
            continue
        try:
            values[setting.key] = setting.parse(str(raw).strip())
        except ValueError as exc:
            raise ConfigError(f"{setting.name()}: {exc}") from None
    return values


def unknown(settings: list[Setting], file_keys) -> tuple[str, ...]:
    """Keys of the file that are no setting (a typo must be visible: callers warn)."""
    known = {s.key for s in settings}
    return tuple(sorted(k for k in file_keys if k not in known))


# --- parsers: each raises ValueError with the problem, resolve() adds the key ---------------


def integer(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not an integer") from None
        if value < low or (high is not None and value > high):
            raise ValueError(f"{value} is not in {low}..{high if high is not None else ''}")
        return value

    return parse


def seconds(allow_zero: bool = False) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number of seconds") from None
        if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
            kind = "a number of seconds >= 0" if allow_zero else "a positive number of seconds"
            raise ValueError(f"{text!r} must be {kind}")
        return value

    return parse


_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def duration(text: str) -> float:
    """A Go-style duration ("150ms", "5s", "1m30s"; "0") or a plain number of seconds."""
    try:
        return seconds(allow_zero=True)(text)
    except ValueError:
        pass
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{text!r} is not a duration such as 150ms, 5s or 1m30s")
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)


def text(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    return value


def optional_text(value: str) -> str:
    return value


def address(value: str) -> tuple[str, int]:
    host, colon, port = value.rpartition(":")
    if not colon or not host:
        raise ValueError(f"{value!r} is not host:port")
    return host, integer(1, 65535)(port)


level = parse_level
