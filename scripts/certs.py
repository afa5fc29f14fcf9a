"""make certs: a local CA and a server certificate for TLS on the lottery port, with no
internet, using the `openssl` command line (on every machine these deployments run on; no
Python package to pin for it).

python -m scripts.certs [--out .data/tls] [--names server,localhost,127.0.0.1]

Writes ca.pem (for clients: the only file a client needs), ca.key, server.pem and server.key;
keys 0600, the folder 0700. Files already there are kept; a server certificate that has
expired (or expires within a day) is issued again by the same CA.
"""

import argparse
import ipaddress
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAMES = ("server", "localhost", "127.0.0.1")  # the compose service, and local runs
SERVER_DAYS = 365  # Mozilla's intermediate profile: a leaf certificate lives 366 days at most
CA_DAYS = 3650
# Python 3.13 verifies with VERIFY_X509_STRICT: the CA needs critical basicConstraints and a
# subject key identifier, the server certificate an authority key identifier.
_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = {cn}
[ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = {names}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""


class CertsError(Exception):
    pass


def _openssl(*args: str) -> None:
    result = subprocess.run(["openssl", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise CertsError(f"openssl {args[0]} failed: {result.stderr.strip()}")


def _alt_names(names: tuple[str, ...]) -> str:
    out = []
    for name in names:
        try:
            ipaddress.ip_address(name)
            out.append(f"IP:{name}")
        except ValueError:
            out.append(f"DNS:{name}")
    return ", ".join(out)


def _key(path: Path) -> None:
    # An EC P-256 key, created 0600 (umask) before any byte of it is written.
    old = os.umask(0o077)
    try:
        _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-out", str(path))  # fmt: skip
    finally:
        os.umask(old)
    os.chmod(path, 0o600)


def _valid_for_a_day(cert: Path) -> bool:
    return subprocess.run(["openssl", "x509", "-checkend", "86400", "-noout", "-in", str(cert)],
                          capture_output=True).returncode == 0  # fmt: skip


def ensure_certs(folder: Path, names: tuple[str, ...] = NAMES) -> dict[str, Path]:
    """The CA and server files in folder (made where missing); their paths by name."""
    if shutil.which("openssl") is None:
        raise CertsError("the openssl command is not installed (apt-get install openssl)")
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    paths = {n: folder / f"{n}" for n in ("ca.pem", "ca.key", "server.pem", "server.key")}
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "openssl.cnf"
        if not (paths["ca.pem"].exists() and paths["ca.key"].exists()):
            config.write_text(_CONFIG.format(cn="lottery local CA", names=_alt_names(names)))
            _key(paths["ca.key"])
            _openssl("req", "-x509", "-new", "-config", str(config), "-extensions", "ca",
                     "-key", str(paths["ca.key"]), "-sha256", "-days", str(CA_DAYS),
                     "-out", str(paths["ca.pem"]))  # fmt: skip
            for stale in ("server.pem", "server.key"):  # issued by another CA
                paths[stale].unlink(missing_ok=True)
        server_ok = paths["server.pem"].exists() and paths["server.key"].exists()
        if server_ok and _valid_for_a_day(paths["server.pem"]):
            return paths
        config.write_text(_CONFIG.format(cn=names[0], names=_alt_names(names)))
        csr = Path(tmp) / "server.csr"
        if not paths["server.key"].exists():
            _key(paths["server.key"])
        _openssl("req", "-new", "-config", str(config), "-key", str(paths["server.key"]),
                 "-out", str(csr))  # fmt: skip
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(paths["ca.pem"]),
                 "-CAkey", str(paths["ca.key"]), "-set_serial", f"0x{secrets.token_hex(16)}",
                 "-days", str(SERVER_DAYS), "-sha256", "-extfile", str(config),
                 "-extensions", "server", "-out", str(paths["server.pem"]))  # fmt: skip
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make certs")
    parser.add_argument("--out", type=Path, default=ROOT / ".data" / "tls")
    parser.add_argument("--names", default=",".join(NAMES), help="the server certificate's names")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.names.split(",") if n.strip()]
    if not names:
        print("error: --names needs at least one name", file=sys.stderr)
        return 2
    try:
        paths = ensure_certs(args.out, tuple(names))
    except CertsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"certs: {paths['server.pem']} (TLS_CERT), {paths['server.key']} (TLS_KEY), "
          f"{paths['ca.pem']} (clients' tls.caPath)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
