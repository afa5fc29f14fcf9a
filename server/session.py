"""What the server answers to each message of one connection. No sockets here."""

import datetime
import logging
import time
from dataclasses import dataclass, field, replace

from common.logs import event
from domain import InvalidBet
from protocol import (
    AUTH_FAILED,
    AUTHENTICATE_FIRST,
    FAIL,
    MAX_MESSAGE_BYTES,
    NO_AGENCIES,
    OPEN_MODE,
    SUCCESS,
    WAIT,
    Auth,
    Bets,
    End,
    Hello,
    Ping,
    Response,
    Resume,
    Winners,
    encode,
    escape,
    out_of_range,
    replay_mismatch,
    speaks_for,
)
from server.barrier import ReplicaBarrier
from server.config import ServerConfig
from server.conn_state import ConnState
from server.keys import MAX_FAILURES, AgencyKeys, nonce
from server.meters import NoMeter, WorkerMeter
from server.state import LotteryState
from storage import (
    BetStore,
    Committed,
    DatabaseLocked,
    ReplayMismatch,
    Round,
    StorageError,
    Stored,
)
from storage.replica import ReplicaUnconfirmed

log = logging.getLogger(__name__)


NO_METER = NoMeter()
REPLICA_WARN_EVERY_S = 5.0  # a replica that cannot confirm: one WARNING per interval
_replica_warned_at = 0.0
QUERY_RETRY_MS = 1000  # after a storage error answering RESUME or WINNERS


class Held:
    """A WINNERS asked before the draw: answered when the draw happens or its wait ends."""


HELD = Held()


@dataclass
class Write:
    """A connection's BETS run or END, planned; committed with its round, then answered."""

    requests: list  # consecutive Bets, or one End
    answers: list  # Response per request; None while it waits for the commit
    pending: list[int] = field(default_factory=list)  # requests to commit
    group_index: int = 0  # where its batches are in the round's groups
    end_index: int = 0  # where its END is in the round's ends

    def groups(self, agency: int | None) -> list:
        batches = [
            (r.bets, r.seq) for r in (self.requests[i] for i in self.pending) if isinstance(r, Bets)
        ]
        return [(agency, batches)] if batches else []

    def ends(self) -> list[int]:
        return [r.agency for r in (self.requests[i] for i in self.pending) if isinstance(r, End)]


class Session:
    """One connection's conversation: it speaks for one agency, bound by its first message.

    A session lives for one turn of its connection: it starts from the connection's
    ConnState and leaves a new one (what must outlive the turn goes through the acceptor).
    Writes are planned here (plan_bets, plan_end), committed with the round of every
    connection of the turn (commit_writes), then answered here (answers).
    """

    def __init__(
        self,
        config: ServerConfig,
        store: BetStore,
        state: LotteryState,
        keys: AgencyKeys | None,
        conn: ConnState,
        meter: WorkerMeter | NoMeter = NO_METER,
    ) -> None:
        self._config = config
        self._meter = meter
        self._store = store
        self._state = state
        self._keys = keys
        self._conn = conn
        self._peer = conn.peer
        self.agency = conn.agency  # with keys, set only by a successful AUTH
        self.held_since = conn.held_since
        self.auth = conn.auth
        self.must_close = False  # too many failed AUTHs: answer, then close
        self.delivered: list[int] = []  # agencies whose whole winners list is being sent

    def leave(self, buffer: bytes) -> ConnState:
        """The connection's state at the end of the turn, with the bytes not handled yet."""
        return replace(
            self._conn,
            agency=self.agency,
            auth=self.auth,
            held_since=self.held_since,
            buffer=buffer,
        )

    def handle(self, request: Ping | Hello | Auth | Winners | Resume) -> Response | Held:
        """The answer to a request that writes nothing, or HELD for a WINNERS that must wait
        for the draw. BETS and END go through plan_bets / plan_end."""
        if isinstance(request, Ping):
            return Response(SUCCESS, "PONG")
        if isinstance(request, Hello | Auth):
            return self._authenticate(request)
        refusal = self._bind(request.agency)
        if refusal is not None:
            return Response(FAIL, refusal)
        try:
            match request:
                case Winners():
                    return self._winners(request)
                case Resume():
                    position = self._store.position(request.agency)
                    log.info(event("resume", "success", agency=request.agency, position=position))
                    return Response(SUCCESS, str(position))
        except StorageError as exc:  # the question is fine, the disk is not: ask again
            log.error(event("query", "fail", agency=request.agency, error=exc))
            return Response(WAIT, f"{exc}; ask again later", None, QUERY_RETRY_MS)
        raise TypeError(f"unhandled request {request!r}")

    def _bind(self, agency: int) -> str | None:
        """Refusal text if this connection may not speak for agency; binds it in open mode."""
        if self.agency is None and self._keys is not None:
            return AUTHENTICATE_FIRST
        refusal = self._out_of_range(agency)
        if refusal is not None:
            return refusal
        if self.agency is None:
            self.agency = agency  # the acceptor closes an older connection of this agency
        elif agency != self.agency:
            return speaks_for(self.agency)
        return None

    def _out_of_range(self, agency: int) -> str | None:
        if self._config.agencies == 0:
            return NO_AGENCIES
        if not 1 <= agency <= self._config.agencies:
            return out_of_range(agency, self._config.agencies)
        return None

    def _authenticate(self, request: Hello | Auth) -> Response:
        """HELLO gives a fresh challenge; AUTH proves the agency's key for it (once)."""
        if self.agency is not None and request.agency != self.agency:
            return Response(FAIL, speaks_for(self.agency))
        if self._keys is None:  # open mode: nothing to prove
            refusal = self._bind(request.agency) if isinstance(request, Auth) else None
            return Response(FAIL, refusal) if refusal else Response(SUCCESS, OPEN_MODE)
        if isinstance(request, Hello):
            challenge = nonce()
            self.auth = replace(self.auth, nonce=challenge, nonce_agency=request.agency)
            return Response(SUCCESS, challenge)
        challenge, named = self.auth.nonce, self.auth.nonce_agency
        self.auth = replace(self.auth, nonce=None, nonce_agency=None)  # one try per challenge
        proven = (
            challenge is not None
            and named == request.agency
            and self._keys.verify(request.agency, challenge, request.proof)
            and self._out_of_range(request.agency) is None
        )
        if not proven:
            self.auth = replace(self.auth, failures=self.auth.failures + 1)
            self.must_close = self.auth.failures >= MAX_FAILURES
            log.warning(event("auth", "fail", agency=request.agency, peer=self._peer))
            return Response(FAIL, AUTH_FAILED)
        self.agency = request.agency  # the acceptor closes an older connection of this agency
        log.info(event("auth", "success", agency=request.agency, peer=self._peer))
        return Response(SUCCESS, f"agency {request.agency} authenticated")

    # --- writes: planned per connection, committed per round, answered per connection -----

    def take_delivered(self) -> list[int]:
        """The answers were sent: the agencies whose whole winners list they carried."""
        delivered, self.delivered = self.delivered, []
        return delivered

    def plan_bets(self, requests: list[Bets]) -> Write:
        """Refuse what is invalid now; the rest waits for the round's commit."""
        write = Write(requests, [None] * len(requests))
        for i, request in enumerate(requests):
            refusal = self._bind(request.bets[0].agency) or self._foreign(request.bets)
            refusal = refusal or self._invalid(request.bets)
            if refusal is None:
                write.pending.append(i)
            else:
                write.answers[i] = self._refused(request, FAIL, refusal)
        return write

    def plan_end(self, request: End) -> Write | Response:
        refusal = self._bind(request.agency)
        if refusal is not None:
            return Response(FAIL, refusal)
        return Write([request], [None], [0])

    def answers(self, write: Write, result: Committed | StorageError | None) -> list:
        """The answers to a write's requests, in order, once its round committed (or not)."""
        if isinstance(result, ReplicaUnconfirmed):  # stored here: the replica must catch up
            _warn_replica(result)
        elif isinstance(result, DatabaseLocked):  # someone else's transaction, not our disk
            log.warning(event("store", "fail", agency=self.agency, error=result))
        elif isinstance(result, StorageError):
            # The data is fine, the disk is not: the client should send it again later.
            log.error(event("store", "fail", agency=self.agency, error=result))
        for n, i in enumerate(write.pending):
            request = write.requests[i]
            if isinstance(request, End):
                write.answers[i] = self._end_answer(request.agency, result, write.end_index)
            elif isinstance(result, ReplicaUnconfirmed):
                reason = f"{result}; stored here, send it again later (nothing is stored twice)"
                write.answers[i] = self._refused(request, WAIT, reason)
            elif isinstance(result, StorageError):
                reason = f"{result}; nothing of this batch was stored, send it again later"
                write.answers[i] = self._refused(request, WAIT, reason)
            else:
                outcome = result.bets[write.group_index][n]
                if isinstance(outcome, Stored):
                    log.info(event("apuesta_recibida", "success", cantidad=len(request.bets)))
                    write.answers[i] = Response(SUCCESS, str(outcome.stored))
                    self._meter.batch(SUCCESS)
                elif isinstance(outcome, ReplayMismatch):
                    reason = replay_mismatch(outcome.index, outcome.seq)
                    write.answers[i] = self._refused(request, FAIL, reason)
                else:
                    write.answers[i] = self._refused(request, FAIL, str(outcome))
        return write.answers

    def _end_answer(self, agency: int, result, index: int) -> Response:
        if isinstance(result, ReplicaUnconfirmed):
            return Response(WAIT, f"{result}; the END is recorded here, send it again later")
        if isinstance(result, StorageError):
            return Response(WAIT, f"{result}; the END was not recorded, send it again later")
        finished = result.ends[index]
        log.info(
            event(
                "fin_apuestas",
                "success",
                agency=agency,
                repeated=not finished.newly,
                finished=f"{finished.finished_count}/{self._config.agencies}",
            )
        )
        return Response(SUCCESS, f"agency {agency} finished")

    def _foreign(self, bets) -> str | None:
        """A batch holding another agency's bet is refused whole."""
        for i, bet in enumerate(bets, 1):
            if bet.agency != self.agency:
                if self._keys is not None:
                    return speaks_for(self.agency)
                return f"bet {i}: AGENCY {bet.agency} differs from the batch's agency {self.agency}"
        return None

    def _invalid(self, bets) -> str | None:
        today = datetime.date.today()
        for i, bet in enumerate(bets, 1):
            try:
                bet.validate(today)
            except InvalidBet as exc:
                return f"bet {i}: {exc}"
        return None

    def _refused(self, request: Bets, result: str, reason: str) -> Response:
        self._meter.batch(result)
        log.info(event("apuesta_recibida", "fail", cantidad=len(request.bets), error=reason))
        return Response(result, reason)

    def _winners(self, request: Winners) -> Response | Held:
        if not self._state.drawn:
            # Held by the acceptor, not by a process: answered the moment the draw happens.
            now = time.monotonic()
            if self.held_since is None:
                self.held_since = now
                log.debug(event("consulta_ganadores", "in_progress", agency=request.agency))
            if now - self.held_since < self._config.winners_wait_s:
                return HELD
            self.held_since = None
            done = len(self._state.finished())
            return Response(
                WAIT,
                f"the draw has not happened yet ({done} of {self._config.agencies} "
                "agencies finished)",
            )
        self.held_since = None
        documents = self._store.winners(request.agency)
        page = _fitting(documents[request.offset :], len(documents))
        if request.offset + len(page) >= len(documents):
            self.delivered.append(request.agency)
        log.info(
            event(
                "consulta_ganadores",
                "success",
                agency=request.agency,
                cant_ganadores=len(documents),
            )
        )
        return Response(SUCCESS, str(len(documents)), tuple(page))


def commit_writes(
    writes: list[tuple[Write, int | None]],
    config: ServerConfig,
    store: BetStore,
    state: LotteryState,
    meter: WorkerMeter | NoMeter = NO_METER,
    barrier: ReplicaBarrier | None = None,
) -> Committed | StorageError:
    """Commit the writes of several connections (each with its agency) as one round. With a
    replica, a round with an END (REPLICA_SYNC=end), or every round (commit), is answered only
    once the replica confirms it; until then its ENDs are not recorded in the shared state, so
    a draw it ran releases no WINNERS."""
    groups: list = []
    ends: list[int] = []
    for write, agency in writes:
        write.group_index, write.end_index = len(groups), len(ends)
        groups += write.groups(agency)
        ends += write.ends()
    work = Round(
        groups=groups, ends=ends, agencies=config.agencies, winning_number=config.winning_number
    )
    try:
        started = time.perf_counter()
        committed = store.commit(work)
        meter.commit(time.perf_counter() - started)
        if barrier is not None:
            barrier.after_commit(bool(ends), meter)
    except StorageError as exc:
        return exc
    state.record_ends(ends, committed.drawn)
    return committed


def _warn_replica(exc: ReplicaUnconfirmed) -> None:
    global _replica_warned_at
    now = time.monotonic()
    if now - _replica_warned_at >= REPLICA_WARN_EVERY_S:
        _replica_warned_at = now
        log.warning(event("replica", "fail", error=exc, answered="wait"))


def _fitting(documents: list[str], total: int) -> list[str]:
    """As many documents as fit in one answer; the client asks again with OFFSET for more."""
    size = len(encode(Response(SUCCESS, str(total), ())))
    page = []
    for document in documents:
        size += len(escape(document).encode()) + (1 if page else 0)
        if size > MAX_MESSAGE_BYTES:
            break
        page.append(document)
    return page
