"""The server's settings: declared once (common.settings), read from server/config.ini's
[DEFAULT] section (or SERVER_CONFIG), each overridable by an environment variable."""

import configparser
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from common import settings
from common.settings import ConfigError
from domain import DEFAULT_WINNING_NUMBER
from storage.replica import normalized_url

CONFIG_PATH = Path(__file__).resolve().parent / "config.ini"
__all__ = ["CONFIG_PATH", "SETTINGS", "ConfigError", "ServerConfig", "load_config"]


def _workers(text: str) -> int:
    count = settings.integer(0, 1024)(text)
    # 0: twice the CPUs plus one (gunicorn's rule of thumb): a worker waiting on an fsync
    # leaves its CPU to another.
    return count or 2 * (os.cpu_count() or 1) + 1


_LOTTERY_ID = re.compile(r"[A-Za-z0-9._:-]{0,64}")


def _lottery_id(text: str) -> str:
    # It is logged and written into archive notes: a short token, never free text.
    if not _LOTTERY_ID.fullmatch(text):
        raise ValueError(f"{text!r} is not up to 64 of A-Z a-z 0-9 . _ : -")
    return text


def _optional_port(text: str) -> int | None:
    return settings.integer(1, 65535)(text) if text.strip() else None


def _replica_sync(text: str) -> str:
    if text not in ("end", "commit"):
        raise ValueError(f"{text!r} is not end or commit")
    return text


def _server(key: str, default: object, parse, meaning: str) -> settings.Setting:
    return settings.Setting(key, key, default, parse, meaning)  # the env name is the key


# config.ini restates most defaults for people to edit; a file with only the course's four
# keys gets the rest from here.
SETTINGS = [
    _server("SERVER_PORT", 12345, settings.integer(1, 65535), "TCP port"),
    _server("SERVER_IP", "", settings.optional_text, "accepted for the course's files; the server listens on all interfaces"),
    _server("SERVER_LISTEN_BACKLOG", 2048, settings.integer(1), "listen backlog"),
    _server("LOGGING_LEVEL", "INFO", settings.level, "log level"),
    _server("AGENCIES", 5, settings.integer(0), "agencies that must send END before the draw (ids 1..AGENCIES; 0: no draw)"),
    _server("STORAGE_DIR", ".data", settings.text, "where bets.csv and bets.db live"),
    _server("LOTTERY_ID", "", _lottery_id, "names the deployment's lottery; another id begins a new one (empty: continue the stored one)"),
    _server("WINNING_NUMBER", DEFAULT_WINNING_NUMBER, settings.integer(0, 9999), "the drawn number"),
    _server("DB_BUSY_TIMEOUT_S", 10, settings.seconds(), "how long a write waits for another SQLite connection (a make db shell) before the batch is answered wait"),
    _server("MAX_CONNECTIONS", 10000, settings.integer(1), "client connections open at once (capped by open files)"),
    _server("WORKERS", 0, _workers, "worker processes answering messages (0: 2 x CPUs + 1)"),
    _server("IDLE_TIMEOUT_S", 30, settings.seconds(), "a connection with no complete message for this long is closed"),
    _server("WINNERS_WAIT_S", 5, settings.seconds(), "how long a WINNERS before the draw is held open"),
    _server("SHUTDOWN_GRACE_S", 5, settings.seconds(), "how long shutdown waits for connections to finish"),
    _server("STATUS_PORT", 8080, settings.integer(0, 65535), "HTTP port of the status page, /metrics and health probes (0: off)"),
    _server("STATUS_HOST", "127.0.0.1", settings.text, "address the status listener binds (0.0.0.0: every interface)"),
    _server("AGENCY_KEYS", "", settings.optional_text, "file of <agency>:<key> lines; empty: open mode"),
    _server("TLS_CERT", "", settings.optional_text, "PEM certificate chain; with TLS_KEY, SERVER_PORT speaks TLS only (empty: plaintext)"),
    _server("TLS_KEY", "", settings.optional_text, "PEM private key of TLS_CERT (readable by its owner only)"),
    _server("TLS_HANDSHAKE_TIMEOUT_S", 10, settings.seconds(), "a connection that has not finished its TLS handshake by then is closed"),
    _server("TLS_MAX_HANDSHAKES", 256, settings.integer(1), "TLS handshakes in progress at once at most"),
    _server("PLAIN_PORT", "", _optional_port, "with TLS on, a second port speaking plaintext for clients that cannot do TLS (empty: none)"),
    _server("REPLICA_URL", "", normalized_url, "where Litestream replicates bets.db (a file:// path or any URL Litestream accepts; empty: off)"),
    _server("REPLICA_SYNC", "end", _replica_sync, "end: an END (and the draw) is answered once the replica holds it; commit: every batch too"),
    _server("REPLICA_TIMEOUT_S", 5, settings.seconds(), "how long a write waits for the replica to confirm it before it is answered wait"),
]  # fmt: skip


@dataclass(frozen=True)
class ServerConfig:
    server_port: int
    server_ip: str
    server_listen_backlog: int
    logging_level: str
    agencies: int
    storage_dir: str
    lottery_id: str
    winning_number: int
    db_busy_timeout_s: float
    max_connections: int
    workers: int
    idle_timeout_s: float
    winners_wait_s: float
    shutdown_grace_s: float
    status_port: int
    status_host: str
    agency_keys: str  # the path only: keys are loaded by server.keys and never logged
    tls_cert: str = ""
    tls_key: str = ""  # the path only: the key is loaded by the TLS terminator alone
    tls_handshake_timeout_s: float = 10.0
    tls_max_handshakes: int = 256
    plain_port: int | None = None
    replica_url: str = ""
    replica_sync: str = "end"
    replica_timeout_s: float = 5.0
    # Keys of the file that are not settings (a typo must be visible): logged as warnings.
    unknown_keys: tuple[str, ...] = ()

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert)

    def describe(self) -> dict[str, object]:
        """Every setting by its lower-case name, for the start-up log line."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "unknown_keys"}


def load_config(path: Path | None = None, environ: Mapping[str, str] = os.environ) -> ServerConfig:
    """Read the file (SERVER_CONFIG, else server/config.ini), apply environment overrides,
    fill in built-in defaults, validate; raise ConfigError naming the key."""
    if path is None:
        path = Path(environ.get("SERVER_CONFIG") or CONFIG_PATH)
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keep keys upper-case as written
    try:
        if not parser.read(path, encoding="utf-8"):
            raise ConfigError(f"cannot read configuration file {path}")
    except configparser.Error as exc:
        raise ConfigError(f"{path}: {exc}") from None
    file_values = parser.defaults()
    values = settings.resolve(SETTINGS, file_values, environ)
    _check_tls(values)
    return ServerConfig(
        **{key.lower(): value for key, value in values.items()},
        unknown_keys=settings.unknown(SETTINGS, file_values),
    )


def _check_tls(values: dict) -> None:
    """The TLS keys go together; a plain port only beside a TLS one, on its own number."""
    cert, key = values["TLS_CERT"], values["TLS_KEY"]
    if bool(cert) != bool(key):
        missing, given = ("TLS_KEY", "TLS_CERT") if cert else ("TLS_CERT", "TLS_KEY")
        raise ConfigError(f"{missing}: required with {given} (set both or neither)")
    plain = values["PLAIN_PORT"]
    if plain is None:
        return
    if not cert:
        raise ConfigError(
            "PLAIN_PORT: only with TLS_CERT/TLS_KEY (without them SERVER_PORT is plaintext)"
        )
    if plain in (values["SERVER_PORT"], values["STATUS_PORT"]):
        raise ConfigError(f"PLAIN_PORT: {plain} is already SERVER_PORT or STATUS_PORT")
