"""A status scraper for the benches: GETs /status.json and /metrics every interval, as a
Prometheus server and an open status page would, and keeps each answer's latency."""

import statistics
import threading
import time
import urllib.request


class Scraper(threading.Thread):
    def __init__(self, port: int, every_s: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.port, self.every_s = port, every_s
        self.latencies: dict[str, list[float]] = {"/status.json": [], "/metrics": []}
        self.failures = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            for path, seen in self.latencies.items():
                started = time.perf_counter()
                try:
                    with urllib.request.urlopen(
                        f"http://127.0.0.1:{self.port}{path}", timeout=5
                    ) as r:
                        r.read()
                    seen.append(time.perf_counter() - started)
                except OSError:
                    self.failures += 1
            self.done.wait(self.every_s)

    def stop(self) -> dict:
        """Stop; per path the median and the largest latency in ms, and the failures."""
        self.done.set()
        self.join()
        figures = {"failures": self.failures}
        for path, seen in self.latencies.items():
            name = path.strip("/").replace(".", "_")
            figures[f"{name}_p50_ms"] = statistics.median(seen) * 1000 if seen else None
            figures[f"{name}_max_ms"] = max(seen) * 1000 if seen else None
            figures[f"{name}_count"] = len(seen)
        return figures
