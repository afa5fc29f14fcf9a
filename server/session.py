"""What the server answers to each message of one connection. No sockets here."""

import datetime
import logging
import time

from common.logs import event
from domain import InvalidBet
from protocol import (
    FAIL,
    MAX_MESSAGE_BYTES,
    SUCCESS,
    WAIT,
    Bets,
    End,
    Ping,
    Request,
    Response,
    Resume,
    Winners,
    encode,
    escape,
)
from server.config import ServerConfig
from server.state import LotteryState
from storage import BetStore, StorageError, Stored

log = logging.getLogger(__name__)


class Held:
    """A WINNERS asked before the draw: answered when the draw happens or its wait ends."""


HELD = Held()


class Session:
    """One connection's conversation: it speaks for one agency, bound by its first message.

    A session lives for one turn of its connection; what must outlive the turn (the agency,
    when a held WINNERS began) comes in and goes out through the acceptor.
    """

    def __init__(
        self,
        config: ServerConfig,
        store: BetStore,
        state: LotteryState,
        agency: int | None = None,
        held_since: float | None = None,
    ) -> None:
        self._config = config
        self._store = store
        self._state = state
        self.agency = agency
        self.held_since = held_since

    def handle(self, request: Request) -> Response | Held:
        """The answer to one request, or HELD for a WINNERS that must wait for the draw."""
        if isinstance(request, Ping):
            return Response(SUCCESS, "PONG")
        if isinstance(request, Bets):
            return self.handle_bets([request])[0]
        refusal = self._bind(request.agency)
        if refusal is not None:
            return Response(FAIL, refusal)
        match request:
            case End():
                return self._end(request.agency)
            case Winners():
                return self._winners(request)
            case Resume():
                position = self._store.position(request.agency)
                log.info(event("resume", "success", agency=request.agency, position=position))
                return Response(SUCCESS, str(position))
        raise TypeError(f"unhandled request {request!r}")

    def _bind(self, agency: int) -> str | None:
        if not 1 <= agency <= self._config.agencies:
            return f"agency {agency} is not in 1..{self._config.agencies}"
        if self.agency is None:
            self.agency = agency  # the acceptor closes an older connection of this agency
        elif agency != self.agency:
            return (
                f"this connection speaks for agency {self.agency}; "
                f"use another connection for agency {agency}"
            )
        return None

    def handle_bets(self, requests: list[Bets]) -> list[Response]:
        """Answers to consecutive BETS messages, stored together (one commit for the group)."""
        responses: list[Response | None] = [None] * len(requests)
        pending: list[tuple[int, Bets]] = []
        for i, request in enumerate(requests):
            refusal = self._bind(request.bets[0].agency) or self._invalid(request.bets)
            if refusal is None:
                pending.append((i, request))
            else:
                responses[i] = self._refused(request, FAIL, refusal)
        if pending:
            try:
                outcomes = self._store.store_many(
                    self.agency, [(r.bets, r.seq) for _, r in pending]
                )
            except StorageError as exc:
                # The data is fine, the disk is not: the client should send it again later.
                log.error(event("store", "fail", agency=self.agency, error=exc))
                reason = f"{exc}; nothing of this batch was stored, send it again later"
                for i, request in pending:
                    responses[i] = self._refused(request, WAIT, reason)
                return responses
            for (i, request), outcome in zip(pending, outcomes, strict=True):
                if isinstance(outcome, Stored):
                    log.info(event("apuesta_recibida", "success", cantidad=len(request.bets)))
                    responses[i] = Response(SUCCESS, str(outcome.stored))
                else:
                    responses[i] = self._refused(request, FAIL, str(outcome))
        return responses

    def _invalid(self, bets) -> str | None:
        today = datetime.date.today()
        for i, bet in enumerate(bets, 1):
            if bet.agency != self.agency:
                return f"bet {i}: AGENCY {bet.agency} differs from the batch's agency {self.agency}"
            try:
                bet.validate(today)
            except InvalidBet as exc:
                return f"bet {i}: {exc}"
        return None

    def _refused(self, request: Bets, result: str, reason: str) -> Response:
        log.info(event("apuesta_recibida", "fail", cantidad=len(request.bets), error=reason))
        return Response(result, reason)

    def _end(self, agency: int) -> Response:
        config = self._config
        result = self._state.record_end(self._store, agency, config.agencies, config.winning_number)
        log.info(
            event(
                "fin_apuestas",
                "success",
                agency=agency,
                repeated=not result.newly,
                finished=f"{result.finished_count}/{config.agencies}",
            )
        )
        if result.drew:
            announce_draw(self._store)
        return Response(SUCCESS, f"agency {agency} finished")

    def _winners(self, request: Winners) -> Response | Held:
        if not self._state.drawn:
            # Held by the acceptor, not by a process: answered the moment the draw happens.
            now = time.monotonic()
            if self.held_since is None:
                self.held_since = now
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
        log.info(
            event(
                "consulta_ganadores",
                "success",
                agency=request.agency,
                cant_ganadores=len(documents),
            )
        )
        return Response(SUCCESS, str(len(documents)), tuple(page))


def announce_draw(store: BetStore) -> None:
    """Log the draw once: the mark in storage survives restarts, so a draw committed by a
    server that died before logging it is logged by the next one."""
    draw = store.draw()
    if draw is not None and draw.announced_at is None:
        log.info(event("sorteo", "success"))
        store.announce_draw()


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
