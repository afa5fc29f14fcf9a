"""Write a docker compose file for one server and N agency clients (used by generar-compose.sh).

python scripts/compose.py <output-file> <N>
"""

import sys
from pathlib import Path

import yaml

USAGE = "usage: ./generar-compose.sh <output-file> <N>   (N = number of agency clients, 0 or more)"
NETWORK = "testing_net"
# Run as the host user (make up exports these) so files in the bind-mounted ./.data stay
# readable and writable from the host; the images' own default user is unprivileged (10001).
USER = "${LOTTERY_UID:-10001}:${LOTTERY_GID:-10001}"
PORT = 12345


def server_service(agencies: int, keys: bool = False) -> dict:
    service = {
        "container_name": "server",
        "image": "lottery-server:latest",
        "user": USER,
        "build": {"context": ".", "dockerfile": "server/Dockerfile"},
        "environment": [f"AGENCIES={agencies}", "STORAGE_DIR=/data", "PYTHONUNBUFFERED=1"],
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
    if keys:
        service["environment"].append("AGENCY_KEYS=/keys/agencies.keys")
        service["volumes"].append("./.data/keys/agencies.keys:/keys/agencies.keys:ro")
    return service


def client_service(agency: int, keys: bool = False) -> dict:
    service = {
        "container_name": f"client{agency}",
        "image": "lottery-client:latest",
        "user": USER,
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
    if keys:  # its own key only, read-only
        service["environment"].append("CLI_KEY_PATH=/keys/agency.key")
        service["volumes"].append(f"./.data/keys/agency-{agency}.key:/keys/agency.key:ro")
    return service


def compose(agencies: int, keys: bool = False) -> dict:
    """The compose document; no top-level `name:` so docker-compose 1.29 accepts it. With
    keys, the server reads .data/keys/agencies.keys and each client its own key file."""
    services = {"server": server_service(agencies, keys)}
    for agency in range(1, agencies + 1):
        services[f"client{agency}"] = client_service(agency, keys)
    return {
        "services": services,
        "networks": {NETWORK: {"driver": "bridge"}},
    }


def main(argv: list[str]) -> int:
    keys = "--keys" in argv  # make up: run with agency keys (see scripts/keys.py)
    argv = [a for a in argv if a != "--keys"]
    if len(argv) != 2 or not argv[1].isdigit():
        print(USAGE, file=sys.stderr)
        return 2
    output, agencies = Path(argv[0]), int(argv[1])
    text = yaml.safe_dump(compose(agencies, keys), sort_keys=False, default_flow_style=False)
    output.write_text(text, encoding="utf-8")
    print(f"wrote {output}: server + {agencies} clients")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
