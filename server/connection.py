"""One turn of a connection in a worker: answer every complete message that has arrived,
then give the connection back to the acceptor (or close it)."""

import logging
import time
from dataclasses import dataclass

from common.logs import event
from protocol import (
    FAIL,
    Bets,
    MessageTooLarge,
    ProtocolError,
    Response,
    decode_request,
    encode,
    peek_bet_count,
)
from server.handoff import Outcome, Ticket
from server.session import HELD, Session
from transport import MessageStream

log = logging.getLogger(__name__)

# A turn ends after this long even if the peer keeps sending, so that one busy agency cannot
# keep a worker from the connections queued behind it.
TURN_SLICE_S = 0.1

GROUP_LIMIT = 16  # messages handled together at most


@dataclass(frozen=True)
class Undecodable:
    """A line that is not a message, kept in its place among the decoded ones."""

    line: bytes
    error: ProtocolError

    def log(self, agency: int | None) -> None:
        count = peek_bet_count(self.line)
        if count is not None:
            log.info(event("apuesta_recibida", "fail", cantidad=count, error=self.error))
        else:
            log.info(event("mensaje", "fail", agency=agency, error=self.error))


def _decoded(line: bytes):
    try:
        return decode_request(line)
    except ProtocolError as exc:
        return Undecodable(line, exc)


def serve_turn(sock, ticket: Ticket, session: Session) -> Outcome:
    """Answer what has arrived on the connection; never waits for the peer."""
    stream = MessageStream(sock, initial=ticket.buffer)
    active = False
    slice_ends = time.monotonic() + TURN_SLICE_S

    def outcome(close: bool, more: bool = False) -> Outcome:
        return Outcome(
            ticket.conn_id,
            close,
            session.agency,
            b"" if close else stream.pending(),
            session.held_since,
            active,
            more,
        )

    try:
        while True:
            lines = stream.ready_lines(GROUP_LIMIT)
            if not lines:
                return outcome(_closing(stream, session, ticket.peer))
            active = True
            answers, held = _answer_group(lines, session)
            if answers:
                stream.send(answers)
            if held:
                stream.unread(held)
                return outcome(False)
            if time.monotonic() >= slice_ends:
                return outcome(False, more=True)
    except OSError as exc:  # reset by the peer, or it stopped reading its answers
        log.info(event("connection", "fail", agency=session.agency, error=exc))
        return outcome(True)


def _closing(stream: MessageStream, session: Session, peer: str) -> bool:
    """Whether the connection must close now that nothing complete is left; logs why."""
    error = stream.take_error()
    if isinstance(error, MessageTooLarge):
        stream.send(encode(Response(FAIL, str(error))))
        log.info(event("mensaje", "fail", agency=session.agency, error=error))
        return True
    if isinstance(error, ProtocolError):  # EOF in the middle of a message
        log.info(event("mensaje", "fail", agency=session.agency, error=error))
        return True
    if isinstance(error, OSError):
        log.info(event("connection", "fail", agency=session.agency, error=error))
        return True
    if stream.eof:
        log.debug(event("connection_closed", "success", peer=peer, reason="peer closed"))
        return True
    return False


def _answer_group(lines: list[bytes], session: Session) -> tuple[bytes, list[bytes]]:
    """The answers to lines, in order, and the lines left unanswered behind a held WINNERS.

    Consecutive BETS are stored together (one lock, one write, one commit for the group).
    """
    requests = [_decoded(line) for line in lines]
    out: list[bytes] = []
    i = 0
    while i < len(requests):
        request = requests[i]
        if isinstance(request, Bets):
            j = i
            while j < len(requests) and isinstance(requests[j], Bets):
                j += 1
            out += [encode(answer) for answer in session.handle_bets(requests[i:j])]
            i = j
            continue
        if isinstance(request, Undecodable):
            request.log(session.agency)
            out.append(encode(Response(FAIL, str(request.error))))
        else:
            response = session.handle(request)
            if response is HELD:
                return b"".join(out), lines[i:]
            out.append(encode(response))
        i += 1
    return b"".join(out), []
