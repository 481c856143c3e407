"""`load_config`: defaults, paths relative to the file, secrets, and errors that name the line."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from edge_runtime.config import NodeConfig, default_node_id, load_config
from edge_runtime.runtime import load_runtime
from edge_runtime.yamlload import ConfigError

NODE_ID_RULE = "must be 1-63 characters of a-z, 0-9, '-' or '_' (it becomes an MQTT topic level)"
PREFIX_RULE = "must be a plain topic prefix without '+', '#', '$' or a leading '/'"
VALID_NODE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def write(directory: Path, text: str, name: str = "node.yaml") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.path == str(path)
    return caught.value.problems


# --- defaults ---------------------------------------------------------------------------------


def test_no_config_file_gives_local_broker_and_hermes_on() -> None:
    config = load_config(None)

    assert config.broker.host == "localhost"
    assert config.broker.port == 1883
    assert config.broker.tls is None
    assert config.broker.password() is None
    assert config.hermes.enabled is True
    assert config.hermes.site_ids == ()
    assert config.home is None
    assert config.profile == "auto"
    assert config.language == "en"
    assert config.topic_prefix == "edge"
    assert config.nlu.threshold == 0.9
    assert config.log_level == "INFO"


def test_default_node_id_is_a_valid_topic_level_from_this_hostname() -> None:
    config = load_config(None)

    assert config.node_id == default_node_id()
    assert VALID_NODE_ID.match(config.node_id)
    assert config.client_id == f"edge-runtime-{config.node_id}"


def test_default_node_id_slugs_the_hostname(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: "Kitchen Pi.local")

    assert load_config(None).node_id == "kitchen-pi-local"


def test_default_node_id_of_a_hostname_without_usable_characters_is_node(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: "__..__")

    assert default_node_id() == "node"


def test_default_node_id_of_a_long_hostname_is_cut_to_63_characters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: "-Edge_" + "x" * 100)

    node_id = default_node_id()

    assert node_id == "edge_" + "x" * 58
    assert VALID_NODE_ID.match(node_id)


def test_empty_config_file_gives_the_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "# all defaults\n"))

    assert config == NodeConfig(node_id=config.node_id)


def test_client_id_can_be_set_explicitly(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "node_id: hall\nbroker:\n  client_id: hall-panel\n"))

    assert config.client_id == "hall-panel"


# --- paths relative to the config file ----------------------------------------------------------


def test_relative_home_and_password_file_resolve_next_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config_dir = tmp_path / "etc" / "edge"
    text = """\
node_id: hall
home: homes/flat.yaml
broker:
  password_file: secrets/mqtt.txt
  tls:
    ca_file: certs/ca.pem
    cert_file: /srv/pki/client.pem
"""
    path = write(config_dir, text)

    config = load_config(path)

    base = config_dir.resolve()
    assert config.home == base / "homes" / "flat.yaml"
    assert config.broker.password_file == base / "secrets" / "mqtt.txt"
    assert config.broker.tls is not None
    assert config.broker.tls.ca_file == base / "certs" / "ca.pem"
    assert config.broker.tls.cert_file == Path("/srv/pki/client.pem")
    assert config.broker.tls.key_file is None


def test_config_given_by_relative_path_still_resolves_paths_next_to_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "conf", "home: my-home.yaml\n")
    monkeypatch.chdir(tmp_path)

    config = load_config(Path("conf/node.yaml"))

    assert config.home == tmp_path.resolve() / "conf" / "my-home.yaml"
    assert config.home.is_absolute()


def test_absolute_home_path_is_kept_as_written(tmp_path: Path) -> None:
    home = tmp_path / "homes" / "abs.yaml"

    config = load_config(write(tmp_path / "conf", f"home: {home}\n"))

    assert config.home == home


# --- secrets ------------------------------------------------------------------------------------


def test_password_is_read_from_the_password_file_without_trailing_newline(tmp_path: Path) -> None:
    write(tmp_path, "correct horse battery\n", name="mqtt-password")
    config = load_config(
        write(tmp_path, "broker:\n  username: edge\n  password_file: mqtt-password\n")
    )

    assert config.broker.username == "edge"
    assert config.broker.password() == "correct horse battery"


def test_password_is_read_from_the_named_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGE_TEST_MQTT_PASSWORD", "s3cret-from-env")
    config = load_config(write(tmp_path, "broker:\n  password_env: EDGE_TEST_MQTT_PASSWORD\n"))

    assert config.broker.password() == "s3cret-from-env"


def test_password_from_an_unset_environment_variable_is_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EDGE_TEST_UNSET_PASSWORD", raising=False)
    config = load_config(write(tmp_path, "broker:\n  password_env: EDGE_TEST_UNSET_PASSWORD\n"))

    assert config.broker.password() is None


# --- node id and topic prefix -----------------------------------------------------------------


@pytest.mark.parametrize(
    "node_id",
    ["Kitchen Node", "kitchen/node", "kitchen+node", "-kitchen", "x" * 64, "küche"],
)
def test_node_id_that_is_not_a_plain_topic_level_is_rejected(tmp_path: Path, node_id: str) -> None:
    path = write(tmp_path, f"language: en\nnode_id: '{node_id}'\n")

    assert problems_of(path) == [f"{path}:2: node_id: {NODE_ID_RULE}"]


@pytest.mark.parametrize("node_id", ["kitchen", "kitchen-2", "pi_4", "0", "a" * 63])
def test_node_id_of_lowercase_letters_digits_dash_and_underscore_is_accepted(
    tmp_path: Path, node_id: str
) -> None:
    assert load_config(write(tmp_path, f"node_id: '{node_id}'\n")).node_id == node_id


@pytest.mark.parametrize("prefix", ["edge/#", "edge/+/x", "$SYS", "/edge", ""])
def test_topic_prefix_with_wildcards_or_a_leading_slash_is_rejected(
    tmp_path: Path, prefix: str
) -> None:
    path = write(tmp_path, f"node_id: hall\ntopic_prefix: '{prefix}'\n")

    assert problems_of(path) == [f"{path}:2: topic_prefix: {PREFIX_RULE}"]


def test_topic_prefix_loses_its_trailing_slash(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "topic_prefix: home/voice/\n"))

    assert config.topic_prefix == "home/voice"


# --- other errors -----------------------------------------------------------------------------


def test_unknown_field_names_file_line_and_dotted_field(tmp_path: Path) -> None:
    path = write(tmp_path, "node_id: hall\nbroker:\n  host: mqtt.lan\n  hots: typo\n")

    assert problems_of(path) == [f"{path}:4: broker.hots: unknown field"]


def test_unknown_top_level_field_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "node_id: hall\nlanguge: de\n")

    assert problems_of(path) == [f"{path}:2: languge: unknown field"]


@pytest.mark.parametrize(
    ("port", "message"),
    [
        ("70000", "Input should be less than or equal to 65535"),
        ("0", "Input should be greater than or equal to 1"),
        ("mqtt", "Input should be a valid integer, unable to parse string as an integer"),
    ],
)
def test_broker_port_out_of_range_is_rejected(tmp_path: Path, port: str, message: str) -> None:
    path = write(tmp_path, f"broker:\n  host: mqtt.lan\n  port: {port}\n")

    assert problems_of(path) == [f"{path}:3: broker.port: {message}"]


def test_broker_port_at_the_range_ends_is_accepted(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "broker: {port: 1}\n")).broker.port == 1
    assert load_config(write(tmp_path, "broker: {port: 65535}\n")).broker.port == 65535


def test_log_level_must_be_one_of_the_named_levels(tmp_path: Path) -> None:
    path = write(tmp_path, "log_level: verbose\n")

    assert problems_of(path) == [
        f"{path}:1: log_level: Input should be 'DEBUG', 'INFO', 'WARNING' or 'ERROR'"
    ]


def test_missing_config_file_is_reported_as_not_found(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"

    assert problems_of(path) == [f"{path}: file not found"]


def test_password_from_both_a_file_and_an_environment_variable_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "broker:\n  password_file: p.txt\n  password_env: EDGE_PW\n")

    assert problems_of(path) == [f"{path}:1: broker: set password_file or password_env, not both"]


def test_nlu_tiers_cut_the_profiles_tiers_down_and_name_real_tiers(tmp_path: Path) -> None:
    path = write(tmp_path, "profile: x86-64\nnlu:\n  tiers: [encoder, rules]\n")

    assert load_runtime(path).tier_names() == ["rules", "encoder"]
    assert load_runtime(write(tmp_path, "profile: x86-64\n")).tier_names() == [
        "rules",
        "encoder",
        "generator",
    ]
    wrong = problems_of(write(tmp_path, "nlu:\n  tiers: [rules, llm]\n"))
    tiers = "'rules', 'encoder' or 'generator'"
    assert wrong == [f"{tmp_path / 'node.yaml'}:2: nlu.tiers[1]: Input should be {tiers}"]
    assert problems_of(write(tmp_path, "nlu:\n  tiers: []\n"))
