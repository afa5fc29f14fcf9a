"""The server's settings: file, environment overrides, validation."""

import os

import pytest

from server.config import CONFIG_PATH, ConfigError, load_config


def test_the_shipped_file_gives_the_documented_defaults():
    config = load_config(CONFIG_PATH, environ={})
    assert (config.server_port, config.agencies, config.winning_number) == (12345, 5, 7574)
    assert (config.idle_timeout_s, config.winners_wait_s, config.shutdown_grace_s) == (30, 5, 5)
    assert (config.max_connections, config.storage_dir) == (10000, ".data")
    assert config.server_listen_backlog == 2048
    assert config.workers == 2 * (os.cpu_count() or 1) + 1


def test_environment_overrides_the_file_and_seconds_take_decimals():
    config = load_config(CONFIG_PATH, environ={"AGENCIES": "3", "WINNERS_WAIT_S": "0.3"})
    assert (config.agencies, config.winners_wait_s) == (3, 0.3)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"AGENCIES": "-1"}, "AGENCIES: -1 is not in 0.."),
        ({"LOTTERY_ID": "a b"}, "LOTTERY_ID: 'a b' is not up to 64 of"),
        ({"WINNING_NUMBER": "10000"}, "WINNING_NUMBER: 10000 is not in 0..9999"),
        ({"SHUTDOWN_GRACE_S": "nan"}, "SHUTDOWN_GRACE_S: 'nan' must be a positive"),
        ({"STORAGE_DIR": " "}, "STORAGE_DIR: must not be empty"),
        ({"MAX_CONNECTIONS": "many"}, "MAX_CONNECTIONS: 'many' is not an integer"),
    ],
)
def test_a_bad_value_names_the_key_and_the_problem(env, message):
    with pytest.raises(ConfigError, match=message):
        load_config(CONFIG_PATH, environ=env)


def test_an_unknown_key_is_kept_for_a_warning_and_missing_keys_take_their_defaults(tmp_path):
    ini = tmp_path / "config.ini"
    ini.write_text(CONFIG_PATH.read_text() + "SERVER_PROT = 1\n")
    assert load_config(ini, environ={}).unknown_keys == ("SERVER_PROT",)
    ini.write_text("[DEFAULT]\nSERVER_PORT = 1\n")
    config = load_config(ini, environ={})
    assert (config.server_port, config.server_listen_backlog, config.agencies) == (1, 2048, 5)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.ini", environ={})


def test_the_courses_config_file_is_accepted_with_built_in_defaults(tmp_path):
    ini = tmp_path / "config.ini"
    ini.write_text(
        "[DEFAULT]\nSERVER_PORT = 12345\nSERVER_IP = server\nSERVER_LISTEN_BACKLOG = 5\n"
        "LOGGING_LEVEL = DEBUG\n"
    )
    config = load_config(environ={"SERVER_CONFIG": str(ini)})
    assert (config.server_ip, config.server_listen_backlog, config.logging_level) == (
        "server",
        5,
        "DEBUG",
    )
    assert (config.winning_number, config.agencies, config.agency_keys) == (7574, 5, "")
    assert config.unknown_keys == ()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TLS_CERT": "c.pem"}, "TLS_KEY: required with TLS_CERT"),
        ({"TLS_KEY": "k.pem"}, "TLS_CERT: required with TLS_KEY"),
        ({"PLAIN_PORT": "12346"}, "PLAIN_PORT: only with TLS_CERT/TLS_KEY"),
        ({"TLS_CERT": "c", "TLS_KEY": "k", "PLAIN_PORT": "12345"}, "PLAIN_PORT: 12345 is already"),
        ({"TLS_CERT": "c", "TLS_KEY": "k", "PLAIN_PORT": "0"}, "PLAIN_PORT: 0 is not in 1..65535"),
        ({"TLS_MAX_HANDSHAKES": "0"}, "TLS_MAX_HANDSHAKES: 0 is not in 1.."),
    ],
)
def test_the_tls_keys_go_together_and_a_plain_port_only_beside_tls(env, message):
    with pytest.raises(ConfigError, match=message):
        load_config(CONFIG_PATH, environ=env)


def test_tls_is_off_by_default_and_on_with_both_files():
    assert not load_config(CONFIG_PATH, environ={}).tls
    config = load_config(
        CONFIG_PATH, environ={"TLS_CERT": "c.pem", "TLS_KEY": "k.pem", "PLAIN_PORT": "12346"}
    )
    assert config.tls and config.plain_port == 12346
    assert (config.tls_handshake_timeout_s, config.tls_max_handshakes) == (10.0, 256)


def test_a_replica_path_becomes_a_file_url_and_its_sync_mode_is_checked(tmp_path):
    config = load_config(CONFIG_PATH, environ={"REPLICA_URL": "relative/replica"})
    assert config.replica_url.startswith("file:///") and config.replica_url.endswith(
        "/relative/replica"
    )
    assert (config.replica_sync, config.replica_timeout_s) == ("end", 5.0)
    url = load_config(CONFIG_PATH, environ={"REPLICA_URL": "s3://bucket/lottery"}).replica_url
    assert url == "s3://bucket/lottery"
    with pytest.raises(ConfigError, match="REPLICA_SYNC: 'always' is not end or commit"):
        load_config(CONFIG_PATH, environ={"REPLICA_SYNC": "always"})
