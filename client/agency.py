"""One agency's run: send every bet exactly once, END, then ask for the winners.

Every step is idempotent on the server (SEQ replays store nothing, END repeats, WINNERS is a
query), so after a lost connection the client reconnects, asks RESUME where it stands, and
runs the same steps again from there.
"""

import contextlib
import logging
import random
import socket
import ssl
import time
from collections import deque
from dataclasses import dataclass

from client.batcher import Batch, batches
from client.config import ClientConfig
from client.reader import BetSource, Rejects
from client.retry import GiveUp, RetryBudget
from common.logs import event
from common.signals import StopFlag
from protocol import (
    OPEN_MODE,
    SERVER_BUSY,
    SUCCESS,
    WAIT,
    Auth,
    End,
    Hello,
    ProtocolError,
    Response,
    Resume,
    Winners,
    decode_response,
    encode,
    mismatched_position,
    proof,
)
from transport import ConnectionClosed, Interrupted, MessageStream, wait_readable

log = logging.getLogger(__name__)

ANSWER_TIMEOUT_S = 60  # the server holds WINNERS a few seconds; anything longer is a hang
CONNECT_TIMEOUT_S = 5
PROGRESS_EVERY_S = 2
WINDOW = 8  # batches awaiting an answer at most (64 KiB)
# A WINNERS answered `wait` sooner than this (a server that does not hold it) is asked again
# only after a pause of about this long.
WINNERS_POLL_S = 0.5


class Disconnected(Exception):
    """The connection was lost (or the server turned us away for now); retry."""

    def __init__(self, reason: str, retry_ms: int | None = None) -> None:
        super().__init__(reason)
        self.retry_s = (retry_ms or 0) / 1000


class Refused(Exception):
    """The server refused something for good; the run fails."""


class Stopped(Exception):
    """SIGTERM/SIGINT."""


class Resync(Exception):
    """The server could not store a batch for now; resume from its position later."""

    def __init__(self, reason: str, retry_ms: int | None = None) -> None:
        super().__init__(reason)
        self.retry_s = (retry_ms or 0) / 1000


@dataclass
class Summary:
    sent: int = 0  # bets sent in this run (replays after a reconnect included)
    stored: int = 0  # bets the server newly stored


class AgencyClient:
    def __init__(
        self,
        config: ClientConfig,
        flag: StopFlag,
        key: str | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.config = config
        self.flag = flag
        self._key = key
        self._tls = tls  # set: every connection is TLS, verified; never plaintext
        self._warned_open = False
        self.rejects = Rejects(config.rejects_path)
        self.source = BetSource(config.data_path, config.agency, self.rejects)
        self.summary = Summary()
        self.retry = RetryBudget(config.retry_max_seconds)
        self._sock: socket.socket | None = None
        self._stream: MessageStream | None = None
        self._last_progress = time.monotonic()
        self._attempts = 0

    def run(self) -> int:
        """The whole run; the exit code (0 done or stopped, 1 failed)."""
        started = time.monotonic()
        try:
            while True:
                try:
                    self._connect()
                    documents = self._run_steps()
                    break
                except Disconnected as exc:
                    self._pause_before_retry(exc, exc.retry_s)
                    self._close_socket()
        except Stopped:
            self._close_socket(log_it=True)
            self.rejects.close()
            log.info(event("shutdown", "success", resource="file"))
            return 0
        except Refused as exc:
            log.error(event("run", "fail", error=exc))
            self._close_socket()
            self.rejects.close()
            return 1
        self._close_socket()
        self.rejects.close()
        log.info(event("consulta_ganadores", "success", cant_ganadores=len(documents)))
        log.debug(event("ganadores", "success", documents=";".join(documents) or "-"))
        log.info(
            event(
                "summary",
                "success",
                agency=self.config.agency,
                bets=self.source.total,
                sent=self.summary.sent,
                stored=self.summary.stored,
                rejected=self.rejects.count,
                winners=len(documents),
                seconds=f"{time.monotonic() - started:.2f}",
            )
        )
        return 0

    # --- the steps --------------------------------------------------------------------

    def _pause_before_retry(self, reason: Exception, hint_s: float) -> None:
        """Wait before trying again, or fail once retry.maxSeconds passed without progress."""
        try:
            pause = self.retry.pause(hint_s)
        except GiveUp as exc:
            raise Refused(f"{exc}; last error: {reason}") from None
        action = "connect" if self._sock is None else "connection"
        log.warning(event(action, "fail", error=reason, retry_in=f"{pause:.2f}s"))
        self._pause(pause)

    def _authenticate(self) -> None:
        """HELLO and AUTH on this connection, when the client has a key."""
        if self._key is None:
            return
        agency = self.config.agency
        challenge = self._expect_success(self._ask(Hello(agency)), "HELLO")
        if challenge == OPEN_MODE:
            if not self._warned_open:
                self._warned_open = True
                log.warning(
                    event(
                        "auth",
                        "success",
                        mode="open",
                        warning="the server checks no keys: any client may speak for any agency",
                    )
                )
            return
        self._expect_success(self._ask(Auth(agency, proof(self._key, challenge))), "AUTH")
        log.info(event("auth", "success", agency=agency))

    def _run_steps(self) -> list[str]:
        agency = self.config.agency
        self._authenticate()
        while True:
            position = int(self._expect_success(self._ask(Resume(agency)), "RESUME"))
            log.info(event("resume", "success", position=position))
            try:
                # Resending the batch before the position lets the server verify that this
                # file still holds what was stored (a rerun with an edited file is refused).
                self._send_bets(max(0, position - self.config.batch_max_amount))
                break
            except Resync as exc:
                # The server could not store a batch for now (e.g. a full disk): go on from
                # its position after a pause, within retry.maxSeconds.
                log.warning(event("apuesta_enviada", "fail", error=exc, retry=True))
                self._pause_before_retry(exc, exc.retry_s)
        while (answer := self._ask(End(agency))).result == WAIT and answer.message != SERVER_BUSY:
            # The server could not record the END for now (a full disk): ask again later.
            log.warning(event("fin_apuestas", "fail", error=answer.message, retry=True))
            self._pause_before_retry(Exception(answer.message), (answer.retry_ms or 0) / 1000)
        self._expect_success(answer, "END")
        self.retry.progress()
        log.info(event("fin_apuestas", "success", bets=self.source.total))
        while True:
            asked = time.monotonic()
            answer = self._ask(Winners(agency))
            if answer.result != WAIT:
                break
            # The draw is awaited, which is progress, not a failure; a server that did not
            # hold the question is asked again only after a pause.
            self.retry.progress()
            log.debug(event("consulta_ganadores", "in_progress", reason=answer.message))
            hint = (answer.retry_ms or 0) / 1000
            if hint or time.monotonic() - asked < WINNERS_POLL_S:
                self._pause(hint + random.uniform(0.5, 1) * WINNERS_POLL_S)
        self._expect_success(answer, "WINNERS")
        documents = list(answer.documents or ())
        while len(documents) < int(answer.message):  # more than fit in one answer
            page = self._expect_documents(self._ask(Winners(agency, offset=len(documents))))
            if not page:
                raise Refused("the server's winners list ended before its count")
            documents += page
        return documents

    def _send_bets(self, position: int) -> None:
        """Send every batch from position on, with up to WINDOW of them awaiting answers:
        the server stores what arrives together in one commit, and neither side idles."""
        in_flight: deque[Batch] = deque()
        # closing(): the input file is closed as soon as sending stops, for any reason.
        with contextlib.closing(self.source.bets(position)) as bets:
            for batch in batches(bets, position, self.config.batch_max_amount):
                self._check_stop()
                if len(in_flight) == WINDOW:
                    self._settle(in_flight.popleft(), in_flight)
                self._write(batch.payload)
                in_flight.append(batch)
                if self.config.loop_period:  # the course's loop.period: a pause per batch
                    self._pause(self.config.loop_period)
        while in_flight:
            self._settle(in_flight.popleft(), in_flight)

    def _settle(self, batch: Batch, in_flight: deque) -> None:
        """Read the answer to the oldest batch in flight."""
        answer = self._read()
        if answer.result == SUCCESS:
            self.retry.progress()
            self.summary.sent += batch.count
            self.summary.stored += int(answer.message)
            log.debug(event("apuesta_enviada", "success", cantidad=batch.count, seq=batch.seq))
            self._progress()
            return
        if answer.result == WAIT:
            for _ in range(len(in_flight)):  # answers to the later ones, refused as gaps
                self._read()
            in_flight.clear()
            if answer.message == SERVER_BUSY:
                raise Disconnected(SERVER_BUSY, answer.retry_ms)
            raise Resync(answer.message, answer.retry_ms)
        position = mismatched_position(answer.message)
        if position is not None:
            # This file differs from the one sent before: a stored bet would silently differ.
            line = self.source.line_of(position)
            log.error(
                event(
                    "apuesta_enviada", "fail", cantidad=batch.count, line=line, error=answer.message
                )
            )
            raise Refused(
                f"line {line} of {self.config.data_path} differs from the bet stored at its "
                f"position {position} (was the file edited or reordered since it was "
                "sent?)"
            )
        log.error(event("apuesta_enviada", "fail", cantidad=batch.count, error=answer.message))
        raise Refused(f"the server refused the batch at position {batch.seq}")

    def _pause(self, seconds: float) -> None:
        """Sleep, but wake up at once for SIGTERM/SIGINT."""
        if wait_readable([self.flag.wake_fd], seconds):
            self._check_stop()

    def _expect_success(self, answer: Response, what: str) -> str:
        if answer.result == WAIT:  # busy, or it cannot answer for now: ask again later
            raise Disconnected(answer.message, answer.retry_ms)
        if answer.result != SUCCESS:
            raise Refused(f"{what} refused: {answer.message}")
        return answer.message

    def _expect_documents(self, answer: Response) -> list[str]:
        self._expect_success(answer, "WINNERS")
        return list(answer.documents or ())

    def _progress(self) -> None:
        now = time.monotonic()
        if now - self._last_progress >= PROGRESS_EVERY_S:
            self._last_progress = now
            log.info(event("progress", "in_progress", bets_sent=self.summary.sent))

    # --- the connection -------------------------------------------------------------

    def _ask(self, message) -> Response:
        self._write(encode(message))
        return self._read()

    def _write(self, payload: bytes) -> None:
        try:
            self._stream.send(payload)
        except OSError as exc:
            raise Disconnected(str(exc) or type(exc).__name__) from None

    def _read(self) -> Response:
        try:
            line = self._stream.read_line(ANSWER_TIMEOUT_S, stop=lambda _: self.flag.stopping)
            return decode_response(line)
        except Interrupted:
            raise Stopped() from None
        except (OSError, ConnectionClosed, ProtocolError) as exc:
            raise Disconnected(str(exc) or type(exc).__name__) from None

    def _connect(self) -> None:
        """One connection attempt; Disconnected if it fails (run() retries with backoff)."""
        self._check_stop()
        host, port = self.config.server
        try:
            self._sock = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S)
        except OSError as exc:
            self._sock = None
            raise Disconnected(f"cannot reach {host}:{port}: {exc}") from None
        if self._tls is not None:
            self._sock = self._handshake(self._sock, f"{host}:{port}")
        self._sock.settimeout(ANSWER_TIMEOUT_S)
        self._stream = MessageStream(self._sock, wake_fd=self.flag.wake_fd)
        self._attempts += 1
        log.info(event("connect", "success", server=f"{host}:{port}", attempt=self._attempts))

    def _handshake(self, sock: socket.socket, server: str) -> ssl.SSLSocket:
        """TLS on a new connection. A certificate that does not verify, or a peer that does
        not speak TLS, fails the run (retrying would not change it); a connection lost
        during the handshake is retried like any other."""
        name = self.config.server_name
        try:
            return self._tls.wrap_socket(sock, server_hostname=name)
        except ssl.SSLCertVerificationError as exc:
            sock.close()
            raise Refused(f"TLS to {server} (as {name}): certificate verify failed: "
                          f"{exc.verify_message}") from None  # fmt: skip
        except ssl.SSLEOFError as exc:
            sock.close()
            raise Disconnected(f"TLS handshake with {server} cut: {exc}") from None
        except ssl.SSLError as exc:
            sock.close()
            raise Refused(f"TLS handshake with {server} failed: {exc.reason or exc} "
                          "(a plaintext port?)") from None  # fmt: skip
        except OSError as exc:
            sock.close()
            raise Disconnected(f"TLS handshake with {server}: {exc}") from None

    def _check_stop(self) -> None:
        if self.flag.stopping:
            raise Stopped()

    def _close_socket(self, log_it: bool = False) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            if log_it:
                log.info(event("shutdown", "success", resource="socket"))
