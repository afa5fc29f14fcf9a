"""What the status listener shows, read at scrape time from a read-only connection to bets.db
and the shared meters: counts only, never a bettor's name or document."""

import collections
import datetime
import json
import threading
import time
from dataclasses import dataclass

from server.meters import (
    REPLICA_DOWN,
    REPLICA_OFF,
    SERVING,
    STARTING,
    STOPPING,
    Meters,
)
from storage import StorageError
from storage.live import LiveReader

CACHE_S = 0.5  # scrapes within this share one reading (a flood of them costs one)
HISTORY_POINTS = 3600  # one a second: the last hour
STALE_LOOP_S = 5.0  # an acceptor loop that has not ticked for this long is not alive
RATE_WINDOW_S = 10.0
_PHASES = {STARTING: "starting", SERVING: "serving", STOPPING: "stopping"}


@dataclass(frozen=True)
class Health:
    alive: bool  # the acceptor's loop runs (or it is still recovering): do not restart it
    ready: bool  # recovered and listening, not shutting down: send it traffic
    phase: str
    why: str = ""  # when not ready


class Status:
    """Readings for every request of the listener (thread-safe). The listener's sampler
    refreshes the reading every CACHE_S, so a request only reads the latest one (and its JSON,
    encoded once): a scrape costs the same at 5 agencies and at 10,000."""

    def __init__(self, storage_dir: str, meters: Meters, agencies: int) -> None:
        self._reader = LiveReader(storage_dir)
        self._meters = meters
        self._agencies = agencies
        self._lock = threading.Lock()
        self._cached: tuple[float, dict, bytes] | None = None
        self._winners: dict[int, int] | None = None  # fixed once drawn
        self.history: collections.deque = collections.deque(maxlen=HISTORY_POINTS)

    def health(self) -> Health:
        acceptor = self._meters.acceptor()
        phase = int(acceptor["phase"])
        fresh = time.time() - acceptor["heartbeat"] < STALE_LOOP_S
        tls = self._meters.tls()
        port_up = tls is None or bool(tls["up"])  # a dead TLS process: the port is closed
        replica = _replica(acceptor, self._meters.totals())
        replica_up = replica is None or replica["state"] == "up"  # else ENDs are answered wait
        why = _PHASES[phase] if phase != SERVING else "loop stalled" if not fresh else ""
        if not why:
            why = "the TLS port is closed" if not port_up else ""
        if not why and not replica_up:
            why = "the replica does not confirm (ENDs are answered wait)"
        return Health(
            alive=phase == STARTING or fresh,
            ready=phase == SERVING and fresh and port_up and replica_up,
            phase=_PHASES[phase],
            why=why,
        )

    def read(self) -> dict:
        """The latest reading (what /status.json returns)."""
        return self._latest()[1]

    def read_json(self) -> bytes:
        return self._latest()[2]

    def _latest(self) -> tuple[float, dict, bytes]:
        with self._lock:
            cached = self._cached
            # Read here only before the sampler's first pass, or when the phase changed (ready,
            # stopping are shown at once, never half a second late).
            if cached is None or cached[1]["server"]["phase"] != self.health().phase:
                self._refresh_locked()
            return self._cached

    def refresh(self, with_history: bool = False) -> None:
        """A new reading (the listener's sampler calls it every CACHE_S; with_history adds a
        point to the bets-over-time chart first, once a second)."""
        with self._lock:
            if with_history and self._cached is not None and self._cached[1]["lottery"]:
                self.history.append((round(time.time(), 3), self._cached[1]["totals"]["bets"]))
            self._refresh_locked()

    def _refresh_locked(self) -> None:
        reading = self._read()
        self._cached = (
            time.monotonic(),
            reading,
            json.dumps(reading, separators=(",", ":")).encode(),
        )

    def _read(self) -> dict:
        health = self.health()
        acceptor = self._meters.acceptor()
        meters = self._meters.totals()
        reading = {
            "server": {
                "phase": health.phase,
                "alive": health.alive,
                "ready": health.ready,
                "uptime_s": round(time.time() - acceptor["started"], 1),
            },
            "connections": {k: int(acceptor[k]) for k in ("parked", "held", "queued", "lent")},
            "workers": {k: int(acceptor[k]) for k in ("busy", "idle")},
            "refused_total": int(acceptor["refused"]),
            "evicted_total": int(acceptor["evicted"]),
            "tls": _tls(self._meters.tls()),
            "replica": _replica(acceptor, meters),
            "batches": {k: int(v) for k, v in meters["batches"].items()},
            "lottery": None,
            "totals": None,
            "rate_bets_per_s": 0.0,
            "history": [],
            "agencies": [],
        }
        if health.phase == "starting":  # recovery may still move or rebuild the files
            return reading
        try:
            figures = self._reader.figures(self._agencies)
            if figures is not None and figures.drawn_at is not None and self._winners is None:
                self._winners = self._reader.winners()
        except StorageError as exc:
            reading["error"] = str(exc)
            return reading
        if figures is None:
            return reading
        reading.update(self._lottery(figures))
        reading["rate_bets_per_s"] = self._rate(reading["totals"]["bets"])
        reading["history"] = self._history()
        return reading

    def _lottery(self, f) -> dict:
        n = self._agencies
        winners = self._winners if f.drawn_at is not None else None
        connected = self._meters.connected()
        agencies = []
        for agency in range(1, n + 1):
            state = "waiting"
            if agency in f.told:
                state = "told"
            elif agency in f.finished:
                state = "finished"
            elif connected[agency] or agency in f.positions:
                state = "sending"
            agencies.append(
                {
                    "agency": agency,
                    "state": state,
                    "bets": f.positions.get(agency, 0),
                    "connected": bool(connected[agency]),
                    "finished_at": f.finished.get(agency),
                    "winners": None if winners is None else winners.get(agency, 0),
                    "told": agency in f.told,
                }
            )
        return {
            "lottery": {
                "id": f.lottery_id,
                "agencies": n,
                "winning_number": f.winning_number,
                "started_at": f.started_at,
                "drawn_at": f.drawn_at,
            },
            "totals": {
                "bets": sum(f.positions.values()),
                "agencies_finished": sum(1 for a in agencies if a["finished_at"]),
                "agencies_told": sum(1 for a in agencies if a["told"]),
                "agencies_connected": sum(1 for a in agencies if a["connected"]),
                "winners": None if winners is None else sum(winners.values()),
            },
            "agencies": agencies,
        }

    def _rate(self, bets: int) -> float:
        """Bets per second over the last RATE_WINDOW_S (from the history's points)."""
        now = time.time()
        past = [p for p in self.history if now - p[0] <= RATE_WINDOW_S]
        if not past or now - past[0][0] < 0.5:
            return 0.0
        return round((bets - past[0][1]) / (now - past[0][0]), 1)

    def _history(self) -> list:
        points = list(self.history)
        step = max(1, len(points) // 300)  # at most about 300 points for the chart
        return points[::step] + ([points[-1]] if points and (len(points) - 1) % step else [])


def _tls(row: dict | None) -> dict | None:
    """The TLS terminator's counts (None when the lottery port speaks plaintext)."""
    if row is None:
        return None
    return {
        "connections": int(row["connections"]),
        "handshakes_in_progress": int(row["in_progress"]),
        "handshakes_total": {
            "success": int(row["handshakes"]),
            **{kind: int(row[kind]) for kind in ("failed", "timeouts", "plaintext", "evicted")},
        },
        "handshake_seconds_total": round(row["handshake_seconds"], 6),
    }


def _replica(acceptor: dict, totals: dict) -> dict | None:
    """Whether the replica confirms (None without one): `down` while Litestream is not
    running or since a barrier last failed, `up` otherwise."""
    if acceptor["replica"] == REPLICA_OFF:
        return None
    confirmed, unconfirmed = totals["replica_confirmed"], totals["replica_unconfirmed"]
    down = acceptor["replica"] == REPLICA_DOWN or unconfirmed > confirmed
    return {
        "state": "down" if down else "up",
        "last_confirmed_at": _iso(confirmed),
        "last_unconfirmed_at": _iso(unconfirmed),
    }


def _iso(stamp: float) -> str | None:
    if not stamp:
        return None
    moment = datetime.datetime.fromtimestamp(stamp, datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
