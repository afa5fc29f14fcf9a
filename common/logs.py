"""The course's log format: `action: X | result: Y | key: value`, after a time and level."""

import logging
import re
import sys

FORMAT = "%(asctime)s %(levelname)-8s %(message)s"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
QUIET_LIBRARIES = ("filelock",)


def parse_level(text: str) -> str:
    """A log level name, any case; ValueError naming the accepted ones otherwise."""
    if text.upper() not in LEVELS:
        raise ValueError(f"{text!r} is not one of {', '.join(LEVELS)}")
    return text.upper()


def setup_logging(level: str) -> None:
    """Send every log line to standard error in the course's format."""
    # logging's default asctime ("2026-11-28 18:44:25,428"): milliseconds make the logs a
    # usable timeline (make bench reads them).
    logging.basicConfig(level=getattr(logging, level), format=FORMAT, stream=sys.stderr, force=True)
    # Libraries speak only when something is wrong: filelock's per-acquire DEBUG lines would
    # drown ours (and cost a call each).
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)


# A value must not forge a field or a line: `|` and control characters (CR, LF, ...) are
# written as %XX, as the wire protocol escapes its own delimiters.
_FORGERY = re.compile(r"[|\x00-\x1f\x7f]")


def _safe(value: object) -> str:
    text = str(value)
    if _FORGERY.search(text) is None:
        return text
    return _FORGERY.sub(lambda m: f"%{ord(m.group()):02X}", text)


def event(action: str, result: str, **fields: object) -> str:
    """One log line's message: action, result, then key: value pairs in order. Values are
    escaped: whatever a peer sent cannot add a field or a line."""
    parts = [f"action: {action}", f"result: {result}"]
    parts += [f"{key}: {_safe(value)}" for key, value in fields.items()]
    return " | ".join(parts)
