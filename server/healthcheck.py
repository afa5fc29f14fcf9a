"""python -m server.healthcheck: exit 0 if the local server answers PING with PONG."""

import socket
import sys

from protocol import Ping, Response, decode_response, encode
from server.config import ConfigError, load_config
from transport import MessageStream


def main() -> int:
    try:
        port = load_config().server_port  # the file and SERVER_PORT, as the server reads them
    except ConfigError as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            stream = MessageStream(sock)
            stream.send(encode(Ping()))
            answer = decode_response(stream.read_line(2))
    except Exception as exc:  # any failure means unhealthy; say why
        print(f"unhealthy: {exc!r}", file=sys.stderr)
        return 1
    return 0 if answer == Response("success", "PONG") else 1


if __name__ == "__main__":
    sys.exit(main())
