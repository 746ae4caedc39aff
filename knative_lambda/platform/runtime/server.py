"""Serving the instance app on an already-bound socket, until SIGTERM."""

from __future__ import annotations

import asyncio
import ctypes
import signal
import socket

from aiohttp import web

try:  # uvloop halves the event-loop overhead per request; optional
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Linux: get ``sig`` when the parent exits, so no instance outlives the platform."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the gateway's reaper still stops children
        pass


def listen(port: int = 0, host: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def serve(sock: socket.socket, app: web.Application, shutdown_timeout: float = 5.0) -> None:
    """Run ``app`` on ``sock`` until SIGTERM/SIGINT; in-flight requests finish first."""

    async def main() -> None:
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=shutdown_timeout,
                               lingering_time=0)  # see zygote.py
        await runner.setup()
        await web.SockSite(runner, sock).start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await runner.cleanup()

    if uvloop is not None:
        uvloop.run(main())
    else:  # pragma: no cover
        asyncio.run(main())
