"""Percent-escaping of the characters that delimit fields and messages."""

import re

from protocol.errors import ProtocolError

_ESCAPES = {"%": "%25", ",": "%2C", ";": "%3B", "=": "%3D", "\r": "%0D", "\n": "%0A"}
_TABLE = str.maketrans(_ESCAPES)
_RESERVED = re.compile(r"[%,;=\r\n]")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def needs_escape(value: str) -> bool:
    """Whether the value holds a character that must be escaped."""
    return _RESERVED.search(value) is not None


def escape(value: str) -> str:
    """Escape exactly % , ; = CR LF; everything else (accents included) travels as is."""
    if _RESERVED.search(value) is None:
        return value
    return value.translate(_TABLE)


def unescape(value: str) -> str:
    """Decode every %XX (either case) as UTF-8 bytes; a lone % or bad UTF-8 is a ProtocolError."""
    if "%" not in value:
        return value
    bad = _BAD_ESCAPE.search(value)
    if bad is not None:
        raise ProtocolError(f"bad escape {value[bad.start() : bad.start() + 3]!r}")
    from urllib.parse import unquote  # only escaped values need it; keeps start-up light

    try:
        return unquote(value, errors="strict")
    except UnicodeDecodeError:
        raise ProtocolError("escaped bytes are not valid UTF-8") from None
