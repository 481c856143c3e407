"""Small helpers the benchmark scripts share: a free port, and how a figure is printed."""

from __future__ import annotations

import math
import socket


def free_port() -> int:
    """A loopback port where nothing listens now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def fmt(value: float | None, digits: int = 1) -> str:
    """A dash for what was not measured."""
    return "-" if value is None or math.isnan(value) else f"{value:.{digits}f}"
