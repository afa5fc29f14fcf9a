"""python -m server.healthcheck: exit 0 if the local server answers PING with PONG."""

import os
import socket
import sys

from protocol import Ping, Response, decode_response, encode
from transport import MessageStream


def main() -> int:
    port = int(os.environ.get("SERVER_PORT", "12345"))
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
