"""A pre-initialized Python runtime that turns into function instances on request.

The gateway starts one zygote (``python -m knative_lambda.platform.runtime.zygote
SOCKET [SPARES]``). It imports aiohttp, uvloop, the contract and the wrapper once,
binds a unix socket, and forks ``SPARES`` (default 2) *spare* processes. A spare
is a blank runtime: its event loop runs, its HTTP server already listens on
127.0.0.1:<port> and its thread pool is warm, but it has no function. Spares
wait in ``accept()`` on the zygote's socket; the kernel gives each connection
to one of them. A connection carries one JSON line::

    {"artifact": "/abs/dir", "env": {...}, "memory_limit": 536870912, "workers": 10,
     "uid": 201234, "gid": 201234}

The spare that takes it applies the memory limit and the scrubbed environment,
gives up root for ``uid``/``gid`` when given (``runtime/privileges.py``), imports
the function and answers ``{"pid": 123, "taken": <time.monotonic() when
it took the job>, "port": 40123, "unix": "<dir>/i-123.sock"}`` (or
``{"error": "..."}``); from then on it is that function's instance. It keeps the connection open for its whole life: the
gateway reads EOF when it dies, whatever killed it. The zygote forks a new
spare for each one taken, off the request's path.

So a cold start costs an accept and the function's own import (no fork, no
loop or server start on the critical path), and a function at zero holds no
process: spares belong to no function. The zygote reaps its children
(SIGCHLD ignored) and dies with the gateway (PDEATHSIG); children die with the
zygote.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import resource
import select
import signal
import socket
import struct
import sys
import time
from concurrent.futures import ThreadPoolExecutor

# Preloaded so that every fork starts with them imported.
import aiohttp.web as web

from knative_lambda.contract import bindings, factory  # noqa: F401
from knative_lambda.platform import tracing
from knative_lambda.platform.runtime import app as runtime_app
from knative_lambda.platform.runtime import loader, privileges, server

try:
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None

_PID = struct.Struct("i")
REFILL_DELAY = 0.1  # seconds: after a single cold start, refill once it is likely done


async def _read_request(loop: asyncio.AbstractEventLoop, conn: socket.socket) -> dict | None:
    buf = b""
    while b"\n" not in buf and len(buf) < (1 << 20):
        chunk = await asyncio.wait_for(loop.sock_recv(conn, 65536), 5.0)
        if not chunk:
            break
        buf += chunk
    line = buf.split(b"\n", 1)[0]
    if not line:
        return None  # a liveness probe: not a job
    request = json.loads(line)
    return request if isinstance(request, dict) and "artifact" in request else {}


async def _spare_main(listener: socket.socket, notify: int) -> int:
    loop = asyncio.get_running_loop()
    # everything that does not depend on the function, before any request
    if trace_dir := os.environ.get("KL_TRACE_DIR"):  # spans of this instance: runtime-<pid>.jsonl
        tracing.setup("runtime", os.path.dirname(trace_dir), file_stem=f"runtime-{os.getpid()}",
                      otlp_endpoint=os.environ.get("KL_OTLP_ENDPOINT", ""))
    slot = runtime_app.Slot()
    identity = runtime_app.Identity()
    pool = ThreadPoolExecutor(max_workers=16)
    pool.submit(int).result()  # one warm worker thread
    sock = server.listen(0)
    # the gateway talks to instances over a unix socket: about half the cost of a loopback TCP hop
    unix_path = os.path.join(os.path.dirname(listener.getsockname()), f"i-{os.getpid()}.sock")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(unix_path)
    # lingering_time=0: a body left unread (it did not decode: app.py answers 400) closes the
    # connection; draining it would raise the decode error again, logged as a traceback
    runner = web.AppRunner(runtime_app.make_app(slot, identity), access_log=None, handle_signals=False,
                           shutdown_timeout=5.0, lingering_time=0)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    await web.UnixSite(runner, unix_path).start()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    listener.setblocking(False)
    while True:
        accept = loop.create_task(loop.sock_accept(listener))
        stopping = loop.create_task(stop.wait())
        await asyncio.wait({accept, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            accept.cancel()
            with contextlib.suppress(OSError):
                os.unlink(unix_path)
            return 0
        stopping.cancel()
        conn, _ = accept.result()
        try:
            request = await _read_request(loop, conn)
        except (OSError, ValueError, TimeoutError):
            request = {}
        if request:
            break
        if request is not None:
            with contextlib.suppress(OSError):
                await loop.sock_sendall(conn, b'{"error": "bad fork request: expected a JSON object with artifact"}\n')
        conn.close()
    listener.close()
    os.write(notify, _PID.pack(os.getpid()))  # taken: the zygote forks a replacement spare
    os.close(notify)
    # CLOCK_MONOTONIC is system-wide: the gateway can place this on its own timeline
    taken = time.monotonic()
    try:
        limit = int(request.get("memory_limit") or 0)
        if limit > 0:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        os.environ.clear()
        os.environ.update({str(k): str(v) for k, v in (request.get("env") or {}).items()})
        artifact = loader.read_artifact(request["artifact"])
        os.chdir(artifact.code_dir)
        if request.get("uid") is not None:  # give up root before any function code runs
            tracing.hold_file()
            artifact = privileges.anchor([artifact.dir]).artifact(artifact)  # imports: rerouted in main()
            privileges.drop_to(int(request["uid"]), int(request["gid"]))
        fn, is_async = loader.load_python(artifact)
        slot.invoker = runtime_app.Invoker(fn, is_async, pool=pool)
        identity.set(os.environ.get("K_SERVICE", ""), os.environ.get("KL_PARSER_ID", ""),
                     os.environ.get("KL_EVENT_PREFIX", ""))
    except BaseException as exc:  # report and exit: the gateway shows this line
        with contextlib.suppress(OSError):
            await loop.sock_sendall(conn, json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode() + b"\n")
        return 1
    # one message, one wakeup of the gateway on the cold-start path
    ready = {"pid": os.getpid(), "taken": taken, "port": sock.getsockname()[1], "unix": unix_path}
    await loop.sock_sendall(conn, json.dumps(ready).encode() + b"\n")
    await stop.wait()
    tracing.flush()
    await runner.cleanup()
    with contextlib.suppress(OSError):
        os.unlink(unix_path)
    conn.close()
    return 0


def _spare(listener: socket.socket, notify: int) -> None:
    """Body of a forked spare; never returns."""
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        server.die_with_parent()
        run = uvloop.run if uvloop is not None else asyncio.run
        code = run(_spare_main(listener, notify))
    except BaseException as exc:
        print(f"spare {os.getpid()} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def main(path: str, spares: int = 2) -> None:
    server.die_with_parent(signal.SIGTERM)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps instances
    if os.path.exists(path):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1024)
    taken_r, taken_w = os.pipe()
    if os.geteuid() == 0:  # instances may give up root: reach the interpreter and platform through held dirs
        privileges.reroute_imports(privileges.Anchors())
    gc.collect()
    gc.freeze()  # keep preloaded objects out of the children's GC: fewer copied pages
    live: set[int] = set()

    def fork_spare() -> None:
        pid = os.fork()
        if pid == 0:
            os.close(taken_r)
            _spare(listener, taken_w)
        live.add(pid)

    while True:
        live = {p for p in live if _alive(p)}
        while len(live) < max(1, spares):
            fork_spare()
        ready, _, _ = select.select([taken_r], [], [], 1.0)
        if ready:
            data = os.read(taken_r, 4096)
            for (pid,) in _PID.iter_unpack(data[: len(data) - len(data) % _PID.size]):
                live.discard(pid)
            if live:
                # let the cold start that took a spare finish before competing for the CPU
                select.select([], [], [], REFILL_DELAY)


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: python -m knative_lambda.platform.runtime.zygote SOCKET_PATH [SPARES]")
    try:
        main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) == 3 else 2)
    except KeyboardInterrupt:
        pass
