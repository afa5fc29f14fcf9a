"""One turn of some connections in a worker: answer every complete message that has arrived,
then give each connection back to the acceptor (or close it)."""

import logging
import time
from collections import deque
from dataclasses import dataclass, field

from common.logs import event
from protocol import (
    FAIL,
    TLS_ON_PLAINTEXT,
    Bets,
    End,
    MessageTooLarge,
    ProtocolError,
    Response,
    decode_request,
    encode,
    peek_bet_count,
    starts_tls,
)
from server.conn_state import TurnEnd
from server.handoff import Outcome, Ticket
from server.session import HELD, Session, Write
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


@dataclass(eq=False)
class _Turn:
    """One connection's part of a worker's turn."""

    ticket: Ticket
    session: Session
    stream: MessageStream
    todo: deque = field(default_factory=deque)  # (line, request) received, not answered
    out: list = field(default_factory=list)  # encoded answers not sent yet
    write: Write | None = None  # waiting for the round's commit
    active: bool = False
    ended: TurnEnd | None = None  # once its part of the turn is over

    def outcome(self) -> Outcome:
        close = self.ended is TurnEnd.CLOSE
        if not close:
            self.stream.unread([line for line, _ in self.todo])
        buffer = b"" if close else self.stream.pending()
        return Outcome(state=self.session.leave(buffer), end=self.ended, active=self.active)


def serve_turns(lent: list, session_for, commit, deliver) -> list[Outcome]:
    """Answer what has arrived on each lent (sock, ticket); never waits for a peer.

    Rounds: each connection answers its messages in order up to its next write (a BETS run
    or an END), the writes of every connection are committed together (one lock, one CSV
    write, one fsync'd commit for all), the answers are sent, and the next round goes on
    from there, until nothing complete is left or the time slice ends. Then deliver() is
    told, once, which agencies were sent their whole winners list.
    """
    turns = [
        _Turn(ticket, session_for(ticket), MessageStream(sock, initial=ticket.state.buffer))
        for sock, ticket in lent
    ]
    slice_ends = time.monotonic() + TURN_SLICE_S
    delivered: list[int] = []
    while live := [t for t in turns if t.ended is None]:
        for turn in live:
            _advance(turn)
        writes = [t for t in live if t.write is not None]
        if writes:
            result = commit([(t.write, t.session.agency) for t in writes])
            for turn in writes:
                turn.out += [encode(a) for a in turn.session.answers(turn.write, result)]
                turn.write = None
        for turn in live:
            delivered += _flush(turn)
        if time.monotonic() >= slice_ends:
            for turn in live:
                if turn.ended is None:
                    turn.ended = TurnEnd.MORE
    if delivered:
        deliver(delivered)
    return [t.outcome() for t in turns]


def _advance(turn: _Turn) -> None:
    """Answer the connection's messages up to its next write; end its part when it has
    nothing complete left (or holds a WINNERS)."""
    if not turn.todo:
        lines = turn.stream.ready_lines(GROUP_LIMIT)
        if starts_tls(lines[0] if lines else turn.stream.pending()):
            # A ClientHello is binary (a line only by chance): one clear answer, then close.
            log.info(event("connection", "fail", peer=turn.ticket.state.peer,
                           error="a TLS client on the plaintext port"))  # fmt: skip
            turn.out.append(encode(Response(FAIL, TLS_ON_PLAINTEXT)))
            turn.ended = TurnEnd.CLOSE
            return
        if not lines:
            turn.ended = TurnEnd.CLOSE if _closing(turn) else TurnEnd.PARK
            return
        turn.active = True
        turn.todo.extend((line, _decoded(line)) for line in lines)
    session, todo = turn.session, turn.todo
    while todo:
        request = todo[0][1]
        if isinstance(request, Bets):
            run = []
            while todo and isinstance(todo[0][1], Bets):
                run.append(todo.popleft()[1])
            write = session.plan_bets(run)
            if write.pending:
                turn.write = write
                return
            turn.out += [encode(answer) for answer in write.answers]
        elif isinstance(request, End):
            todo.popleft()
            write = session.plan_end(request)
            if isinstance(write, Write):
                turn.write = write
                return
            turn.out.append(encode(write))
        elif isinstance(request, Undecodable):
            todo.popleft()
            request.log(session.agency)
            turn.out.append(encode(Response(FAIL, str(request.error))))
        else:
            response = session.handle(request)
            if response is HELD:  # it stays first in todo, asked again on a later turn
                turn.ended = TurnEnd.PARK
                return
            todo.popleft()
            turn.out.append(encode(response))
            if session.must_close:  # too many failed AUTHs: the rest is not read
                log.info(event("connection_closed", "success", peer=turn.ticket.state.peer,
                               reason="too many failed authentications"))  # fmt: skip
                todo.clear()
                turn.ended = TurnEnd.CLOSE
                return


def _flush(turn: _Turn) -> list[int]:
    """Send the answers; the agencies whose whole winners list they carried."""
    if not turn.out:
        return []
    out, turn.out = turn.out, []
    try:
        turn.stream.send(b"".join(out))
    except OSError as exc:  # reset by the peer, or it stopped reading its answers
        log.info(event("connection", "fail", agency=turn.session.agency, error=exc))
        turn.ended = TurnEnd.CLOSE
        return []
    return turn.session.take_delivered()


def _closing(turn: _Turn) -> bool:
    """Whether the connection must close now that nothing complete is left; logs why."""
    stream, agency = turn.stream, turn.session.agency
    error = stream.take_error()
    if isinstance(error, MessageTooLarge):
        turn.out.append(encode(Response(FAIL, str(error))))  # after every earlier answer
        log.info(event("mensaje", "fail", agency=agency, error=error))
        return True
    if isinstance(error, ProtocolError):  # EOF in the middle of a message
        log.info(event("mensaje", "fail", agency=agency, error=error))
        return True
    if isinstance(error, OSError):
        log.info(event("connection", "fail", agency=agency, error=error))
        return True
    if stream.eof:
        if agency is not None:  # a healthcheck's PING-only connection is not worth a line
            log.debug(event("connection_closed", "success", agency=agency, reason="peer closed"))
        return True
    return False
