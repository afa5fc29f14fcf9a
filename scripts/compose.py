"""Write a docker compose file for one server and N agency clients (used by generar-compose.sh).

python3 scripts/compose.py <output-file> <N> [--keys] [--tls] [--replica] [--keep-id FILE]
    [--status-port PORT]

Each file names a fresh lottery (LOTTERY_ID: a UTC timestamp and a random suffix), so every
generated deployment begins its own lottery, while restarting the containers of one file
(a crash, `restart`, `stop`/`start`, `up` again) continues it. --keep-id FILE (make up) keeps
FILE's id when nothing else in the generated file differs from FILE.

Standard library only, Python >= 3.8: the course runs generar-compose.sh on a fresh clone,
before anything is installed.
"""

import json
import os
import re
import secrets
import sys
import time
from dataclasses import dataclass

USAGE = "usage: ./generar-compose.sh <output-file> <N>   (N = number of agency clients, 0 or more)"
NETWORK = "testing_net"
PORT = 12345


def _user() -> str:
    """The generating user's uid:gid, written into the file: containers run as that user, so
    the files they create in ./.data are that user's, with no environment variable to set."""
    getuid = getattr(os, "getuid", None)
    return f"{getuid()}:{os.getgid()}" if getuid else "10001:10001"


def fresh_lottery_id() -> str:
    """A new deployment's lottery id: when it was generated, and a suffix against collisions."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)


@dataclass(frozen=True)
class Extras:
    """What make up adds to the course's file (the bare generar-compose.sh file has none)."""

    keys: bool = False  # agency keys: the server's file, each client its own key
    tls: bool = False  # TLS: the server's certificate and key, each client the CA
    replica: bool = False  # Litestream replicating into ./.data-replica
    status_port: int = 0  # the status page on this machine's 127.0.0.1:<port>


def server_service(agencies: int, lottery_id: str, extras: Extras = Extras()) -> dict:
    service = {
        "container_name": "server",
        "image": "server:latest",
        "user": _user(),
        "build": {"context": ".", "dockerfile": "server/Dockerfile"},
        "environment": [
            f"AGENCIES={agencies}",
            f"LOTTERY_ID={lottery_id}",
            "STORAGE_DIR=/data",
            "PYTHONUNBUFFERED=1",
        ],
        "volumes": ["./server/config.ini:/app/server/config.ini:ro", "./.data:/data"],
        "networks": [NETWORK],
        "healthcheck": {
            "test": ["CMD", "python", "-m", "server.healthcheck"],
            "interval": "1s",
            "timeout": "3s",
            "retries": 30,
        },
        "stop_grace_period": "10s",
    }
    if extras.keys:
        service["environment"].append("AGENCY_KEYS=/keys/agencies.keys")
        service["volumes"].append("./.data/keys/agencies.keys:/keys/agencies.keys:ro")
    if extras.tls:  # the server's certificate and key (only the server gets the key)
        service["environment"] += ["TLS_CERT=/tls/server.pem", "TLS_KEY=/tls/server.key"]
        service["volumes"] += [
            "./.data/tls/server.pem:/tls/server.pem:ro",
            "./.data/tls/server.key:/tls/server.key:ro",
        ]
    if extras.replica:  # Litestream replicates bets.db into ./.data-replica (mount a disk there)
        service["environment"].append("REPLICA_URL=file:///replica")
        service["volumes"].append("./.data-replica:/replica")
    if extras.status_port:  # make up: this machine only; the bare file publishes nothing
        service["environment"].append("STATUS_HOST=0.0.0.0")
        service["ports"] = [f"127.0.0.1:{extras.status_port}:8080"]
    return service


def client_service(agency: int, extras: Extras = Extras()) -> dict:
    service = {
        "container_name": f"client{agency}",
        "image": "client:latest",
        "user": _user(),
        "build": {"context": ".", "dockerfile": "client/Dockerfile"},
        "environment": [
            f"CLI_ID={agency}",
            f"CLI_SERVER_ADDRESS=server:{PORT}",
            "CLI_DATA_PATH=/data/agency.csv",
            f"CLI_REJECTS_PATH=/rejects/agency-{agency}.rejected.csv",
            "PYTHONUNBUFFERED=1",
        ],
        "volumes": [
            "./client/config.yaml:/app/client/config.yaml:ro",
            f"./.data/agency-{agency}.csv:/data/agency.csv:ro",
            "./.data/rejects:/rejects",
        ],
        "networks": [NETWORK],
        "depends_on": {"server": {"condition": "service_healthy"}},
    }
    if extras.keys:  # its own key only, read-only
        service["environment"].append("CLI_KEY_PATH=/keys/agency.key")
        service["volumes"].append(f"./.data/keys/agency-{agency}.key:/keys/agency.key:ro")
    if extras.tls:  # the CA certificate only; the name checked is the host "server"
        service["environment"].append("CLI_TLS_CA=/tls/ca.pem")
        service["volumes"].append("./.data/tls/ca.pem:/tls/ca.pem:ro")
    return service


def compose(agencies: int, lottery_id: str, extras: Extras = Extras()) -> dict:
    """The compose document; no top-level `name:` so docker-compose 1.29 accepts it. With
    keys, the server reads .data/keys/agencies.keys and each client its own key file; with
    tls, the server speaks TLS with .data/tls/server.* and each client verifies it."""
    services = {"server": server_service(agencies, lottery_id, extras)}
    for agency in range(1, agencies + 1):
        services[f"client{agency}"] = client_service(agency, extras)
    return {"services": services, "networks": {NETWORK: {"driver": "bridge"}}}


def to_yaml(value, indent: int = 0) -> str:
    """Block-style YAML for dicts, lists, strings, numbers and booleans. Every string is
    double-quoted (JSON string syntax is valid YAML), so no value can change the structure."""
    pad = "  " * indent
    lines = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                lines.append(f"{pad}{key}:\n{to_yaml(item, indent + 1)}")
            else:
                lines.append(f"{pad}{key}: {_scalar(item)}")
    else:
        for item in value:
            if isinstance(item, (dict, list)) and item:
                body = to_yaml(item, indent + 1).lstrip()
                lines.append(f"{pad}- {body}")
            else:
                lines.append(f"{pad}- {_scalar(item)}")
    return "\n".join(lines)


def _scalar(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (dict, list)):
        return "{}" if isinstance(value, dict) else "[]"
    return json.dumps(str(value), ensure_ascii=False)


_LOTTERY_ID_LINE = re.compile(r'"LOTTERY_ID=([^"]*)"')


def render(agencies: int, extras: Extras, keep_from: "str | None") -> str:
    """The file's text: with keep_from's lottery id if that alone would make them differ."""
    if keep_from and os.path.exists(keep_from):
        with open(keep_from, encoding="utf-8") as f:
            existing = f.read()
        found = _LOTTERY_ID_LINE.search(existing)
        if found:
            text = to_yaml(compose(agencies, found.group(1), extras)) + "\n"
            if text == existing:
                return text
    return to_yaml(compose(agencies, fresh_lottery_id(), extras)) + "\n"


def main(argv: list) -> int:
    keys = "--keys" in argv  # make up: run with agency keys (see scripts/keys.py)
    tls = "--tls" in argv  # make up: TLS on the lottery port (see scripts/certs.py)
    replica = "--replica" in argv  # make up: Litestream replicates into ./.data-replica
    argv = [a for a in argv if a not in ("--keys", "--tls", "--replica")]
    keep_from, status_port = None, 0
    if "--status-port" in argv:  # make up: publish the status page on 127.0.0.1:<port>
        at = argv.index("--status-port")
        if at + 1 >= len(argv) or not argv[at + 1].isdigit():
            print(USAGE, file=sys.stderr)
            return 2
        status_port = int(argv[at + 1])
        del argv[at : at + 2]
    if "--keep-id" in argv:
        at = argv.index("--keep-id")
        if at + 1 >= len(argv):
            print(USAGE, file=sys.stderr)
            return 2
        keep_from = argv[at + 1]
        del argv[at : at + 2]
    if len(argv) != 2 or not argv[1].isdigit():
        print(USAGE, file=sys.stderr)
        return 2
    output, agencies = argv[0], int(argv[1])
    extras = Extras(keys=keys, tls=tls, replica=replica, status_port=status_port)
    text = render(agencies, extras, keep_from)
    with open(output, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {output}: server + {agencies} clients")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
