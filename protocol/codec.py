"""Messages to bytes and bytes to messages. Pure: no sockets, no clocks."""

import datetime
import re

from domain import Bet, parse_birthdate, parse_non_negative_int
from protocol.errors import CannotEncode, MessageTooLarge, ProtocolError
from protocol.escaping import escape, needs_escape, unescape
from protocol.messages import (
    MAX_MESSAGE_BYTES,
    RESULTS,
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

BET_KEYS = ("AGENCY", "FIRST_NAME", "LAST_NAME", "DOCUMENT", "BIRTHDATE", "NUMBER")
_AGENCY_MESSAGES = {
    "END": End,
    "WINNERS": Winners,
    "RESUME": Resume,
    "HELLO": Hello,
    "AUTH": Auth,
}
_EXTRA_KEYS = {Winners: ("OFFSET",), Auth: ("PROOF",)}
_AGENCY_NAMES = {cls: name for name, cls in _AGENCY_MESSAGES.items()}


# --- encoding ---------------------------------------------------------------------------


def encode_bet(bet: Bet) -> bytes:
    """One bet's fields as they appear inside a BETS message (no separators around it)."""
    first, last, document = bet.first_name, bet.last_name, bet.document
    if needs_escape(first + last + document):
        first, last, document = escape(first), escape(last), escape(document)
    return (
        f"AGENCY={bet.agency},FIRST_NAME={first},LAST_NAME={last},DOCUMENT={document},"
        f"BIRTHDATE={bet.birthdate.isoformat()},NUMBER={bet.number}"
    ).encode()


def bets_header(count: int, seq: int | None) -> bytes:
    """The BETS header for count bets starting at seq."""
    return f"BETS={count}".encode() if seq is None else f"BETS={count},SEQ={seq}".encode()


def encode_bets(encoded_bets: list[bytes], seq: int | None) -> bytes:
    """A BETS message from already-encoded bets (lets a batcher encode each bet once)."""
    if not encoded_bets:
        raise ValueError("a BETS message needs at least one bet")
    return _checked(b";".join([bets_header(len(encoded_bets), seq), *encoded_bets]) + b"\n")


def encode(message: Message) -> bytes:
    """The message as one line of bytes, ending in \\n; refuses to exceed MAX_MESSAGE_BYTES."""
    match message:
        case Bets(bets, seq):
            return encode_bets([encode_bet(b) for b in bets], seq)
        case End() | Winners() | Resume() | Hello() | Auth():
            text = f"{_AGENCY_NAMES[type(message)]},AGENCY={message.agency}"
            if isinstance(message, Winners) and message.offset:
                text += f",OFFSET={message.offset}"
            if isinstance(message, Auth):
                text += f",PROOF={escape(message.proof)}"
        case Ping():
            text = "PING"
        case Response(result, text_message, documents, retry_ms):
            text = f"RESULT={escape(result)},MESSAGE={escape(text_message)}"
            if documents is not None:
                text += ",DOCUMENTS=" + ";".join(escape(d) for d in documents)
            if retry_ms is not None:
                text += f",RETRY_MS={retry_ms}"
        case _:
            raise TypeError(f"not a protocol message: {message!r}")
    return _checked(text.encode() + b"\n")


def _checked(data: bytes) -> bytes:
    if len(data) > MAX_MESSAGE_BYTES:
        raise CannotEncode(
            f"message of {len(data)} bytes exceeds the {MAX_MESSAGE_BYTES}-byte limit"
        )
    return data


# --- decoding ---------------------------------------------------------------------------


def decode_request(line: bytes) -> Request:
    """Decode one client message (a line without its \\n), or raise ProtocolError."""
    text = _text(line)
    if text.startswith("BETS="):
        return _decode_bets(text)
    head, comma, rest = text.partition(",")
    if head == "PING":
        if comma:
            raise ProtocolError("PING takes no fields")
        return Ping()
    cls = _AGENCY_MESSAGES.get(head)
    if cls is None:
        shown = head if len(head) <= 20 else head[:20] + "…"
        raise ProtocolError(f"unknown message type {shown!r}" if head else "empty message")
    keys = ("AGENCY", *_EXTRA_KEYS.get(cls, ()))
    fields = _fields(rest.split(",") if comma else [], keys, head, 2 if cls is Auth else 1)
    agency = _int(fields["AGENCY"], "AGENCY")
    if cls is Auth:
        return Auth(agency, unescape(fields["PROOF"]))
    if "OFFSET" in fields:
        return Winners(agency, _int(fields["OFFSET"], "OFFSET"))
    return cls(agency)


def decode_response(line: bytes) -> Response:
    """Decode one server answer (a line without its \\n), or raise ProtocolError."""
    fields = _fields(
        _text(line).split(","), ("RESULT", "MESSAGE", "DOCUMENTS", "RETRY_MS"), "answer", 2
    )
    result = unescape(fields["RESULT"])
    if result not in RESULTS:
        raise ProtocolError(f"answer: RESULT {result!r} is not one of {', '.join(RESULTS)}")
    documents = None
    if "DOCUMENTS" in fields:
        raw = fields["DOCUMENTS"]
        documents = tuple(unescape(d) for d in raw.split(";")) if raw else ()
    retry_ms = _int(fields["RETRY_MS"], "RETRY_MS") if "RETRY_MS" in fields else None
    return Response(result, unescape(fields["MESSAGE"]), documents, retry_ms)


def peek_bet_count(line: bytes) -> int | None:
    """The n a BETS message announces, if readable: for logging refused batches."""
    if not line.startswith(b"BETS="):
        return None
    digits = line[5:].split(b";", 1)[0].split(b",", 1)[0]
    return int(digits) if digits.isdigit() and len(digits) < 10 else None


def _text(line: bytes) -> str:
    if len(line) + 1 > MAX_MESSAGE_BYTES:
        raise MessageTooLarge(f"message exceeds the {MAX_MESSAGE_BYTES}-byte limit")
    if line.endswith(b"\r"):
        line = line[:-1]
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"invalid UTF-8 at byte {exc.start}") from None


def _fields(parts: list[str], keys: tuple[str, ...], where: str, required: int = -1) -> dict:
    """KEY=value parts into a dict of raw (still escaped) values; the first `required` keys
    (all by default) must be present, no key may repeat, no other key is allowed."""
    found: dict[str, str] = {}
    for part in parts:
        key, eq, value = part.partition("=")
        if not eq:
            raise ProtocolError(f"{where}: field {_short(part)!r} is not KEY=value")
        if key not in keys:
            raise ProtocolError(f"{where}: unknown key {_short(key)!r}")
        if key in found:
            raise ProtocolError(f"{where}: duplicate key {key!r}")
        found[key] = value
    for key in keys[: len(keys) if required < 0 else required]:
        if key not in found:
            raise ProtocolError(f"{where}: missing key {key!r}")
    return found


def _short(text: str) -> str:
    return text if len(text) <= 30 else text[:30] + "…"


def _int(raw: str, what: str) -> int:
    try:
        return parse_non_negative_int(raw, what)
    except ValueError as exc:
        raise ProtocolError(str(exc)) from None


def _decode_bets(text: str) -> Bets:
    header, *bodies = text.split(";")
    head_fields = _fields(header.split(","), ("BETS", "SEQ"), "header", 1)
    count = _int(head_fields["BETS"], "BETS")
    if count < 1:
        raise ProtocolError("BETS must announce at least 1 bet")
    seq = _int(head_fields["SEQ"], "SEQ") if "SEQ" in head_fields else None
    if len(bodies) != count:
        raise ProtocolError(f"BETS announces {count} bets but {len(bodies)} are present")
    return Bets(tuple(_decode_bet(body, i) for i, body in enumerate(bodies, 1)), seq)


def _decode_bet(body: str, index: int) -> Bet:
    return _decode_plain_bet(body) or _decode_any_bet(body, index)


_PLAIN_BET = re.compile(
    r"AGENCY=([0-9]{1,18}),FIRST_NAME=([^,;=%]*),LAST_NAME=([^,;=%]*),DOCUMENT=([^,;=%]*),"
    r"BIRTHDATE=([0-9]{4}-[0-9]{2}-[0-9]{2}),NUMBER=([0-9]{1,18})"
)


def _decode_plain_bet(body: str) -> Bet | None:
    """The common case, fast: keys in the canonical order, nothing escaped, plain digits.
    None sends anything else to the general decoder, which also explains what is wrong."""
    match = _PLAIN_BET.fullmatch(body)
    if match is None:
        return None
    agency, first, last, document, birthdate, number = match.groups()
    try:
        date = datetime.date.fromisoformat(birthdate)
    except ValueError:
        return None
    return Bet(int(agency), first, last, document, date, int(number))


def _decode_any_bet(body: str, index: int) -> Bet:
    where = f"bet {index}"
    f = _fields(body.split(","), BET_KEYS, where)
    try:
        return Bet(
            agency=_int(f["AGENCY"], "AGENCY"),
            first_name=unescape(f["FIRST_NAME"]),
            last_name=unescape(f["LAST_NAME"]),
            document=unescape(f["DOCUMENT"]),
            birthdate=parse_birthdate(unescape(f["BIRTHDATE"])),
            number=_int(f["NUMBER"], "NUMBER"),
        )
    except ValueError as exc:  # ProtocolError is a ValueError too
        raise ProtocolError(f"{where}: {exc}") from None
