"""python -m client: one agency's client (configuration: client/config.yaml + environment)."""

import logging
import sys

from client.agency import AgencyClient
from client.config import ConfigError, load_config, read_key, tls_context
from common.logs import event, setup_logging
from common.signals import StopFlag


def main() -> int:
    """Exit codes: 0 done (or stopped by a signal), 1 failed, 2 bad configuration."""
    try:
        config = load_config()
    except ConfigError as exc:
        setup_logging("INFO")
        logging.error(event("config", "fail", error=exc))
        return 2
    setup_logging(config.log_level)
    for key in config.unknown_keys:
        logging.warning(event("config", "success", warning=f"unknown key {key} ignored"))
    if not config.data_path.is_file():
        logging.error(
            event(
                "config", "fail", error=f"data.path (CLI_DATA_PATH): no file at {config.data_path}"
            )
        )
        return 2
    try:
        key = _loaded(config.key_path, read_key, "auth.keyPath (CLI_KEY_PATH)")
        tls = _loaded(config.tls_ca, tls_context, "tls.caPath (CLI_TLS_CA)")
    except ConfigError as exc:
        logging.error(event("config", "fail", error=exc))
        return 2
    logging.info(event("config", "success", **config.describe()))
    flag = StopFlag()
    code = AgencyClient(config, flag, key, tls).run()
    if flag.stopping:
        logging.info(event("shutdown", "success", signal=flag.name))
    return code


def _loaded(path, load, setting: str):
    """load(path) for a file setting that is set (None when it is not); ConfigError naming
    the setting if the file cannot be used."""
    if path is None:
        return None
    try:
        return load(path)
    except ValueError as exc:
        raise ConfigError(f"{setting}: {exc}") from None


if __name__ == "__main__":
    sys.exit(main())
