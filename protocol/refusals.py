"""Refusal texts that the other side acts on, each written once: the server builds them, the
client recognises them (they stay readable by a person in a log or an `nc` session)."""

import re

_REPLAY_MISMATCH = "bet {index}: position {seq} already holds a different bet"
_REPLAY_MISMATCH_RE = re.compile(r"position (\d+) already holds a different bet")


TLS_ON_PLAINTEXT = "this port speaks plaintext: a TLS client must connect to the TLS port"
_TLS_HANDSHAKE_RECORD = b"\x16"  # the first byte a TLS client sends; no message starts so


def starts_tls(data: bytes) -> bool:
    """Whether a connection's first bytes are a TLS handshake (a TLS client on a plain port)."""
    return data[:1] == _TLS_HANDSHAKE_RECORD


def speaks_for(agency: int) -> str:
    """A message names another agency than the one this connection speaks for."""
    return f"this connection speaks for agency {agency}"


def out_of_range(agency: int, agencies: int) -> str:
    return f"agency {agency} is not in 1..{agencies}"


def replay_mismatch(index: int, seq: int) -> str:
    """A resent batch's index-th bet (from 1) differs from what position seq holds."""
    return _REPLAY_MISMATCH.format(index=index, seq=seq)


def mismatched_position(message: str) -> int | None:
    """The position a replay_mismatch refusal names, or None for any other message."""
    found = _REPLAY_MISMATCH_RE.search(message)
    return None if found is None else int(found.group(1))
