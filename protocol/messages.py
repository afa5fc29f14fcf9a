"""The messages of the protocol, as frozen values (see docs/PROTOCOL.md)."""

from dataclasses import dataclass

from domain import Bet

MAX_MESSAGE_BYTES = 8192

SUCCESS = "success"
FAIL = "fail"
WAIT = "wait"
RESULTS = (SUCCESS, FAIL, WAIT)

# The answer when the server cannot take a connection now (result WAIT, with RETRY_MS).
SERVER_BUSY = "server busy"
# HELLO's answer from a server that checks no keys (open mode).
OPEN_MODE = "open"
# The one answer to every failed AUTH, whatever the cause.
AUTH_FAILED = "authentication failed"
AUTHENTICATE_FIRST = "authenticate first (HELLO, AUTH)"
# A server configured with AGENCIES=0 (the course's `generar-compose.sh <file> 0`).
NO_AGENCIES = "no agency is configured on this server (AGENCIES=0): bets are refused"


@dataclass(frozen=True, slots=True)
class Bets:
    """A batch of bets; seq is the position of the first one in its agency's stream, if known."""

    bets: tuple[Bet, ...]
    seq: int | None = None


@dataclass(frozen=True, slots=True)
class End:
    """The agency has sent all its bets."""

    agency: int


@dataclass(frozen=True, slots=True)
class Winners:
    """The agency asks for its winners, from the offset-th on (answers fit in 8 KiB)."""

    agency: int
    offset: int = 0


@dataclass(frozen=True, slots=True)
class Resume:
    """The agency asks how many of its bets are stored (its position)."""

    agency: int


@dataclass(frozen=True, slots=True)
class Hello:
    """The agency asks for a challenge (a nonce) to authenticate with."""

    agency: int


@dataclass(frozen=True, slots=True)
class Auth:
    """The agency's proof: lowercase hex HMAC-SHA256 of the nonce, keyed with its key."""

    agency: int
    proof: str


@dataclass(frozen=True, slots=True)
class Ping:
    """Health check."""


@dataclass(frozen=True, slots=True)
class Response:
    """The server's one-line answer; documents is only present on WINNERS answers, retry_ms
    (how long to wait before asking again) on some WAIT answers."""

    result: str
    message: str
    documents: tuple[str, ...] | None = None
    retry_ms: int | None = None


Request = Bets | End | Winners | Resume | Hello | Auth | Ping
Message = Request | Response
