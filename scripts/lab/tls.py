"""TLS for tests and benches: the certificates `make certs` writes, and client contexts."""

import ssl
from dataclasses import dataclass
from pathlib import Path

from client.config import tls_context
from scripts.certs import ensure_certs


@dataclass(frozen=True)
class Certs:
    ca: Path  # clients' tls.caPath
    cert: Path  # TLS_CERT
    key: Path  # TLS_KEY

    def server_env(self) -> dict[str, str]:
        return {"TLS_CERT": str(self.cert), "TLS_KEY": str(self.key)}

    def client(self) -> ssl.SSLContext:
        return tls_context(self.ca)


def make_certs(
    folder: Path, names: tuple[str, ...] = ("server", "localhost", "127.0.0.1")
) -> Certs:
    paths = ensure_certs(folder, names)
    return Certs(ca=paths["ca.pem"], cert=paths["server.pem"], key=paths["server.key"])
