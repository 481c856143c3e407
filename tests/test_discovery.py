"""Home Assistant MQTT discovery payloads, checked against HA's own schemas and code paths.

The key sets below are copied from home-assistant/core, `homeassistant/components/mqtt/`;
HA's discovery schemas drop unknown keys silently (`extra=vol.REMOVE_EXTRA`), so a
misspelt key would not fail there: it fails here. The templates are rendered with
jinja2's `ImmutableSandboxedEnvironment`, the sandbox HA's `TemplateEnvironment`
extends, and their output goes through the steps of HA's `event.py` / `entity.py`.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment

from edge_runtime.mesh.discovery import (
    MAX_STATE_CHARS,
    NOT_RECOGNIZED,
    DiscoveryConfig,
    NodeDevice,
    discovery_messages,
    removal_messages,
    safe_id,
)
from edge_runtime.mesh.topics import NodeTopics
from edge_runtime.messages import Intent, Recognition, SlotValue, TextRequest, dumps

# discovery.py: TOPIC_MATCHER, matched against the topic less `<discovery_prefix>/`;
# HA subscribes to `<prefix>/+/+/config` and `<prefix>/+/+/+/config`.
HA_TOPIC_MATCHER = re.compile(
    r"(?P<component>\w+)/(?:(?P<node_id>[a-zA-Z0-9_-]+)/)?(?P<object_id>[a-zA-Z0-9_-]+)/config"
)

# config.py: MQTT_BASE_SCHEMA and MQTT_RO_SCHEMA (state_topic required).
RO_KEYS = {"qos", "encoding", "group", "state_topic", "value_template"}
# schemas.py: MQTT_AVAILABILITY_SCHEMA + MQTT_ENTITY_COMMON_SCHEMA (`object_id` was
# renamed `default_entity_id` in 2025.10; we send neither).
COMMON_KEYS = {
    "availability",
    "availability_mode",
    "availability_template",
    "availability_topic",
    "payload_available",
    "payload_not_available",
    "device",
    "origin",
    "enabled_by_default",
    "entity_category",
    "icon",
    "json_attributes_topic",
    "json_attributes_template",
    "object_id",
    "default_entity_id",
    "unique_id",
}
# event.py: _PLATFORM_SCHEMA_BASE (event_types required).
EVENT_KEYS = RO_KEYS | COMMON_KEYS | {"device_class", "name", "event_types"}
# sensor.py: _PLATFORM_SCHEMA_BASE.
SENSOR_KEYS = (
    RO_KEYS
    | COMMON_KEYS
    | {
        "device_class",
        "expire_after",
        "force_update",
        "last_reset_value_template",
        "name",
        "options",
        "suggested_display_precision",
        "state_class",
        "unit_of_measurement",
    }
)
# Required by the schemas, plus unique_id and device: HA only registers a device
# for an entity with a unique_id (docs: integrations/mqtt, "device").
EVENT_REQUIRED = {"state_topic", "event_types", "unique_id", "device"}
SENSOR_REQUIRED = {"state_topic", "unique_id", "device"}
# schemas.py: MQTT_ENTITY_DEVICE_INFO_SCHEMA (needs identifiers or connections).
DEVICE_KEYS = {
    "identifiers",
    "connections",
    "manufacturer",
    "model",
    "model_id",
    "name",
    "hw_version",
    "serial_number",
    "sw_version",
    "via_device",
    "suggested_area",
    "configuration_url",
}
# schemas.py: MQTT_ORIGIN_INFO_SCHEMA (name required).
ORIGIN_KEYS = {"name", "sw_version", "support_url"}
# schemas.py: MQTT_AVAILABILITY_LIST_SCHEMA, one item (topic required).
AVAILABILITY_ITEM_KEYS = {"topic", "payload_available", "payload_not_available", "value_template"}
# abbreviations.py: the short forms of the keys we use; we send the full ones.
ABBREVIATED = {"avty", "dev", "uniq_id", "stat_t", "val_tpl", "json_attr_t", "json_attr_tpl"}
ABBREVIATED |= {"ic", "pl_avail", "pl_not_avail", "t", "o", "ids", "mf", "mdl", "sw"}
# entity.py: MQTT_ATTRIBUTES_BLOCKED, attributes HA drops from json_attributes.
ATTRIBUTES_BLOCKED = {"device_class", "icon", "friendly_name", "state", "unique_id", "name"}

INTENTS = ["HassTurnOn", "HassTurnOff", "HassLightSet"]


def node_device(node_id: str = "kitchen-pi") -> NodeDevice:
    topics = NodeTopics("edge", node_id)
    return NodeDevice(node_id, "raspberry-pi-4", "0.1.0", topics.status, topics.intent)


def configs(device: NodeDevice, prefix: str = "homeassistant") -> dict[str, dict[str, Any]]:
    """Component (`event`, `sensor`) to its decoded config payload."""
    found = {}
    for topic, payload in discovery_messages(device, INTENTS, prefix):
        match = HA_TOPIC_MATCHER.fullmatch(topic.removeprefix(f"{prefix}/"))
        assert match, topic
        found[match["component"]] = json.loads(payload)
    return found


def intent_event(
    node_id: str = "kitchen-pi", *, understood: bool = True, text: str = "turn on the kitchen light"
) -> str:
    """An intent event as the daemon publishes it, decoded as HA's MQTT client does."""
    request = TextRequest(text, "ab12")
    intent = Intent(
        "HassTurnOn", {"name": SlotValue("Kitchen Light", "kitchen light")}, 0.97, "rules", node_id
    )
    recognition = Recognition(request, intent if understood else None, 2.1, node_id)
    return dumps(recognition.to_event()).decode()


def render(template: str, payload: str) -> str:
    """HA's `Template.async_render_with_possible_json_value`: value, value_json, strip."""
    env = ImmutableSandboxedEnvironment()
    rendered = env.from_string(template).render(value=payload, value_json=json.loads(payload))
    return rendered.strip()


def fire_event(config: dict[str, Any], payload: str) -> tuple[str, dict[str, Any]]:
    """event.py `_event_received` then `EventEntity._trigger_event`: (type, attributes)."""
    attributes = json.loads(render(config["value_template"], payload))
    assert isinstance(attributes, dict)
    event_type = str(attributes.pop("event_type"))
    assert event_type in config["event_types"], event_type
    return event_type, attributes


def test_discovery_topics_match_home_assistants_topic_matcher() -> None:
    topics = [topic for topic, _ in discovery_messages(node_device(), INTENTS)]
    assert topics == [
        "homeassistant/event/kitchen-pi/intent/config",
        "homeassistant/sensor/kitchen-pi/last_command/config",
    ]
    assert all(topic.count("/") == 4 for topic in topics)


def test_a_custom_prefix_is_used_for_every_topic() -> None:
    assert set(configs(node_device(), prefix="ha/discovery")) == {"event", "sensor"}
    for topic, _ in removal_messages(node_device(), prefix="ha/discovery"):
        assert topic.startswith("ha/discovery/")


def test_payloads_use_only_keys_home_assistant_accepts() -> None:
    found = configs(node_device())
    for config, allowed, required in [
        (found["event"], EVENT_KEYS, EVENT_REQUIRED),
        (found["sensor"], SENSOR_KEYS, SENSOR_REQUIRED),
    ]:
        assert set(config) <= allowed, set(config) - allowed
        assert required <= set(config), required - set(config)
        assert not set(config) & ABBREVIATED
        assert set(config["device"]) <= DEVICE_KEYS
        assert not set(config["device"]) & ABBREVIATED
        assert config["device"]["identifiers"]
        assert set(config["origin"]) <= ORIGIN_KEYS and config["origin"]["name"]
        for item in config["availability"]:
            assert set(item) <= AVAILABILITY_ITEM_KEYS and "topic" in item
        assert config["qos"] in (0, 1, 2)


def test_device_names_the_node_profile_and_version() -> None:
    device = configs(node_device())["event"]["device"]
    assert device["name"] == "kitchen-pi"
    assert device["model"] == "raspberry-pi-4"
    assert device["sw_version"] == "0.1.0"
    assert device["manufacturer"]


def test_both_entities_belong_to_one_device_and_read_the_intent_topic() -> None:
    found = configs(node_device())
    assert found["event"]["device"] == found["sensor"]["device"]
    assert found["event"]["state_topic"] == "edge/kitchen-pi/intent"
    assert found["sensor"]["state_topic"] == "edge/kitchen-pi/intent"
    assert found["sensor"]["json_attributes_topic"] == "edge/kitchen-pi/intent"


def test_availability_follows_the_status_topic_and_its_last_will() -> None:
    for config in configs(node_device()).values():
        assert "availability_topic" not in config  # exclusive with `availability`
        assert config["availability"] == [
            {
                "topic": "edge/kitchen-pi/status",
                "payload_available": "online",
                "payload_not_available": "offline",
            }
        ]


def test_unique_ids_are_distinct_per_entity_and_node_and_stable() -> None:
    first = [c["unique_id"] for c in configs(node_device()).values()]
    again = [c["unique_id"] for c in configs(node_device()).values()]
    other = [c["unique_id"] for c in configs(node_device("hall-pi")).values()]
    assert first == again
    assert len(set(first + other)) == 4
    assert all(re.fullmatch(r"[a-zA-Z0-9_-]+", uid) for uid in first + other)


def test_event_types_list_every_intent_and_not_recognized() -> None:
    config = configs(node_device())["event"]
    assert config["event_types"] == [*INTENTS, NOT_RECOGNIZED]
    twice = json.loads(discovery_messages(node_device(), ["HassTurnOn", "HassTurnOn"])[0][1])
    assert twice["event_types"] == ["HassTurnOn", NOT_RECOGNIZED]


def test_a_recognized_intent_fires_its_name_with_the_event_as_attributes() -> None:
    payload = intent_event()
    event_type, attributes = fire_event(configs(node_device())["event"], payload)
    assert event_type == "HassTurnOn"
    assert attributes == json.loads(payload)


def test_a_not_recognized_event_fires_not_recognized() -> None:
    payload = intent_event(understood=False)
    assert json.loads(payload)["intent"] is None
    event_type, attributes = fire_event(configs(node_device())["event"], payload)
    assert event_type == NOT_RECOGNIZED
    assert attributes["text"] == "turn on the kitchen light"
    assert attributes["slots"] == {}


def test_quotes_markup_and_non_ascii_text_survive_both_templates() -> None:
    text = 'allume l\'entrée <"salon"> & co'
    payload = intent_event(text=text)
    found = configs(node_device())
    _, attributes = fire_event(found["event"], payload)
    assert attributes["text"] == text
    assert render(found["sensor"]["value_template"], payload) == text


def test_the_sensor_shows_the_text_with_intent_tier_confidence_node_as_attributes() -> None:
    config = configs(node_device())["sensor"]
    payload = intent_event()
    assert render(config["value_template"], payload) == "turn on the kitchen light"
    attributes = json.loads(render(config["json_attributes_template"], payload))
    assert attributes == {
        "intent": "HassTurnOn",
        "slots": {"name": "Kitchen Light"},
        "tier": "rules",
        "confidence": 0.97,
        "node": "kitchen-pi",
    }
    assert not set(attributes) & ATTRIBUTES_BLOCKED


def test_the_sensor_state_stays_within_home_assistants_length_limit() -> None:
    config = configs(node_device())["sensor"]
    payload = json.dumps({"text": "x" * 1000, "intent": None})
    assert len(render(config["value_template"], payload)) == MAX_STATE_CHARS


def test_unsafe_node_ids_are_sanitised_deterministically_and_kept_apart() -> None:
    dotted, underscored = node_device("kitchen.pi"), node_device("kitchen_pi")
    dotted_configs = configs(dotted)  # asserts HA's topic matcher accepts the topics
    assert safe_id("kitchen.pi") == safe_id("kitchen.pi")
    assert re.fullmatch(r"[a-zA-Z0-9_-]+", safe_id("küche pi/2+#"))
    assert safe_id("kitchen-pi") == "kitchen-pi"
    dotted_ids = {c["unique_id"] for c in dotted_configs.values()}
    underscored_ids = {c["unique_id"] for c in configs(underscored).values()}
    assert not dotted_ids & underscored_ids
    assert dotted_configs["event"]["device"]["name"] == "kitchen.pi"
    assert dotted_configs["event"]["state_topic"] == "edge/kitchen.pi/intent"


def test_removal_empties_the_same_topics_discovery_filled() -> None:
    device = node_device("kitchen.pi")
    removal = removal_messages(device)
    assert [t for t, _ in removal] == [t for t, _ in discovery_messages(device, INTENTS)]
    assert all(payload == b"" for _, payload in removal)


def test_payloads_are_compact_json() -> None:
    for _, payload in discovery_messages(node_device(), INTENTS):
        compact = json.dumps(json.loads(payload), ensure_ascii=False, separators=(",", ":"))
        assert payload == compact.encode()


@pytest.mark.parametrize("bad", ["", "home/+", "#"])
def test_a_bad_prefix_or_node_id_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        discovery_messages(node_device(), INTENTS, prefix=bad)
    with pytest.raises(ValueError):
        safe_id("")


def test_discovery_config_defaults_to_enabled_under_homeassistant() -> None:
    assert DiscoveryConfig() == DiscoveryConfig(enabled=True, prefix="homeassistant")
