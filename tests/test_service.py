"""The daemon under systemd: the sd_notify protocol on a real datagram socket, and journal lines.

The test binds the socket systemd would bind and hands its path to a real node process as
`$NOTIFY_SOCKET`, with a 1 s `$WATCHDOG_USEC`. The node's main loop is blocked for real by
stopping the process (SIGSTOP); nothing in the daemon knows it is being tested.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import TIMEOUT_S, Broker, Node, Probe, free_port, launch_node

from edge_runtime.service import JournalFormatter, Notifier, under_journal

WATCHDOG_USEC = 1_000_000


class NotifySocket:
    """The receiving end of sd_notify, as systemd binds it: AF_UNIX, SOCK_DGRAM."""

    def __init__(self, address: str) -> None:
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(address)

    def messages(self, seconds: float) -> list[dict[str, str]]:
        """Every datagram within `seconds`, as its KEY=value fields."""
        found = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.socket.settimeout(left)
            try:
                found.append(_fields(self.socket.recv(4096)))
            except TimeoutError:
                break
        return found

    def wait_for(self, key: str, timeout: float = TIMEOUT_S) -> tuple[dict[str, str], list[str]]:
        """The first datagram with `key`, and the keys of every datagram before it."""
        before: list[str] = []
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            self.socket.settimeout(left)
            try:
                fields = _fields(self.socket.recv(4096))
            except TimeoutError:
                break
            if key in fields:
                return fields, before
            before += list(fields)
        raise TimeoutError(f"no {key} within {timeout} s (got {before})")

    def close(self) -> None:
        self.socket.close()


def _fields(datagram: bytes) -> dict[str, str]:
    return dict(line.split("=", 1) for line in datagram.decode().splitlines())


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[tuple[NotifySocket, str]]:
    path = str(tmp_path / "notify.sock")
    receiver = NotifySocket(path)
    yield receiver, path
    receiver.close()


def _service_node(directory: Path, port: int, notify_path: str, **extra: object) -> Node:
    """A node as systemd starts it: notify socket, watchdog, and its output as the journal
    stream (the log file is made first, so that its inode is known: `launch_node` truncates
    it in place)."""
    node_id = "svc"
    log_path = directory / f"{node_id}.log"
    log_path.touch()
    stat = log_path.stat()
    env = {
        "NOTIFY_SOCKET": notify_path,
        "WATCHDOG_USEC": str(WATCHDOG_USEC),
        "JOURNAL_STREAM": f"{stat.st_dev}:{stat.st_ino}",
    }
    return launch_node(directory, node_id, port, env=env, **extra)


@pytest.fixture
def nodes() -> Iterator[list[Node]]:
    started: list[Node] = []
    yield started
    for node in started:
        if node.process.poll() is None:
            node.process.send_signal(signal.SIGCONT)
            node.process.kill()
            node.process.wait()


def test_notifier_sends_datagrams_to_a_path_socket(notify: tuple[NotifySocket, str]) -> None:
    receiver, path = notify
    notifier = Notifier.from_environment({"NOTIFY_SOCKET": path})
    notifier.status("loading")
    notifier.ready("serving")
    notifier.ready("serving again")  # READY is sent once
    notifier.stopping("stopping: answering 3 queued requests")
    notifier.close()
    assert receiver.messages(0.5) == [
        {"STATUS": "loading"},
        {"READY": "1", "STATUS": "serving"},
        {"STOPPING": "1", "STATUS": "stopping: answering 3 queued requests"},
    ]


def test_notifier_reaches_a_socket_in_the_abstract_namespace() -> None:
    name = f"edge-runtime-test-{os.getpid()}-{time.monotonic_ns()}"
    receiver = NotifySocket("\0" + name)
    try:
        notifier = Notifier.from_environment({"NOTIFY_SOCKET": "@" + name})
        notifier.watchdog()
        assert receiver.messages(0.5) == [{"WATCHDOG": "1"}]
    finally:
        receiver.close()


def test_notifier_does_nothing_outside_systemd() -> None:
    notifier = Notifier.from_environment({})
    assert not notifier.enabled
    notifier.ready("serving")  # no socket, no error
    notifier.keep_alive()


def test_watchdog_interval_comes_from_watchdog_usec_for_this_process_only() -> None:
    mine = {
        "NOTIFY_SOCKET": "/run/x",
        "WATCHDOG_USEC": "30000000",
        "WATCHDOG_PID": str(os.getpid()),
    }
    assert Notifier.from_environment(mine).watchdog_s == 30.0
    inherited = {**mine, "WATCHDOG_PID": "1"}
    assert Notifier.from_environment(inherited).watchdog_s is None
    assert Notifier.from_environment({"NOTIFY_SOCKET": "/run/x"}).watchdog_s is None


def test_ready_waits_for_the_broker_and_the_watchdog_follows_the_main_loop(
    tmp_path: Path, notify: tuple[NotifySocket, str], nodes: list[Node]
) -> None:
    receiver, path = notify
    broker = Broker(tmp_path / "broker")
    broker.directory.mkdir()
    node = _service_node(tmp_path, broker.port, path)
    nodes.append(node)
    try:
        status, _ = receiver.wait_for("STATUS")
        assert status["STATUS"].startswith("loading")
        connecting, _ = receiver.wait_for("STATUS", timeout=60)
        assert connecting["STATUS"] == f"connecting to broker 127.0.0.1:{broker.port}"
        # No broker: pings come (the loop runs) but no READY, also past BROKER_PATIENCE_S.
        idle = receiver.messages(4.0)
        assert all("READY" not in fields for fields in idle), idle
        assert sum("WATCHDOG" in fields for fields in idle) >= 4  # every 0.5 s to 0.7 s

        broker.start()
        ready, before = receiver.wait_for("READY", timeout=30)  # paho's back-off: up to 8 s
        assert set(before) <= {"WATCHDOG"}
        assert ready["STATUS"] == f"serving: connected to broker 127.0.0.1:{broker.port}"
        _ask(broker, node, "svc-1")

        # A blocked main loop sends no pings; systemd would kill it after WatchdogSec.
        node.process.send_signal(signal.SIGSTOP)
        time.sleep(0.3)
        receiver.messages(0.1)  # a ping sent just before the stop may still be queued
        assert receiver.messages(2.0) == []
        node.process.send_signal(signal.SIGCONT)
        assert any("WATCHDOG" in fields for fields in receiver.messages(2.0))

        node.process.send_signal(signal.SIGTERM)
        stopping, _ = receiver.wait_for("STOPPING")
        assert stopping["STATUS"] == "stopping: answering 0 queued requests"
        assert node.process.wait(timeout=TIMEOUT_S) == 0
    finally:
        broker.stop()
    # The journal stamps the time; each line has a priority, the node, and a request its id.
    lines = node.log().splitlines()
    assert "<6>INFO node=svc edge_runtime.daemon: node svc starting: profile" in "\n".join(lines)
    assert any(line.startswith("<4>WARNING node=svc ") for line in lines)
    request_lines = [line for line in lines if "turn on the kitchen lights" in line]
    assert request_lines
    assert all("id=svc-1" in line for line in request_lines)


def _ask(broker: Broker, node: Node, request_id: str) -> None:
    probe = Probe(broker.port, [f"edge/{node.node_id}/intent"])
    try:
        text = {"text": "turn on the kitchen lights", "id": request_id}
        probe.publish(f"edge/{node.node_id}/text", text)
        probe.wait_for(f"edge/{node.node_id}/intent", lambda m: m.json()["id"] == request_id)
    finally:
        probe.close()


def test_a_node_told_to_may_be_ready_without_its_broker(
    tmp_path: Path, notify: tuple[NotifySocket, str], nodes: list[Node]
) -> None:
    receiver, path = notify
    port = free_port()  # nothing listens here
    node = _service_node(tmp_path, port, path, service={"ready_without_broker_s": 1})
    nodes.append(node)
    ready, _ = receiver.wait_for("READY", timeout=60)
    assert ready["STATUS"] == f"serving offline: broker 127.0.0.1:{port} unreachable, reconnecting"
    node.stop()


def test_journal_lines_carry_priority_and_node_but_no_time_stamp() -> None:
    record = logging.LogRecord(
        "edge_runtime.daemon", logging.WARNING, __file__, 1, "id=%s bad", ("r-1",), None
    )
    line = JournalFormatter("kitchen").format(record)
    assert line == "<4>WARNING node=kitchen edge_runtime.daemon: id=r-1 bad"


def test_the_journal_is_recognised_by_its_stream(tmp_path: Path) -> None:
    with (tmp_path / "stream").open("w") as stream:
        stat = os.fstat(stream.fileno())
        environ = {"JOURNAL_STREAM": f"{stat.st_dev}:{stat.st_ino}"}
        assert under_journal(environ, stream.fileno())
        assert not under_journal({}, stream.fileno())
