"""The client's settings: declared once (common.settings), read from client/config.yaml,
overridable by environment variables."""

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from common import settings
from common.settings import ConfigError

CONFIG_PATH = Path(__file__).resolve().parent / "config.yaml"
__all__ = ["CONFIG_PATH", "SETTINGS", "ClientConfig", "ConfigError", "load_config", "read_key"]


def _positive_int(text: str) -> int:
    return settings.integer(1)(text)


Setting = settings.Setting
SETTINGS = [
    Setting("id", "CLI_ID", None, _positive_int, "agency number", required=True),
    Setting("server.address", "CLI_SERVER_ADDRESS", "server:12345", settings.address, "host:port"),
    Setting("batch.maxAmount", "CLI_BATCH_MAXAMOUNT", 128, _positive_int, "bets per batch at most"),
    Setting("log.level", "CLI_LOG_LEVEL", "INFO", settings.level, "log level"),
    Setting("data.path", "CLI_DATA_PATH", "/data/agency.csv", settings.text, "the agency's bets"),
    Setting("data.rejectsPath", "CLI_REJECTS_PATH", None, settings.text, "where refused rows are written"),
    Setting("retry.maxSeconds", "CLI_RETRY_MAXSECONDS", 30, settings.seconds(allow_zero=True), "how long to keep retrying without progress"),
    Setting("auth.keyPath", "CLI_KEY_PATH", None, settings.text, "a file holding the agency's key"),
    Setting("tls.caPath", "CLI_TLS_CA", None, settings.text, "a CA certificate (PEM): connect with TLS and verify the server against it"),
    Setting("tls.serverName", "CLI_TLS_SERVER_NAME", None, settings.text, "the name the server's certificate must carry (default: the host of server.address)"),
    Setting("loop.period", "CLI_LOOP_PERIOD", 0, settings.duration, "a pause between batches"),
    Setting("loop.amount", "CLI_LOOP_AMOUNT", None, settings.optional_text, "accepted for the course's files; unused"),
]  # fmt: skip


@dataclass(frozen=True)
class ClientConfig:
    agency: int
    server: tuple[str, int]
    batch_max_amount: int
    log_level: str
    data_path: Path
    rejects_path: Path
    retry_max_seconds: float
    key_path: Path | None = None  # read once at start; the key itself is never logged
    loop_period: float = 0.0
    tls_ca: Path | None = None  # set: TLS, verified against this CA; never plaintext then
    tls_server_name: str | None = None
    unknown_keys: tuple[str, ...] = ()  # in the file but not settings: logged as warnings

    @property
    def server_name(self) -> str:
        """The name checked in the server's certificate."""
        return self.tls_server_name or self.server[0]

    def describe(self) -> dict[str, object]:
        return {
            "id": self.agency,
            "server": f"{self.server[0]}:{self.server[1]}",
            "batch_max_amount": self.batch_max_amount,
            "data_path": self.data_path,
            "rejects_path": self.rejects_path,
            "retry_max_seconds": self.retry_max_seconds,
            "key_path": self.key_path or "-",
            "tls": f"verified against {self.tls_ca} as {self.server_name}"
            if self.tls_ca
            else "off",
            "loop_period": self.loop_period,
        }


def load_config(environ: Mapping[str, str] = os.environ) -> ClientConfig:
    """Read CLI_CONFIG (default client/config.yaml), apply the environment, validate."""
    path = Path(environ.get("CLI_CONFIG", CONFIG_PATH))
    try:
        document = yaml.safe_load(path.read_text("utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"CLI_CONFIG: cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"CLI_CONFIG: {path} is not valid YAML: {exc}") from None
    if not isinstance(document, dict):
        raise ConfigError(f"CLI_CONFIG: {path} must hold a mapping of settings")
    file_values = dict(_leaves(document))
    values = settings.resolve(SETTINGS, file_values, environ)
    data_path = Path(values["data.path"])
    rejects = values["data.rejectsPath"]
    return ClientConfig(
        agency=values["id"],
        server=values["server.address"],
        batch_max_amount=values["batch.maxAmount"],
        log_level=values["log.level"],
        data_path=data_path,
        rejects_path=Path(rejects) if rejects else Path(f"{data_path}.rejected.csv"),
        retry_max_seconds=values["retry.maxSeconds"],
        key_path=Path(values["auth.keyPath"]) if values["auth.keyPath"] else None,
        loop_period=values["loop.period"],
        tls_ca=Path(values["tls.caPath"]) if values["tls.caPath"] else None,
        tls_server_name=values["tls.serverName"] or None,
        unknown_keys=settings.unknown(SETTINGS, file_values),
    )


def _leaves(document: dict, prefix: str = "") -> list[tuple[str, object]]:
    """The YAML document's leaves by dotted name (server.address, ...)."""
    found = []
    for key, value in document.items():
        name = f"{prefix}{key}"
        found += _leaves(value, name + ".") if isinstance(value, dict) else [(name, value)]
    return found


def read_key(path: Path) -> str:
    """The agency's key from its file (surrounding whitespace ignored); ValueError if the
    file cannot be read or does not hold a key of 16-128 characters from [A-Za-z0-9_-]."""
    try:
        key = path.read_text("utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    if not (16 <= len(key) <= 128) or not all(
        c.isascii() and (c.isalnum() or c in "_-") for c in key
    ):
        raise ValueError(f"{path} does not hold a key (16-128 characters from A-Z a-z 0-9 _ -)")
    return key


def tls_context(ca_path: Path) -> ssl.SSLContext:
    """A client context that trusts only this CA and checks the server's name (TLS 1.2 at
    least); ValueError if the file does not hold a usable CA certificate."""
    try:
        # With a cafile, only that file is trusted (not the system's store).
        context = ssl.create_default_context(cafile=str(ca_path))
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot load a CA certificate from {ca_path}: {exc}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
