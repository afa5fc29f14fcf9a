"""The client's settings: YAML file, environment overrides, validation."""

from pathlib import Path

import pytest

from client.config import CONFIG_PATH, ConfigError, load_config, tls_context


def env(**values):
    return {"CLI_CONFIG": str(CONFIG_PATH), **values}


def test_the_shipped_file_plus_an_id_gives_the_documented_defaults():
    config = load_config(env(CLI_ID="3"))
    assert config.agency == 3
    assert config.server == ("server", 12345)
    assert config.batch_max_amount == 128
    assert config.data_path == Path("/data/agency.csv")
    assert config.rejects_path == Path("/data/agency.csv.rejected.csv")
    assert config.retry_max_seconds == 30


def test_yaml_values_and_environment_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("id: 2\nserver:\n  address: 10.0.0.1:99\nbatch:\n  maxAmount: 7\n")
    config = load_config(
        {"CLI_CONFIG": str(path), "CLI_BATCH_MAXAMOUNT": "9", "CLI_REJECTS_PATH": "/r.csv"}
    )
    assert (config.agency, config.server, config.batch_max_amount) == (2, ("10.0.0.1", 99), 9)
    assert config.rejects_path == Path("/r.csv")


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({}, "id (CLI_ID): missing"),
        ({"CLI_ID": "0"}, "id (CLI_ID)"),
        ({"CLI_ID": "1", "CLI_SERVER_ADDRESS": "nohost"}, "server.address (CLI_SERVER_ADDRESS)"),
        ({"CLI_ID": "1", "CLI_SERVER_ADDRESS": "h:0"}, "server.address"),
        ({"CLI_ID": "1", "CLI_BATCH_MAXAMOUNT": "lots"}, "batch.maxAmount (CLI_BATCH_MAXAMOUNT)"),
        ({"CLI_ID": "1", "CLI_LOG_LEVEL": "LOUD"}, "log.level (CLI_LOG_LEVEL)"),
        ({"CLI_ID": "1", "CLI_RETRY_MAXSECONDS": "-2"}, "retry.maxSeconds"),
    ],
)
def test_a_bad_or_missing_value_names_the_key(values, key):
    with pytest.raises(ConfigError, match=key.replace("(", r"\(").replace(")", r"\)")):
        load_config(env(**values))


def test_an_unreadable_or_invalid_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config({"CLI_CONFIG": str(tmp_path / "none.yaml"), "CLI_ID": "1"})
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: [1\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config({"CLI_CONFIG": str(bad)})


COURSE_YAML = """server:
  address: "server:12345"
loop:
  amount: 5
  period: "5s"
log:
  level: "DEBUG"
batch:
  maxAmount: 77
"""


def test_the_courses_config_file_is_accepted_with_the_id_from_the_environment(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(COURSE_YAML)
    config = load_config({"CLI_CONFIG": str(path), "CLI_ID": "4"})
    assert (config.agency, config.server, config.log_level) == (4, ("server", 12345), "DEBUG")
    assert (config.batch_max_amount, config.loop_period) == (77, 5.0)
    assert config.unknown_keys == ()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("150ms", 0.15), ("5s", 5.0), ("1m30s", 90.0), ("0", 0.0), ("0.25", 0.25), ("2h", 7200)],
)
def test_loop_period_takes_go_style_durations(text, seconds):
    config = load_config(env(CLI_ID="1", CLI_LOOP_PERIOD=text))
    assert config.loop_period == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["5 s", "fast", "-1s", "1x"])
def test_a_bad_duration_names_the_key(text):
    with pytest.raises(ConfigError, match=r"loop.period \(CLI_LOOP_PERIOD\)"):
        load_config(env(CLI_ID="1", CLI_LOOP_PERIOD=text))


def test_an_unknown_key_is_kept_for_a_warning(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("id: 1\nserver:\n  adress: x:1\n")
    assert load_config({"CLI_CONFIG": str(path)}).unknown_keys == ("server.adress",)


def test_tls_is_off_without_a_ca_and_checks_the_hosts_name_unless_told_otherwise(tmp_path):
    assert load_config(env(CLI_ID="1")).tls_ca is None
    path = tmp_path / "c.yaml"
    path.write_text(
        "id: 2\nserver:\n  address: lottery.example:12345\ntls:\n  caPath: /tls/ca.pem\n"
    )
    config = load_config({"CLI_CONFIG": str(path)})
    assert (config.tls_ca, config.server_name) == (Path("/tls/ca.pem"), "lottery.example")
    config = load_config({"CLI_CONFIG": str(path), "CLI_TLS_SERVER_NAME": "server"})
    assert config.server_name == "server"


def test_a_ca_file_that_is_not_a_certificate_is_refused(tmp_path):
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate\n")
    with pytest.raises(ValueError, match="cannot load a CA certificate from"):
        tls_context(bogus)
    with pytest.raises(ValueError, match="cannot load a CA certificate from"):
        tls_context(tmp_path / "missing.pem")
