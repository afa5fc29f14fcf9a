"""python -m server: the lottery server (configuration: server/config.ini + environment)."""

import logging
import sys

from common.logs import event, setup_logging
from server.acceptor import Acceptor
from server.config import ConfigError, load_config
from server.keys import KeysError, load_keys
from server.tls.process import TerminatorStartError
from storage import LotteryMismatch, MigrationError, RecoveryError, StorageError


def main() -> int:
    """Load the configuration, then serve; exit 2 on bad configuration, 1 on storage failure."""
    try:
        config = load_config()
    except ConfigError as exc:
        setup_logging("INFO")
        logging.error(event("config", "fail", error=exc))
        return 2
    setup_logging(config.logging_level)
    for key in config.unknown_keys:
        logging.warning(event("config", "success", warning=f"unknown key {key} ignored"))
    logging.info(event("config", "success", **config.describe()))
    if config.agencies == 0:
        logging.warning(
            event(
                "config",
                "success",
                warning="AGENCIES is 0: no agency is configured, so no draw can happen and "
                "every bet is refused",
            )
        )
    keys = None
    if config.agency_keys:
        try:
            keys = load_keys(config.agency_keys)
        except KeysError as exc:
            logging.error(event("config", "fail", error=exc))
            return 2
        logging.info(event("auth_mode", "success", mode="keys", agencies=len(keys)))
    else:
        logging.warning(
            event(
                "auth_mode",
                "success",
                mode="open",
                warning="AGENCY_KEYS is not set: any client may speak for any agency",
            )
        )
    try:
        return Acceptor(config, keys).run()
    except LotteryMismatch as exc:  # a configuration that does not fit the stored lottery
        logging.error(event("lottery", "fail", error=exc))
        return 2
    except TerminatorStartError as exc:  # the certificate or key, or the TLS port
        logging.error(event("config" if exc.config else "server", "fail", error=exc))
        return 2 if exc.config else 1
    except (MigrationError, RecoveryError, StorageError, OSError) as exc:
        logging.error(event("server", "fail", error=exc))
        return 1


if __name__ == "__main__":
    sys.exit(main())
