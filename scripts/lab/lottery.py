"""A whole lottery on 127.0.0.1 for the fault suite: agency files, clients, servers, and the
end-to-end verdict (everything stored exactly once, files agree, one draw, right winners)."""

import collections
import sqlite3
from pathlib import Path

from scripts.lab.processes import Server, start_client, write_agency_csv
from scripts.lab.sample import make_bets
from storage import load_bets
from storage.inspection import check

INVALID_ROWS = ("Ana,Gómez,12x,1990-01-01,1", "short,row")


class Lottery:
    def __init__(self, tmp_path: Path, make_server, sizes: dict[int, int], batch: int = 10):
        self.tmp = tmp_path
        self.make_server = make_server
        self.batch = batch
        self.bets = {a: make_bets(a, 0, n, winners_every=250) for a, n in sizes.items()}
        self.files = {
            a: write_agency_csv(tmp_path / f"agency-{a}.csv", bets, INVALID_ROWS)
            for a, bets in self.bets.items()
        }
        self.servers: list[Server] = []
        self.clients: dict[int, list] = collections.defaultdict(list)
        self.port: int | None = None

    def start_server(self, **env) -> Server:
        server = self.make_server(AGENCIES=len(self.bets), port=self.port, **env)
        self.port = server.port
        self.servers.append(server.start())
        return server

    def start_client(self, agency: int, **env):
        log = self.tmp / f"client{agency}-{len(self.clients[agency])}.log"
        proc = start_client(
            self.port, agency, self.files[agency], log, CLI_BATCH_MAXAMOUNT=self.batch, **env
        )
        self.clients[agency].append((proc, log))
        return proc

    def start_clients(self, **env) -> None:
        for agency in self.bets:
            self.start_client(agency, **env)

    def received(self) -> int:
        """Batch lines logged by every server so far (a progress gauge for the tests)."""
        return sum(s.count("action: apuesta_recibida | result: success") for s in self.servers)

    def stored(self, agency: int) -> int:
        """The agency's bets in bets.db now (a read-only look: it takes no lock)."""
        path = self.servers[-1].storage_dir / "bets.db"
        if not path.exists():
            return 0
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute("SELECT COUNT(*) FROM bets WHERE agency = ?", (agency,)).fetchone()[
                0
            ]
        finally:
            conn.close()

    def wait_clients(self, timeout: float = 120) -> None:
        for agency, runs in self.clients.items():
            proc, log = runs[-1]
            assert proc.wait(timeout) == 0, f"client {agency} failed:\n{log.read_text()[-3000:]}"

    def verify(self) -> None:
        """Every valid row stored exactly once in file order, the files agree, the draw was
        logged once over every server run, and each agency was told its own winners."""
        storage_dir = self.servers[-1].storage_dir
        ok, message = check(storage_dir)
        assert ok, message
        stored = collections.defaultdict(list)
        for bet in load_bets(storage_dir / "bets.csv"):
            stored[bet.agency].append(bet)
        assert set(stored) == set(self.bets)
        for agency, bets in self.bets.items():
            assert stored[agency] == bets, f"agency {agency}: stored bets differ from its file"
        assert sum(s.count("action: sorteo | result: success") for s in self.servers) == 1
        for agency, bets in self.bets.items():
            winners = sum(1 for b in bets if b.number == 7574)
            last_log = self.clients[agency][-1][1].read_text()
            assert (
                f"action: consulta_ganadores | result: success | cant_ganadores: {winners}\n"
                in last_log
            )
