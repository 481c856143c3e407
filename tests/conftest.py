"""Shared fixtures: a real Mosquitto per test session, real node processes, an MQTT probe.

Nothing here mocks the broker or paho. Each broker runs on a free port with
its own config, so a test can stop and restart it under a running node.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

REPO = Path(__file__).resolve().parent.parent
EVAL_FIXTURES = REPO.parent / "shared" / "eval" / "ha-intents-en" / "_fixtures.yaml"
TIMEOUT_S = 15.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if found is None:
        pytest.fail("mosquitto is not installed: run script/test, which installs it")
    return found


def wait_for_port(port: int, timeout: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), timeout=0.2),
        ):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port}")


@dataclass
class Broker:
    """A real Mosquitto on a free loopback port, which a test may stop and start again."""

    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    persistent: bool = False
    """Keep sessions and queued QoS 1 messages across a restart (saved on a clean stop)."""

    def start(self) -> None:
        config = self.directory / "mosquitto.conf"
        # Mosquitto started as root drops to the `mosquitto` user unless told otherwise, and
        # could then not write its database into the test's directory.
        persistence = (
            f"persistence true\npersistence_location {self.directory}/\nuser {getpass.getuser()}\n"
            if self.persistent
            else "persistence false\n"
        )
        config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
            f"set_tcp_nodelay true\nmax_queued_messages 100000\n{persistence}"
        )
        log = (self.directory / "mosquitto.log").open("ab")
        self.process = subprocess.Popen(
            [mosquitto_binary(), "-c", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=TIMEOUT_S)
            self.process = None


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """One broker for the tests that never stop it."""
    b = Broker(tmp_path_factory.mktemp("broker"))
    b.start()
    yield b
    b.stop()


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Broker]:
    """A broker of this test alone, free to stop and restart."""
    b = Broker(tmp_path / "broker")
    b.directory.mkdir()
    b.start()
    yield b
    b.stop()


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool
    properties: Any = None

    def json(self) -> Any:
        return json.loads(self.payload)


def _nodelay(_client: mqtt.Client, _userdata: Any, sock: Any) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as the nodes do


class Probe:
    """A test's own MQTT client: publishes, and collects what arrives on its subscriptions."""

    def __init__(self, port: int, topics: list[str], *, persistent: bool = False) -> None:
        self.messages: queue.Queue[Received] = queue.Queue()
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"probe-{uuid.uuid4().hex[:8]}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(1, 1)
        self.topics = topics
        self.client.on_connect = lambda c, *_: c.subscribe([(t, 2) for t in self.topics])
        self.client.on_message = lambda _c, _u, m: self.messages.put(
            Received(m.topic, bytes(m.payload), bool(m.retain), m.properties)
        )
        self.client.on_socket_open = _nodelay
        properties = None
        if persistent:  # the broker keeps our subscriptions and queues what we miss
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = 3600
        self.client.connect("127.0.0.1", port, clean_start=not persistent, properties=properties)
        self.client.loop_start()

    def publish(
        self,
        topic: str,
        payload: bytes | str | dict[str, Any],
        *,
        wait: bool = True,
        properties: Properties | None = None,
    ) -> mqtt.MQTTMessageInfo:
        if isinstance(payload, dict):
            payload = json.dumps(payload)
        info = self.client.publish(topic, payload, qos=1, properties=properties)
        if wait:
            info.wait_for_publish(TIMEOUT_S)
        return info

    def drain(self, seconds: float) -> list[Received]:
        """Everything that arrives within `seconds`."""
        found: list[Received] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                found.append(self.messages.get(timeout=left))
            except queue.Empty:
                break
        return found

    def wait_for(
        self,
        topic: str,
        predicate: Callable[[Received], bool] = lambda _m: True,
        timeout: float = TIMEOUT_S,
    ) -> Received:
        """The next message on `topic` that satisfies `predicate`; others are skipped."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = self.messages.get(timeout=left)
            except queue.Empty:
                break
            if mqtt.topic_matches_sub(topic, message.topic) and predicate(message):
                return message
        raise TimeoutError(f"no matching message on {topic} within {timeout} s")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def probe_factory(broker: Broker) -> Iterator[Callable[..., Probe]]:
    probes: list[Probe] = []

    def make(topics: list[str], port: int | None = None, persistent: bool = False) -> Probe:
        probe = Probe(port or broker.port, topics, persistent=persistent)
        probes.append(probe)
        return probe

    yield make
    for probe in probes:
        probe.close()


@dataclass
class Node:
    """A real `edge-runtime run` process."""

    node_id: str
    process: subprocess.Popen[str]
    log_path: Path

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=TIMEOUT_S)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def write_config(path: Path, node_id: str, port: int, **extra: Any) -> Path:
    broker = {"host": "127.0.0.1", "port": port, **extra.pop("broker", {})}
    config = {"node_id": node_id, "broker": broker, **extra}
    path.write_text(yaml.safe_dump(config))
    return path


def launch_node(
    directory: Path, node_id: str, port: int, env: dict[str, str] | None = None, **extra: Any
) -> Node:
    """`edge-runtime run` with a config written from `extra`, its output in `<node_id>.log`."""
    config = write_config(directory / f"{node_id}.yaml", node_id, port, **extra)
    log_path = directory / f"{node_id}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "edge_runtime", "run", "--config", str(config)],
        stdin=subprocess.DEVNULL,
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
        text=True,
        cwd=directory,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    return Node(node_id, process, log_path)


@pytest.fixture
def start_node(tmp_path: Path, broker: Broker) -> Iterator[Callable[..., Node]]:
    """Start `edge-runtime run` with a config of the test's choosing; stopped at teardown."""
    nodes: list[Node] = []

    def start(node_id: str | None = None, port: int | None = None, **extra: Any) -> Node:
        node = launch_node(
            tmp_path, node_id or f"node-{uuid.uuid4().hex[:6]}", port or broker.port, **extra
        )
        nodes.append(node)
        return node

    yield start
    for node in nodes:
        if node.process.poll() is None:
            node.process.kill()
            node.process.wait()
