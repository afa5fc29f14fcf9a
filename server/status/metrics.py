"""/metrics in the Prometheus text format, produced by prometheus-client from a reading."""

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from server.meters import COMMIT_BUCKETS, RESULTS, Meters
from server.status.snapshot import Status


class LotteryCollector:
    """Every series computed at scrape time (no per-bettor labels; base units)."""

    def __init__(self, status: Status, meters: Meters) -> None:
        self._status = status
        self._meters = meters

    def collect(self):
        reading = self._status.read()
        lottery, totals = reading["lottery"], reading["totals"]
        info = GaugeMetricFamily("lottery_info", "The lottery being served", labels=["lottery_id"])
        if lottery is not None:
            info.add_metric([lottery["id"] or ""], 1)
        yield info
        if lottery is not None:
            yield GaugeMetricFamily(
                "lottery_agencies", "Agencies configured", value=lottery["agencies"]
            )
            yield GaugeMetricFamily(
                "lottery_agencies_finished",
                "Agencies that sent END",
                value=totals["agencies_finished"],
            )
            yield GaugeMetricFamily(
                "lottery_agencies_told",
                "Agencies sent their whole winners list",
                value=totals["agencies_told"],
            )
            yield GaugeMetricFamily(
                "lottery_agencies_connected",
                "Agencies with a connection now",
                value=totals["agencies_connected"],
            )
            yield CounterMetricFamily(
                "lottery_bets_stored", "Bets stored in this lottery", value=totals["bets"]
            )
            yield GaugeMetricFamily(
                "lottery_draw_done",
                "1 once the draw happened",
                value=int(lottery["drawn_at"] is not None),
            )
        yield GaugeMetricFamily(
            "lottery_ready",
            "1 while the server takes traffic (see /readyz)",
            value=int(reading["server"]["ready"]),
        )
        yield _by(GaugeMetricFamily, "lottery_connections", "Client connections by place",
                  "state", reading["connections"])  # fmt: skip
        yield _by(GaugeMetricFamily, "lottery_workers", "Worker processes by state", "state",
                  reading["workers"])  # fmt: skip
        yield CounterMetricFamily(
            "lottery_connections_refused",
            "Connections answered server busy",
            value=reading["refused_total"],
        )
        yield CounterMetricFamily(
            "lottery_connections_evicted",
            "Connections closed to make room",
            value=reading["evicted_total"],
        )
        if reading["replica"] is not None:
            yield GaugeMetricFamily(
                "lottery_replica_up",
                "1 while the replica confirms commits (Litestream running, the last barrier met)",
                value=int(reading["replica"]["state"] == "up"),
            )
        tls = reading["tls"]
        if tls is not None:
            for name, text, key in (
                ("connections", "Established TLS connections (relayed to the acceptor)", "connections"),
                ("handshakes_in_progress", "TLS handshakes not finished yet", "handshakes_in_progress"),
            ):  # fmt: skip
                yield GaugeMetricFamily(f"lottery_tls_{name}", text, value=tls[key])
            yield _by(CounterMetricFamily, "lottery_tls_handshakes",
                      "TLS handshakes by how they ended (success, failed, timeouts, plaintext, "
                      "evicted)", "result", tls["handshakes_total"])  # fmt: skip
            yield CounterMetricFamily(
                "lottery_tls_handshake_seconds",
                "Time the TLS process spent in handshake steps (CPU-bound work)",
                value=tls["handshake_seconds_total"],
            )
        totals_now = self._meters.totals()
        batches = {result: totals_now["batches"][result] for result in RESULTS}
        yield _by(CounterMetricFamily, "lottery_batches", "BETS messages answered, by result",
                  "result", batches)  # fmt: skip
        cumulative, running = [], 0.0
        for bound, count in zip(
            (*COMMIT_BUCKETS, float("inf")), totals_now["buckets"], strict=True
        ):
            running += count
            cumulative.append((_bound(bound), running))
        yield HistogramMetricFamily(
            "lottery_commit_duration_seconds",
            "One round's storage commit (locks, CSV write, SQLite commit, fsync)",
            buckets=cumulative,
            sum_value=totals_now["commit_seconds"],
        )  # fmt: skip


def _by(family, name: str, text: str, label: str, counts: dict):
    """A family with one sample per label value."""
    found = family(name, text, labels=[label])
    for value, count in counts.items():
        found.add_metric([value], count)
    return found


def _bound(value: float) -> str:
    return "+Inf" if value == float("inf") else repr(value)


def exposition(status: Status, meters: Meters) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LotteryCollector(status, meters))
    return generate_latest(registry)
