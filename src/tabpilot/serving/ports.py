"""Free loopback ports: for the servers tabpilot starts beside itself (JupyterLab) and the
ones its tests and benchmarks start. A port is free when asked; another process may take
it before the server binds it, so callers that can retry on "address in use" do."""

from __future__ import annotations

import socket


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """`n` distinct ports free on `host` (all bound at once, so none repeats)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind((host, 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def free_port(host: str = "127.0.0.1") -> int:
    """One port free on `host`."""
    return free_ports(1, host)[0]
