"""The course's black-box flow without Docker: its own config files, lotteries in a row on
one storage folder, each deployment with a fresh LOTTERY_ID (as each generar-compose.sh file
has) and new agency files, logs parsed the course's way (`action: ... | result: ...`, no
`result: fail` anywhere)."""

import re

from scripts.compose import fresh_lottery_id
from scripts.lab.processes import Server, free_port, start_client, write_agency_csv
from scripts.lab.sample import make_bets
from storage import load_bets

COURSE_SERVER_INI = """[DEFAULT]
SERVER_PORT = {port}
SERVER_IP = server
SERVER_LISTEN_BACKLOG = 5
LOGGING_LEVEL = DEBUG
"""

COURSE_CLIENT_YAML = """server:
  address: "127.0.0.1:{port}"
loop:
  amount: 5
  period: "10ms"
log:
  level: "DEBUG"
batch:
  maxAmount: 40
"""


def course_lottery(tmp_path, port, name, sizes, winners_every, lottery_id=None, start=1000):
    """One deployment the course's way (a fresh LOTTERY_ID unless given, agency files whose
    bets begin at `start`); returns the server and client logs and the bets."""
    folder = tmp_path / name
    folder.mkdir()
    ini = folder / "config.ini"
    ini.write_text(COURSE_SERVER_INI.format(port=port))
    yaml_file = folder / "config.yaml"
    yaml_file.write_text(COURSE_CLIENT_YAML.format(port=port))
    server = Server(
        tmp_path / "data",
        folder / "server.log",
        port,
        SERVER_CONFIG=ini,
        AGENCIES=len(sizes),
        LOTTERY_ID=fresh_lottery_id() if lottery_id is None else lottery_id,
    ).start()
    bets = {a: make_bets(a, start, n, winners_every=winners_every) for a, n in sizes.items()}
    clients = {
        a: start_client(
            port,
            a,
            write_agency_csv(folder / f"agency-{a}.csv", bets[a]),
            folder / f"client{a}.log",
            CLI_CONFIG=yaml_file,
            CLI_SERVER_ADDRESS=None,  # the course's file says where the server is
        )
        for a in sizes
    }
    codes = {a: c.wait(120) for a, c in clients.items()}
    assert server.stop() == 0
    logs = {a: (folder / f"client{a}.log").read_text() for a in sizes}
    assert codes == dict.fromkeys(sizes, 0), logs
    return server.logs(), logs, bets


def check_the_courses_way(server_log, client_logs, bets):
    every = [server_log, *client_logs.values()]
    for text in every:
        for line in text.splitlines():
            assert re.match(
                r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ +action: \w+ \| result: ", line
            ), line
        assert "result: fail" not in text
    received = re.findall(
        r"action: apuesta_recibida \| result: success \| cantidad: (\d+)", server_log
    )
    assert sum(map(int, received)) == sum(len(b) for b in bets.values())
    assert server_log.count("action: sorteo | result: success") == 1
    assert "Attempting to acquire lock" not in server_log  # third-party loggers are quiet
    for agency, log in client_logs.items():
        winners = sum(1 for b in bets[agency] if b.number == 7574)
        assert f"action: consulta_ganadores | result: success | cant_ganadores: {winners}" in log


def test_two_lotteries_in_a_row_with_the_courses_files_and_flow(tmp_path):
    port = free_port()
    first = course_lottery(tmp_path, port, "first", {1: 120, 2: 75, 3: 40}, winners_every=20)
    check_the_courses_way(*first)
    assert "action: new_lottery" not in first[0]
    second = course_lottery(tmp_path, port, "second", {1: 33, 2: 90}, winners_every=9)
    check_the_courses_way(*second)
    assert re.search(
        r"action: new_lottery \| result: success \| previous: .*/previous/.* \| "
        r"reason: another deployment \| was: complete",
        second[0],
    )
    # The loop.period pause is honoured and the ignored keys stay quiet.
    assert "loop_period: 0.01" in second[1][1] and "unknown key" not in second[1][1]


def test_the_courses_suite_order_four_single_agency_lotteries_then_3_5_3_5(tmp_path):
    """ej6's four tests (one agency each), then ej7's and ej8's (3 and 5 agencies), each a new
    deployment with new agency files on the one storage folder the suite keeps."""
    port = free_port()
    for run, agencies in enumerate([1, 1, 1, 1, 3, 5, 3, 5]):
        sizes = {a: 20 + 7 * a + run for a in range(1, agencies + 1)}
        server_log, client_logs, bets = course_lottery(
            tmp_path, port, f"run{run}", sizes, winners_every=6, start=run * 1000
        )
        check_the_courses_way(server_log, client_logs, bets)
        stored = list(load_bets(tmp_path / "data" / "bets.csv"))
        assert sorted(stored) == sorted(b for mine in bets.values() for b in mine)
        assert ("action: new_lottery" in server_log) == (run > 0)
    assert len(list((tmp_path / "data" / "previous").iterdir())) == 7
