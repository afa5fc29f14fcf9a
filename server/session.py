"""What the server answers to each message of one connection. No sockets here."""

import contextlib
import datetime
import logging
import os
import signal
from collections.abc import Callable

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


class Session:
    """One connection's conversation: it speaks for one agency, bound by its first message."""

    def __init__(
        self,
        config: ServerConfig,
        store: BetStore,
        state: LotteryState,
        stopping: Callable[[], bool],
    ) -> None:
        self._config = config
        self._store = store
        self._state = state
        self._stopping = stopping
        self.agency: int | None = None

    def handle(self, request: Request) -> Response | None:
        """The answer to one request; None means close without answering (shutting down)."""
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
            self.agency = agency
            self._take_over(agency)
        elif agency != self.agency:
            return (
                f"this connection speaks for agency {self.agency}; "
                f"use another connection for agency {agency}"
            )
        return None

    def _take_over(self, agency: int) -> None:
        # A client that reconnected while its old connection still looks alive here: the
        # newer one serves the agency, the older one finishes its message and closes.
        previous = self._state.take_over(agency, os.getpid())
        if previous is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(previous, signal.SIGUSR1)
            log.info(event("takeover", "success", agency=agency, previous_pid=previous))

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

    def _winners(self, request: Winners) -> Response | None:
        if not self._state.drawn and not self._state.wait_for_draw(
            self._config.winners_wait_s, self._stopping
        ):
            if self._stopping():
                return None
            done = len(self._state.finished())
            return Response(
                WAIT,
                f"the draw has not happened yet ({done} of {self._config.agencies} "
                "agencies finished)",
            )
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
