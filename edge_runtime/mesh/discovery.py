"""Home Assistant MQTT discovery: each node appears in Home Assistant as a device.

The device has two entities, both fed by the node's own `edge/<node>/intent` events
(nothing is published twice) and both unavailable while the node's retained
`edge/<node>/status` says `offline` (its Last Will):

- an `event` entity that fires once per request, with the intent name as event type
  (`not_recognized` when nothing was understood) and the event's fields as attributes;
- a `sensor` holding the text of the last command, with intent, slots, tier,
  confidence and node as attributes.

The payloads follow Home Assistant's own schemas (`homeassistant/components/mqtt/`
`event.py`, `sensor.py`, `schemas.py`, `discovery.py`), with full, unabbreviated keys.
This module only builds (topic, payload) pairs; publishing them, retained at QoS 1,
is the caller's job, and it never imports `nlu`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from edge_runtime.mesh.topics import STATUS_OFFLINE, STATUS_ONLINE
from edge_runtime.messages import dumps

NOT_RECOGNIZED = "not_recognized"
"""The event type fired when an intent event has `"intent": null`."""

ORIGIN_NAME = "edge-runtime"

EVENT_OBJECT_ID = "intent"
SENSOR_OBJECT_ID = "last_command"
ENTITIES = (("event", EVENT_OBJECT_ID), ("sensor", SENSOR_OBJECT_ID))
"""(component, object id) of every entity a node announces."""

MAX_STATE_CHARS = 255
"""Home Assistant refuses longer states (`MAX_LENGTH_STATE_STATE` in `homeassistant/const.py`)."""

# HA's event platform pops `event_type` from the JSON the template renders and keeps
# the rest as the event's attributes; our events carry no `event_type`, so add one.
# `dict(mapping, key=...)` builds a new dict: HA's sandbox forbids mutating one.
EVENT_VALUE_TEMPLATE = (
    "{{ dict(value_json, event_type=(value_json.intent or '" + NOT_RECOGNIZED + "')) | tojson }}"
)
SENSOR_VALUE_TEMPLATE = "{{ (value_json.text or '')[:" + str(MAX_STATE_CHARS) + "] }}"
SENSOR_ATTRIBUTES_TEMPLATE = (
    "{{ {'intent': value_json.intent, 'slots': value_json.slots, 'tier': value_json.tier,"
    " 'confidence': value_json.confidence, 'node': value_json.node} | tojson }}"
)

_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")


@dataclass(frozen=True)
class DiscoveryConfig:
    """Whether and where to announce the node to Home Assistant."""

    enabled: bool = True
    prefix: str = "homeassistant"
    """Home Assistant's discovery prefix (its MQTT setting `discovery_prefix`)."""


@dataclass(frozen=True)
class NodeDevice:
    """What Home Assistant is told about one node."""

    node_id: str
    profile: str
    """The device profile, shown as the device's model."""
    version: str
    """The edge-runtime version, shown as the device's software version."""
    status_topic: str
    """Retained `online`/`offline`, the availability of both entities."""
    intent_topic: str
    """The intent events both entities read."""


def discovery_messages(
    device: NodeDevice, intent_names: Sequence[str], prefix: str = "homeassistant"
) -> list[tuple[str, bytes]]:
    """(topic, payload) pairs to publish retained, QoS 1."""
    configs = {
        EVENT_OBJECT_ID: event_config(device, intent_names),
        SENSOR_OBJECT_ID: sensor_config(device),
    }
    return [
        (config_topic(prefix, component, device.node_id, object_id), dumps(configs[object_id]))
        for component, object_id in ENTITIES
    ]


def removal_messages(device: NodeDevice, prefix: str = "homeassistant") -> list[tuple[str, bytes]]:
    """Empty retained payloads that remove the entities again (HA deletes on an empty config)."""
    return [
        (config_topic(prefix, component, device.node_id, object_id), b"")
        for component, object_id in ENTITIES
    ]


def config_topic(prefix: str, component: str, node_id: str, object_id: str) -> str:
    """`<prefix>/<component>/<node_id>/<object_id>/config`, the levels made safe for HA."""
    if not prefix or "+" in prefix or "#" in prefix:
        raise ValueError(f"discovery prefix {prefix!r} is not a valid MQTT topic prefix")
    return f"{prefix}/{component}/{safe_id(node_id)}/{object_id}/config"


def safe_id(node_id: str) -> str:
    """The node id reduced to `[a-zA-Z0-9_-]`, which HA demands of topic levels.

    A changed id gets a short hash of the original, so `kitchen.pi` and `kitchen_pi`
    stay two devices; an id that is already safe is kept as it is.
    """
    if not node_id:
        raise ValueError("a node id must not be empty")
    safe = _UNSAFE.sub("_", node_id)
    if safe == node_id:
        return safe
    return f"{safe}_{hashlib.sha256(node_id.encode()).hexdigest()[:8]}"


def event_config(device: NodeDevice, intent_names: Sequence[str]) -> dict[str, Any]:
    """The `event` entity: one event per request, typed by the intent it recognized."""
    return {
        "name": "Intent",
        "unique_id": _unique_id(device, EVENT_OBJECT_ID),
        "state_topic": device.intent_topic,
        "value_template": EVENT_VALUE_TEMPLATE,
        "event_types": event_types(intent_names),
        "icon": "mdi:account-voice",
        **_common(device),
    }


def sensor_config(device: NodeDevice) -> dict[str, Any]:
    """The `sensor` entity: the text of the last command, what it meant as attributes."""
    return {
        "name": "Last command",
        "unique_id": _unique_id(device, SENSOR_OBJECT_ID),
        "state_topic": device.intent_topic,
        "value_template": SENSOR_VALUE_TEMPLATE,
        "json_attributes_topic": device.intent_topic,
        "json_attributes_template": SENSOR_ATTRIBUTES_TEMPLATE,
        "icon": "mdi:message-text",
        **_common(device),
    }


def event_types(intent_names: Sequence[str]) -> list[str]:
    """Every type the event entity may fire; HA drops an event whose type is not listed."""
    for name in intent_names:
        if not name:
            raise ValueError("an intent name must not be empty")
    return list(dict.fromkeys([*intent_names, NOT_RECOGNIZED]))


def _unique_id(device: NodeDevice, object_id: str) -> str:
    return f"edge_runtime_{safe_id(device.node_id)}_{object_id}"


def _common(device: NodeDevice) -> dict[str, Any]:
    """What both entities share: device, origin, availability and QoS."""
    return {
        "device": {
            "identifiers": [f"edge_runtime_{safe_id(device.node_id)}"],
            "name": device.node_id,
            "manufacturer": ORIGIN_NAME,
            "model": device.profile,
            "sw_version": device.version,
        },
        "origin": {"name": ORIGIN_NAME, "sw_version": device.version},
        "availability": [
            {
                "topic": device.status_topic,
                "payload_available": STATUS_ONLINE.decode(),
                "payload_not_available": STATUS_OFFLINE.decode(),
            }
        ],
        # Our intent events are published at QoS 1; subscribe at the same level.
        "qos": 1,
    }
