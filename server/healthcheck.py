"""python -m server.healthcheck: exit 0 if the local server answers PING with PONG."""

import socket
import ssl
import sys

from protocol import Ping, Response, decode_response, encode
from server.config import ConfigError, load_config
from transport import MessageStream


def main() -> int:
    try:
        config = load_config()  # the file and the environment, as the server reads them
    except ConfigError as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    try:
        with socket.create_connection(("127.0.0.1", config.server_port), timeout=2) as raw:
            sock = _tls(raw, config.tls_cert) if config.tls else raw
            stream = MessageStream(sock)
            stream.send(encode(Ping()))
            answer = decode_response(stream.read_line(2))
    except Exception as exc:  # any failure means unhealthy; say why
        print(f"unhealthy: {exc!r}", file=sys.stderr)
        return 1
    if answer != Response("success", "PONG"):
        print(f"unhealthy: PING answered {answer.result}: {answer.message}", file=sys.stderr)
        return 1
    return 0


def _tls(sock: socket.socket, cert_path: str) -> ssl.SSLSocket:
    # The server's own certificate is the trust anchor (a partial chain, which Python's
    # default context accepts); the name is not checked: this is 127.0.0.1 asking itself.
    context = ssl.create_default_context(cafile=cert_path)
    context.check_hostname = False
    return context.wrap_socket(sock)


if __name__ == "__main__":
    sys.exit(main())
