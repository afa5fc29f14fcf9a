"""The course's log format: `action: X | result: Y | key: value`, after a time and level."""

import logging
import sys

FORMAT = "%(asctime)s %(levelname)-8s %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


def setup_logging(level: str) -> None:
    """Send every log line to standard error in the course's format."""
    logging.basicConfig(
        level=getattr(logging, level), format=FORMAT, datefmt=DATE_FORMAT, stream=sys.stderr,
        force=True,
    )  # fmt: skip


def event(action: str, result: str, **fields: object) -> str:
    """One log line's message: action, result, then key: value pairs in order."""
    parts = [f"action: {action}", f"result: {result}"]
    parts += [f"{key}: {value}" for key, value in fields.items()]
    return " | ".join(parts)
