"""Small helpers the benchmark scripts share: a free port, and how a figure is printed.

`fmt` (and the percentiles and /proc memory readers) live in `edge_runtime.bench.stats`,
which `edge-runtime bench` uses too; it is re-exported here for the scripts.
"""

from __future__ import annotations

import socket

from edge_runtime.bench.stats import fmt

__all__ = ["fmt", "free_port"]


def free_port() -> int:
    """A loopback port where nothing listens now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
