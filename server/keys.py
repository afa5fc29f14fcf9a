"""Agency keys: who may speak for which agency (HMAC challenge-response, the key never travels).

The AGENCY_KEYS file holds lines `<agency>:<key>`; `#` starts a comment, blank lines are
allowed, a key is 16-128 characters from [A-Za-z0-9_-]. No file configured is open mode.
"""

import hmac
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from protocol.auth import proof

_KEY = re.compile(r"[A-Za-z0-9_-]{16,128}")
_PROOF = re.compile(r"[0-9a-f]{64}")


class KeysError(ValueError):
    """The keys file cannot be read or a line is malformed; says which file and line."""


@dataclass(frozen=True)
class AuthState:
    """A connection's authentication in progress; travels with it between turns."""

    nonce: str | None = None  # the challenge of its last HELLO, usable once
    nonce_agency: int | None = None  # the agency that HELLO named
    failures: int = 0


MAX_FAILURES = 3  # failed AUTHs before the connection is closed


def nonce() -> str:
    """A fresh challenge: 32 lowercase hex characters."""
    return secrets.token_hex(16)


class AgencyKeys:
    """The keys of the agencies that may authenticate. Never logged, never pickled to disk."""

    def __init__(self, keys: dict[int, str]) -> None:
        self._keys = keys

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:  # a key must never reach a log line by accident
        return f"AgencyKeys({len(self._keys)} agencies)"

    def verify(self, agency: int, challenge: str, answer: str) -> bool:
        """Whether answer proves the agency's key for challenge, in constant time."""
        key = self._keys.get(agency)
        # An unknown agency costs the same HMAC as a known one: timing tells nothing.
        expected = proof(key or "unknown-agency-key-placeholder", challenge)
        well_formed = _PROOF.fullmatch(answer) is not None
        matches = hmac.compare_digest(
            expected.encode("ascii"), (answer if well_formed else "").encode("ascii")
        )
        return key is not None and well_formed and matches


def load_keys(path: str | Path) -> AgencyKeys:
    """Read an AGENCY_KEYS file; KeysError names the file and line of the first problem."""
    path = Path(path)
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KeysError(f"AGENCY_KEYS: cannot read {path}: {exc}") from None
    keys: dict[int, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        agency, colon, key = (part.strip() for part in line.partition(":"))
        where = f"AGENCY_KEYS: {path} line {number}"
        if not colon or not agency.isdigit() or int(agency) < 1:
            raise KeysError(f"{where}: expected <agency>:<key> with agency a positive integer")
        if not _KEY.fullmatch(key):
            raise KeysError(f"{where}: a key is 16-128 characters from A-Z a-z 0-9 _ -")
        if int(agency) in keys:
            raise KeysError(f"{where}: agency {int(agency)} has a key already")
        keys[int(agency)] = key
    if not keys:
        raise KeysError(f"AGENCY_KEYS: {path} holds no key (unset AGENCY_KEYS for open mode)")
    return AgencyKeys(keys)
