"""Running under systemd: the sd_notify protocol and log lines fit for the journal.

systemd starts the node as a `Type=notify` service (systemd/edge-runtime.service,
docs/service.md). It hands the daemon a datagram socket in `$NOTIFY_SOCKET`;
the daemon writes `KEY=value` lines to it: `READY=1` once it serves, `STATUS=`
with what it is doing (shown by `systemctl status`), `WATCHDOG=1` at half of
`$WATCHDOG_USEC` so that a hung main loop is killed and restarted, and
`STOPPING=1` when the stop begins. The protocol is one `sendto` per message,
so it is written here rather than taken from a library.

Outside systemd (no `$NOTIFY_SOCKET`) every method does nothing. A failing
send is logged once and never raised: being unable to tell systemd something
must not stop a node that can still answer.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)

SYSLOG_PRIORITY = {"DEBUG": 7, "INFO": 6, "WARNING": 4, "ERROR": 3, "CRITICAL": 2}
"""journald reads a `<N>` prefix on a line of stderr as its syslog priority (`journalctl -p`)."""


class Notifier:
    """Tells systemd about the daemon's state over `$NOTIFY_SOCKET`; a no-op without one."""

    def __init__(self, address: str | None, watchdog_s: float | None) -> None:
        """`address` as in `$NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace);
        `watchdog_s` the timeout systemd enforces, or None when no watchdog is armed."""
        self.given = address
        self.address = _socket_address(address)
        self.watchdog_s = watchdog_s
        self.is_ready = False
        self._socket: socket.socket | None = None
        self._failed = False
        self._last_ping = time.monotonic()

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Notifier:
        """The notifier systemd asked for: `$NOTIFY_SOCKET`, and the watchdog of
        `$WATCHDOG_USEC` when `$WATCHDOG_PID` is unset or names this process (a child
        that inherited the variables must not ping in its parent's name)."""
        watchdog_s = None
        usec = environ.get("WATCHDOG_USEC", "")
        pid = environ.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            watchdog_s = int(usec) / 1e6
        return cls(environ.get("NOTIFY_SOCKET") or None, watchdog_s)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def ready(self, status: str) -> None:
        """Start-up is over: systemd starts the units ordered after this one. Sent once."""
        if not self.is_ready:
            self.is_ready = True
            self.send("READY=1", f"STATUS={status}")

    def status(self, text: str) -> None:
        """A one-line description of what the daemon does now, for `systemctl status`."""
        self.send(f"STATUS={text}")

    def watchdog(self) -> None:
        """Tell the watchdog the main loop is alive."""
        self._last_ping = time.monotonic()
        self.send("WATCHDOG=1")

    def keep_alive(self) -> None:
        """Ping the watchdog when half its timeout has passed since the last ping.

        Called from every turn of the main loop (at most POLL_S apart), so a loop that
        blocks stops the pings and systemd restarts the node after `WatchdogSec`.
        """
        if self.watchdog_s is None:
            return
        if time.monotonic() - self._last_ping >= self.watchdog_s / 2:
            self.watchdog()

    def stopping(self, status: str) -> None:
        """The stop has begun; systemd waits for the process to exit (TimeoutStopSec)."""
        self.send("STOPPING=1", f"STATUS={status}")

    def send(self, *fields: str) -> None:
        """One datagram of newline-separated `KEY=value` fields."""
        if self.address is None:
            return
        try:
            if self._socket is None:
                self._socket = socket.socket(
                    socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                )
            self._socket.sendto("\n".join(fields).encode(), self.address)
        except OSError as exc:
            if not self._failed:
                self._failed = True
                log.warning("cannot notify systemd at %s: %s", self.given, exc)

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def _socket_address(address: str | None) -> str | None:
    """`@name` is a socket in the abstract namespace, which Python spells with a NUL byte."""
    if not address or not address.startswith(("/", "@")):
        if address:
            log.warning("NOTIFY_SOCKET=%s is not a unix socket; not notifying systemd", address)
        return None
    return "\0" + address[1:] if address.startswith("@") else address


def under_journal(environ: Mapping[str, str] = os.environ, stream_fd: int = 2) -> bool:
    """True when `stream_fd` is systemd's journal stream (`$JOURNAL_STREAM` is its
    `device:inode`), so the journal adds the time and the unit, and reads priorities."""
    expected = environ.get("JOURNAL_STREAM", "")
    try:
        stat = os.fstat(stream_fd)
    except OSError:
        return False
    return expected == f"{stat.st_dev}:{stat.st_ino}"


class JournalFormatter(logging.Formatter):
    """`<priority>LEVEL node=ID logger: message`, one journal entry per line: no time stamp
    (the journal keeps its own), a priority prefix that `journalctl -p warning` filters on."""

    def __init__(self, node_id: str) -> None:
        super().__init__(f"%(levelname)s node={node_id} %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{SYSLOG_PRIORITY.get(record.levelname, 6)}>"
        # A traceback is several lines; each needs the prefix, or journald files it as INFO.
        return "\n".join(prefix + line for line in super().format(record).splitlines())
