"""The node config (`node.yaml`): who this node is, which broker, which home, which limits.

Every field has a default, so `edge-runtime run` with no config works against a
local Mosquitto with the embedded demo home. Paths inside the file are relative
to the file. Secrets (the broker password) come from a file or an environment
variable, never from the command line, where `ps` would show them.
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from edge_runtime.mesh.topics import POOL_LEVEL
from edge_runtime.yamlload import ConfigError, StrictModel, load_model

_NODE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def default_node_id() -> str:
    """A node id derived from the host name, valid as one MQTT topic level."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", socket.gethostname().lower()).strip("-_")
    return (slug or "node")[:63]


class TlsConfig(StrictModel):
    ca_file: Path | None = None
    """CA bundle that signed the broker's certificate; system CAs when unset."""
    cert_file: Path | None = None
    """Client certificate, for brokers that authenticate clients by certificate."""
    key_file: Path | None = None
    insecure: bool = False
    """Skip host-name verification (only for a broker addressed by IP on a trusted LAN)."""


class BrokerConfig(StrictModel):
    host: str = "localhost"
    port: int = Field(1883, ge=1, le=65535)
    keepalive_s: int = Field(30, ge=5, le=3600)
    client_id: str | None = None
    """Defaults to `edge-runtime-<node id>`, so the broker sees one stable client per node."""
    username: str | None = None
    password_file: Path | None = None
    password_env: str | None = None
    """Name of the environment variable that holds the password."""
    tls: TlsConfig | None = None
    clean_start: bool = False
    """False keeps the session (subscriptions, queued QoS 1 messages) across reconnects."""
    session_expiry_s: int = Field(3600, ge=0)
    reconnect_min_s: float = Field(0.5, gt=0)
    reconnect_max_s: float = Field(30.0, gt=0)

    @model_validator(mode="after")
    def _one_password_source(self) -> BrokerConfig:
        if self.password_file is not None and self.password_env is not None:
            raise ValueError("set password_file or password_env, not both")
        return self

    def password(self) -> str | None:
        """Read the password from its file or environment variable."""
        if self.password_file is not None:
            return self.password_file.read_text(encoding="utf-8").strip()
        if self.password_env is not None:
            return os.environ.get(self.password_env)
        return None


class HermesConfig(StrictModel):
    enabled: bool = True
    """Answer `hermes/nlu/query` the way Rhasspy/Snips NLU services do."""
    site_ids: tuple[str, ...] = ()
    """Only answer these sites; empty answers every site."""


class LimitsConfig(StrictModel):
    max_payload_bytes: int = Field(65536, ge=64)
    """Larger MQTT payloads are refused with an error event before being parsed."""
    max_text_chars: int = Field(500, ge=1)
    """Longer commands are refused; nobody speaks 500 characters to a light switch."""
    queue_size: int = Field(1000, ge=1)
    """Requests waiting for the worker; beyond it new ones are refused, never dropped silently."""


class NluConfig(StrictModel):
    threshold: float = Field(0.9, ge=0.0, le=1.0)
    """Below this confidence the answer is "not understood": a wrong action is worse than none.

    0.9 because the encoder's probabilities are sharper than its accuracy: on our paraphrase
    set its answers at 0.9 or more were right 97 % of the time, those between 0.5 and 0.9
    about 60 % (benchmarks/nlu.py prints the figures).
    """
    tiers: tuple[Literal["rules", "encoder", "generator"], ...] | None = Field(None, min_length=1)
    """The tiers this node runs, of those its device profile enables; unset: all of them.
    Leave the generator to a peer on a box short of memory (`tiers: [rules, encoder]`)."""


class NetworkConfig(StrictModel):
    """How this node works with its peers (docs/mqtt.md, "The network")."""

    enabled: bool = True
    """Route what this node cannot serve to peers, and serve what peers route here."""
    domains: tuple[str, ...] | None = None
    """Intent domains served here (`light`, `lock`, `timer` ...); all when unset. A request in
    another domain goes to a peer that serves it, or is not recognized."""
    deadline_ms: int = Field(1500, ge=50, le=60_000)
    """How long one peer may take before the request fails over to the next."""
    max_peers_tried: int = Field(3, ge=1)
    pools: tuple[str, ...] = ()
    """Pools this node joins: requests on `<prefix>/pool/<name>/request` are balanced by the
    broker's shared subscription over the pool's members."""
    capabilities_interval_s: float = Field(30.0, ge=1.0)
    """Capabilities are republished at least this often (and when the load changes); a peer
    not heard of for three intervals leaves the table."""
    remembered_ids: int = Field(10_000, ge=100)
    """Request ids remembered, so a retried request is never executed twice."""
    remember_s: float = Field(600.0, ge=1.0)

    @field_validator("pools")
    @classmethod
    def _pools_are_topic_levels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pool in value:
            if not _NODE_ID.match(pool):
                raise ValueError(f"pool {pool!r}: use a-z, 0-9, '-' or '_' (a topic level)")
        return value


class DiscoveryConfig(StrictModel):
    """Home Assistant MQTT discovery: the node appears as a device with its last command."""

    enabled: bool = True
    prefix: str = "homeassistant"


class VoiceConfig(StrictModel):
    """Speech in: the microphone, end-pointing and the speech engine (docs/voice.md).

    The engine itself is the device profile's (`stt.engine`, `stt.model`).
    """

    enabled: bool = True
    """Hear satellites on `<prefix>/<node>/audio/<site>` (and the microphone when set)."""
    microphone: str | int | None = None
    """Input device the daemon listens to (a name or part of one, or an index); unset: only
    satellites' audio over MQTT. `edge-runtime listen --list-devices` shows them."""
    grammar: bool = True
    """Recognize only the commands of the home (closed vocabulary): exact and fast. Off, the
    engine's open vocabulary is used (pocketsphinx: about 72 % word errors)."""
    speech_threshold: float = Field(0.5, gt=0.0, lt=1.0)
    """Silero speech probability above which a frame is speech."""
    silence_ms: int = Field(700, ge=100, le=5000)
    """Silence that ends an utterance."""
    max_utterance_s: float = Field(15.0, ge=1.0, le=120.0)
    """Longer speech is cut here (with a warning) and decoded."""
    max_chunk_bytes: int = Field(262_144, ge=1024)
    """Larger audio payloads from satellites are refused with an error event."""
    queue_seconds: float = Field(120.0, ge=1.0, le=3600.0)
    """Audio waiting for the voice thread, in seconds of speech; beyond it chunks are refused
    with an error event (the voice thread decodes far faster than real time)."""
    stream_timeout_s: float = Field(5.0, ge=0.5, le=600.0)
    """A site that sends no audio this long is finished: what it said is decoded."""
    stt_options: dict[str, float | int | str | bool] = Field(default_factory=dict)
    """Engine settings, e.g. `rejection` for pocketsphinx (docs/voice.md)."""


class ServiceConfig(StrictModel):
    """How the daemon reports to systemd when it runs as a service (docs/service.md)."""

    ready_without_broker_s: float | None = Field(60.0, ge=0.0)
    """Tell systemd the node is ready (and arm its watchdog) this long after start-up even
    when the broker has not answered yet: the node keeps reconnecting and says so in its
    status, so a broker that boots later is no failed start. None: ready only once connected,
    so a start without the broker fails after `TimeoutStartSec` and systemd starts it again."""


class NodeConfig(StrictModel):
    node_id: str = Field(default_factory=default_node_id)
    language: str = "en"
    home: Path | None = None
    """Home file; the embedded demo home when unset."""
    profile: str = "auto"
    """Device profile name, or `auto` to detect it."""
    topic_prefix: str = "edge"
    broker: BrokerConfig = BrokerConfig()
    hermes: HermesConfig = HermesConfig()
    limits: LimitsConfig = LimitsConfig()
    nlu: NluConfig = NluConfig()
    network: NetworkConfig = NetworkConfig()
    discovery: DiscoveryConfig = DiscoveryConfig()
    voice: VoiceConfig = VoiceConfig()
    service: ServiceConfig = ServiceConfig()
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    cache_dir: Path | None = None
    """What tiers prepare once (example banks); `$EDGE_RUNTIME_CACHE` or ~/.cache when unset."""

    @field_validator("node_id")
    @classmethod
    def _node_id_is_a_topic_level(cls, value: str) -> str:
        if not _NODE_ID.match(value):
            raise ValueError(
                "must be 1-63 characters of a-z, 0-9, '-' or '_' (it becomes an MQTT topic level)"
            )
        if value == POOL_LEVEL:
            raise ValueError(f"{POOL_LEVEL!r} is reserved for the topics of node pools")
        return value

    @field_validator("topic_prefix")
    @classmethod
    def _prefix_has_no_wildcards(cls, value: str) -> str:
        if not value or any(c in value for c in "+#$") or value.startswith("/"):
            raise ValueError("must be a plain topic prefix without '+', '#', '$' or a leading '/'")
        return value.rstrip("/")

    @property
    def client_id(self) -> str:
        return self.broker.client_id or f"edge-runtime-{self.node_id}"


def _resolve_paths(config: NodeConfig, base: Path) -> NodeConfig:
    """Make the file's relative paths relative to the file, not to the working directory."""

    def rebase(path: Path | None) -> Path | None:
        return path if path is None or path.is_absolute() else base / path

    broker = config.broker
    tls = broker.tls
    if tls is not None:
        tls = tls.model_copy(
            update={
                "ca_file": rebase(tls.ca_file),
                "cert_file": rebase(tls.cert_file),
                "key_file": rebase(tls.key_file),
            }
        )
    broker = broker.model_copy(update={"tls": tls, "password_file": rebase(broker.password_file)})
    return config.model_copy(
        update={
            "home": rebase(config.home),
            "cache_dir": rebase(config.cache_dir),
            "broker": broker,
        }
    )


def load_config(path: Path | None) -> NodeConfig:
    """The node config from `path`, or all defaults when no file is given."""
    if path is None:
        return NodeConfig()
    config = load_model(path, NodeConfig)
    return _resolve_paths(config, path.resolve().parent)


__all__ = ["ConfigError", "NodeConfig", "load_config"]
