"""Free local ports, shared by the service providers."""

from __future__ import annotations

import contextlib
import socket

HOST = "127.0.0.1"


def free_ports(n: int = 1, host: str = HOST) -> list[int]:
    """``n`` distinct ports that were free a moment ago.

    All sockets stay open until every port is picked, so the kernel cannot hand
    out the same port twice within one call.
    """
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port(host: str = HOST) -> int:
    return free_ports(1, host)[0]


def port_open(port: int, host: str = HOST, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False
