"""The wire protocol shared by server and client: sans-IO (no sockets here).

See docs/PROTOCOL.md for the contract.
"""

from protocol.auth import proof
from protocol.codec import (
    bets_header,
    decode_request,
    decode_response,
    encode,
    encode_bet,
    encode_bets,
    peek_bet_count,
)
from protocol.errors import CannotEncode, MessageTooLarge, ProtocolError
from protocol.escaping import escape, unescape
from protocol.framing import LineBuffer
from protocol.messages import (
    AUTH_FAILED,
    AUTHENTICATE_FIRST,
    FAIL,
    MAX_MESSAGE_BYTES,
    NO_AGENCIES,
    OPEN_MODE,
    SERVER_BUSY,
    SUCCESS,
    WAIT,
    Auth,
    Bets,
    End,
    Hello,
    Message,
    Ping,
    Request,
    Response,
    Resume,
    Winners,
)
from protocol.refusals import (
    TLS_ON_PLAINTEXT,
    mismatched_position,
    out_of_range,
    replay_mismatch,
    speaks_for,
    starts_tls,
)

__all__ = [
    "AUTHENTICATE_FIRST",
    "AUTH_FAILED",
    "FAIL",
    "MAX_MESSAGE_BYTES",
    "NO_AGENCIES",
    "OPEN_MODE",
    "SERVER_BUSY",
    "SUCCESS",
    "TLS_ON_PLAINTEXT",
    "WAIT",
    "Auth",
    "Bets",
    "CannotEncode",
    "End",
    "Hello",
    "LineBuffer",
    "Message",
    "MessageTooLarge",
    "Ping",
    "ProtocolError",
    "Request",
    "Response",
    "Resume",
    "Winners",
    "bets_header",
    "decode_request",
    "decode_response",
    "encode",
    "encode_bet",
    "encode_bets",
    "escape",
    "mismatched_position",
    "out_of_range",
    "peek_bet_count",
    "proof",
    "replay_mismatch",
    "speaks_for",
    "starts_tls",
    "unescape",
]
