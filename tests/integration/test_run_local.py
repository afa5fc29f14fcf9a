"""`make run` end to end on generated data, and `make data`."""

import json
import re
import subprocess
import sys

from client.reader import BetSource, Rejects
from scripts.lab.processes import ROOT


def make(*args, timeout=120):
    return subprocess.run(
        ["make", "-s", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def winners_in_file(path):
    source = BetSource(path, 1, Rejects(path.with_suffix(".rej")))
    return sum(1 for bet in source.bets() if bet.number == 7574)


def test_make_run_stores_everything_and_each_agency_gets_the_winners_its_data_holds(tmp_path):
    out = make("run", "AGENCIES=3", "BETS=2500", f"DATA={tmp_path}")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "agency files missing (3): generating them" in out.stdout
    assert re.search(r"^server   \| .*action: sorteo \| result: success$", out.stdout, re.M)
    table = {
        int(cols[0]): cols
        for cols in (line.split() for line in out.stdout.splitlines())
        if len(cols) == 6 and cols[0].isdigit()
    }
    assert sorted(table) == [1, 2, 3]
    for agency, (_, read, stored, rejected, winners, code) in table.items():
        expected = winners_in_file(tmp_path / f"agency-{agency}.csv")
        assert (read, stored, rejected, code) == ("2500", "2500", "0", "0")
        assert int(winners) == expected > 0
        assert re.search(rf"^client{agency}  \| .*cant_ganadores: {expected}$", out.stdout, re.M)
    # It runs with a key per agency, made where missing and readable by its owner only.
    assert re.search(
        r"^server   \| .*action: auth_mode \| result: success \| mode: keys", out.stdout, re.M
    )
    for agency in (1, 2, 3):
        assert re.search(
            rf"^client{agency}  \| .*action: auth \| result: success", out.stdout, re.M
        )
        assert (tmp_path / "keys" / f"agency-{agency}.key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "keys" / "agencies.keys").stat().st_mode & 0o777 == 0o600
    # And with TLS: a local CA and server certificate made by `make certs`'s script.
    assert re.search(r"^server   \| .*action: listen \| result: success \| port: \d+ \| transport: tls",
                     out.stdout, re.M)  # fmt: skip
    assert (tmp_path / "tls").stat().st_mode & 0o777 == 0o700
    # And replicated, beside the data folder, each lottery under its id.
    assert re.search(
        r"^server   \| .*action: replica \| result: success \| url: file://", out.stdout, re.M
    )
    replica = tmp_path.with_name(tmp_path.name + "-replica")
    assert len(list(replica.iterdir())) == 1
    for key in ("ca.key", "server.key"):
        assert (tmp_path / "tls" / key).stat().st_mode & 0o777 == 0o600
    check = subprocess.run(
        [sys.executable, "-m", "storage", "--dir", str(tmp_path), "check"],
        cwd=ROOT,
        capture_output=True,
    )
    assert check.returncode == 0

    again = make("run", "AGENCIES=3", "BETS=2500", f"DATA={tmp_path}")
    assert again.returncode == 0
    # Each run names a fresh lottery: the server archives the previous one, with a note.
    assert re.search(
        r"^server   \| .*action: new_lottery \| result: success \| previous: .*"
        r"\| reason: another deployment \| was: complete$",
        again.stdout,
        re.M,
    )
    (previous,) = (tmp_path / "previous").iterdir()
    assert (previous / "bets.csv").exists() and (previous / "bets.db").exists()
    note = json.loads((previous / "lottery.json").read_text())
    assert (note["agencies"], note["bets"], note["state"]) == (3, 7500, "complete")


def test_make_data_is_deterministic_realistic_and_has_a_few_winners(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    for folder in (first, second):
        assert make("data", "AGENCIES=2", "BETS=4000", f"DATA={folder}").returncode == 0
    for agency in (1, 2):
        data = (first / f"agency-{agency}.csv").read_bytes()
        assert data == (second / f"agency-{agency}.csv").read_bytes()
        lines = data.split(b"\r\n")
        assert lines[-1] == b"" and len(lines) == 4001 and b"\n" not in b"".join(lines)
        source = BetSource(first / f"agency-{agency}.csv", agency, Rejects(tmp_path / "r.csv"))
        bets = list(source.bets())
        assert len(bets) == 4000 and source.rejects.count == 0
        assert all(len(b.document) == 8 for b in bets)
        assert 1 <= sum(b.number == 7574 for b in bets) <= 5
        assert any(" " in b.first_name or " " in b.last_name for b in bets)
        assert any(set("áéíóúñÁÉÍÓÚÑ") & set(b.first_name + b.last_name) for b in bets)
    assert (first / "agency-1.csv").read_bytes() != (first / "agency-2.csv").read_bytes()
