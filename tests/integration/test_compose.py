"""The compose generator, and (with a Docker engine) `make up` for real."""

import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from scripts.lab.processes import ROOT, write_agency_csv
from scripts.lab.sample import make_bets, wait_for


def generate(tmp_path, *args, shell="bash", env=None):
    command = [str(ROOT / "generar-compose.sh")] if shell == "./" else [shell, "generar-compose.sh"]
    return subprocess.run(
        [*command, *args],
        cwd=ROOT if shell != "./" else tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


@pytest.mark.parametrize("agencies", [0, 1, 5, 50])
def test_the_generated_file_is_valid_and_complete(tmp_path, agencies):
    out_file = tmp_path / "compose.yaml"
    result = generate(tmp_path, str(out_file), str(agencies))
    assert result.returncode == 0, result.stderr
    doc = yaml.safe_load(out_file.read_text())
    assert set(doc) == {"services", "networks"}  # no top-level name: (docker-compose 1.29)
    assert doc["networks"] == {"testing_net": {"driver": "bridge"}}
    services = doc["services"]
    assert list(services) == ["server"] + [f"client{i}" for i in range(1, agencies + 1)]
    server = services["server"]
    assert server["container_name"] == "server"
    # Containers run as whoever generated the file: ./.data stays theirs, no variable needed.
    assert server["user"] == f"{os.getuid()}:{os.getgid()}"
    assert (
        server["image"] == "server:latest"
        and services.get("client1", {}).get("image", "client:latest") == "client:latest"
    )
    assert f"AGENCIES={agencies}" in server["environment"]
    assert "STORAGE_DIR=/data" in server["environment"]
    assert "./server/config.ini:/app/server/config.ini:ro" in server["volumes"]
    assert "./.data:/data" in server["volumes"]
    assert server["healthcheck"]["test"] == ["CMD", "python", "-m", "server.healthcheck"]
    for i in range(1, agencies + 1):
        client = services[f"client{i}"]
        assert client["container_name"] == f"client{i}"
        assert f"CLI_ID={i}" in client["environment"]
        assert f"CLI_REJECTS_PATH=/rejects/agency-{i}.rejected.csv" in client["environment"]
        assert f"./.data/agency-{i}.csv:/data/agency.csv:ro" in client["volumes"]
        assert "./client/config.yaml:/app/client/config.yaml:ro" in client["volumes"]
        assert "./.data/rejects:/rejects" in client["volumes"]
        assert client["depends_on"] == {"server": {"condition": "service_healthy"}}
        assert client["networks"] == ["testing_net"]


def lottery_id(path) -> str:
    (found,) = [
        e for e in yaml.safe_load(path.read_text())["services"]["server"]["environment"]
        if e.startswith("LOTTERY_ID=")
    ]  # fmt: skip
    return found.removeprefix("LOTTERY_ID=")


def test_each_generated_file_names_a_fresh_lottery(tmp_path):
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    assert generate(tmp_path, str(first), "3").returncode == 0
    assert generate(tmp_path, str(second), "3").returncode == 0
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{6}", lottery_id(first))
    assert lottery_id(first) != lottery_id(second)


def test_only_make_ups_file_publishes_the_status_page_and_on_loopback_only(tmp_path):
    bare = tmp_path / "bare.yaml"
    assert generate(tmp_path, str(bare), "2").returncode == 0
    server = yaml.safe_load(bare.read_text())["services"]["server"]
    assert "ports" not in server  # a busy port on a grader's machine cannot stop `up`
    made = tmp_path / "made.yaml"
    command = [
        sys.executable,
        "scripts/compose.py",
        str(made),
        "2",
        "--keys",
        "--status-port",
        "8080",
    ]
    assert subprocess.run(command, cwd=ROOT, capture_output=True).returncode == 0
    server = yaml.safe_load(made.read_text())["services"]["server"]
    assert server["ports"] == ["127.0.0.1:8080:8080"]
    assert "STATUS_HOST=0.0.0.0" in server["environment"]


def test_make_ups_file_speaks_tls_with_the_key_in_the_server_only_the_bare_file_in_clear(tmp_path):
    bare = tmp_path / "bare.yaml"
    assert generate(tmp_path, str(bare), "2").returncode == 0
    assert "TLS" not in bare.read_text() and "/tls/" not in bare.read_text()
    made = tmp_path / "made.yaml"
    command = [sys.executable, "scripts/compose.py", str(made), "2", "--keys", "--tls", "--replica"]
    assert subprocess.run(command, cwd=ROOT, capture_output=True).returncode == 0
    services = yaml.safe_load(made.read_text())["services"]
    server = services.pop("server")
    assert "REPLICA_URL=file:///replica" in server["environment"]
    assert "./.data-replica:/replica" in server["volumes"]
    assert "REPLICA" not in bare.read_text()
    assert {"TLS_CERT=/tls/server.pem", "TLS_KEY=/tls/server.key"} <= set(server["environment"])
    assert "./.data/tls/server.key:/tls/server.key:ro" in server["volumes"]
    for client in services.values():
        assert "CLI_TLS_CA=/tls/ca.pem" in client["environment"]
        mounted = [v for v in client["volumes"] if "/tls/" in v]
        assert mounted == ["./.data/tls/ca.pem:/tls/ca.pem:ro"]  # the CA only: no key


def test_make_ups_keep_id_keeps_an_unchanged_files_lottery_and_only_that(tmp_path):
    def compose(*args):
        command = [sys.executable, "scripts/compose.py", *args]
        return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)

    current = tmp_path / "docker-compose-dev.yaml"
    assert compose(str(current), "2", "--keys", "--keep-id", str(current)).returncode == 0
    same = tmp_path / "same.yaml"
    assert compose(str(same), "2", "--keys", "--keep-id", str(current)).returncode == 0
    assert same.read_text() == current.read_text()
    other = tmp_path / "other.yaml"
    assert compose(str(other), "3", "--keys", "--keep-id", str(current)).returncode == 0
    assert lottery_id(other) != lottery_id(current)
    assert compose(str(other), "2", "--keep-id").returncode == 2


@pytest.mark.parametrize("shell", ["bash", "sh", "./"])
@pytest.mark.parametrize("args", [[], ["only-one"], ["out.yaml", "-1"], ["out.yaml", "many"]])
def test_bad_arguments_give_a_usage_line_and_exit_2(tmp_path, args, shell):
    result = generate(tmp_path, *args, shell=shell)
    assert result.returncode == 2
    assert result.stderr.startswith("usage: ./generar-compose.sh <output-file> <N>")


@pytest.mark.parametrize("shell", ["bash", "sh", "./"])
def test_a_fresh_clone_needs_only_a_python3_without_pyyaml(tmp_path, shell):
    bare = tmp_path / "bin"
    bare.mkdir()
    python3 = bare / "python3"
    # -S -I: no site-packages (so no PyYAML), as on a machine where nothing is installed.
    python3.write_text(f'#!/bin/sh\nexec {sys.executable} -S -I "$@"\n')
    python3.chmod(0o755)
    assert subprocess.run([python3, "-c", "import yaml"], capture_output=True).returncode != 0
    env = {**os.environ, "PATH": f"{bare}:/usr/bin:/bin"}
    out_file = tmp_path / "docker-compose-dev.yaml"
    result = generate(tmp_path, str(out_file), "3", shell=shell, env=env)
    assert result.returncode == 0, result.stderr
    doc = yaml.safe_load(out_file.read_text())
    assert list(doc["services"]) == ["server", "client1", "client2", "client3"]


def test_values_are_quoted_so_they_cannot_change_the_structure():
    sys.path.insert(0, str(ROOT))
    from scripts.compose import to_yaml

    tricky = {"a": ["x: y", "- z", "#c", "yes", "1.0", 'q"uote'], "b": {"c": ""}}
    assert yaml.safe_load(to_yaml(tricky)) == tricky


def docker_engine() -> str | None:
    """Why docker tests cannot run here, or None when an engine answers."""
    if shutil.which("docker") is None:
        return "no docker client installed"
    try:
        probe = subprocess.run(["docker", "info"], capture_output=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "no Docker engine answers (docker info timed out)"
    if probe.returncode != 0:
        return "no Docker engine answers (docker info failed)"
    if (
        subprocess.run(
            ["docker", "image", "inspect", "python:3.13-slim"], capture_output=True
        ).returncode
        != 0
    ):
        return "base image python:3.13-slim is not available"
    return None


@pytest.mark.docker
def test_make_up_runs_the_lottery_in_containers(tmp_path):
    reason = docker_engine()
    if reason:
        pytest.skip(reason)
    work = tmp_path / "repo"
    shutil.copytree(
        ROOT, work, ignore=shutil.ignore_patterns(".venv", ".data", ".git", "__pycache__")
    )
    (work / ".venv").symlink_to(ROOT / ".venv")
    compose_file = "docker-compose-test.yaml"

    def make(*args):
        return subprocess.run(
            ["make", "-s", *args, "AGENCIES=2", "BETS=1500", f"COMPOSE_FILE={compose_file}"],
            cwd=work,
            capture_output=True,
            text=True,
            timeout=600,
        )

    up = make("up")
    assert up.returncode == 0, up.stdout + up.stderr
    try:

        def logs():
            return (
                subprocess.run(["docker", "logs", "client2"], capture_output=True, text=True).stderr
                + subprocess.run(
                    ["docker", "logs", "client1"], capture_output=True, text=True
                ).stderr
            )

        wait_for(
            lambda: logs().count("action: summary | result: success") == 2,
            timeout=300,
            what="both clients",
        )
        server_logs = subprocess.run(
            ["docker", "logs", "server"], capture_output=True, text=True
        ).stderr
        assert server_logs.count("action: sorteo | result: success") == 1
        assert "transport: tls" in server_logs and "mode: keys" in server_logs
        assert "action: replica | result: success | url: file:///replica/" in server_logs
    finally:
        down = make("down")
    assert down.returncode == 0, down.stderr
    stats = subprocess.run(
        [sys.executable, "-m", "storage", "--dir", str(work / ".data"), "stats"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert stats.stdout.split("\n")[1].split()[:2] == ["1", "1500"]


COURSE_INI = "[DEFAULT]\nSERVER_PORT = 12345\nSERVER_IP = server\nSERVER_LISTEN_BACKLOG = 5\nLOGGING_LEVEL = DEBUG\n"
COURSE_YAML = 'server:\n  address: "server:12345"\nloop:\n  amount: 5\n  period: "5ms"\nlog:\n  level: "DEBUG"\nbatch:\n  maxAmount: 50\n'


@pytest.mark.docker
def test_the_courses_flow_runs_two_lotteries_with_docker_compose_directly(tmp_path):
    reason = docker_engine()
    if reason:
        pytest.skip(reason)
    compose = ["docker", "compose"]
    if subprocess.run([*compose, "version"], capture_output=True).returncode != 0:
        compose = ["docker-compose"]
    work = tmp_path / "repo"
    shutil.copytree(
        ROOT, work, ignore=shutil.ignore_patterns(".venv", ".data", ".git", "__pycache__")
    )
    (work / "server" / "config.ini").write_text(COURSE_INI)
    (work / "client" / "config.yaml").write_text(COURSE_YAML)

    def run(*args, timeout=600):
        return subprocess.run(args, cwd=work, capture_output=True, text=True, timeout=timeout)

    for side in ("server", "client"):
        built = run("docker", "build", "-f", f"./{side}/Dockerfile", "-t", f"{side}:latest", ".")
        assert built.returncode == 0, built.stderr
    ids = set()
    for round_, sizes in enumerate(({1: 300, 2: 120}, {1: 80, 2: 200}), 1):
        assert run("sh", "generar-compose.sh", "docker-compose-dev.yaml", "2").returncode == 0
        ids.add(lottery_id(work / "docker-compose-dev.yaml"))
        (work / ".data").mkdir(exist_ok=True)
        for agency, count in sizes.items():
            bets = make_bets(agency, 100 * round_, count, winners_every=25)
            write_agency_csv(work / ".data" / f"agency-{agency}.csv", bets)
        up = run(*compose, "-f", "docker-compose-dev.yaml", "up", "-d")
        assert up.returncode == 0, up.stderr
        try:
            for client in ("client1", "client2"):
                waited = run("docker", "wait", client, timeout=300)
                assert waited.stdout.strip() == "0", run("docker", "logs", client).stderr
            logs = run(*compose, "-f", "docker-compose-dev.yaml", "logs", "--no-color").stdout
        finally:
            run(*compose, "-f", "docker-compose-dev.yaml", "down")
        assert "result: fail" not in logs
        assert logs.count("action: sorteo | result: success") == 1
        received = re.findall(r"apuesta_recibida \| result: success \| cantidad: (\d+)", logs)
        assert sum(map(int, received)) == sum(sizes.values())
        assert ("action: new_lottery | result: success" in logs) == (round_ == 2)
        assert len(ids) == round_  # each generated file is its own lottery
        owner = (work / ".data" / "bets.csv").stat().st_uid
        assert owner == os.getuid()  # files in ./.data belong to whoever ran compose
