"""A pre-initialized Python runtime that forks function instances on request.

The gateway starts one zygote (``python -m knative_lambda.platform.runtime.zygote
SOCKET``). It imports aiohttp, uvloop, the contract and the wrapper once, then
waits on a unix socket. Each connection carries one JSON line::

    {"artifact": "/abs/dir", "env": {...}, "memory_limit": 536870912, "workers": 10}

and the zygote forks. The child imports the function, binds 127.0.0.1:0 and
answers on the same connection ``{"pid": 123}`` at once, ``{"port": 40123}``
once it listens (or ``{"error": "..."}``), then keeps the connection open for its whole life: the
gateway reads EOF when the instance dies, whatever killed it. So a cold start
costs a fork plus the function's own import, and a function at zero holds no
process. The zygote reaps its children (SIGCHLD ignored) and dies with the
gateway (PDEATHSIG); instances die with the zygote.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import signal
import socket
import sys

# Preloaded so that every fork starts with them imported.
import aiohttp.web  # noqa: F401

from knative_lambda.contract import bindings, factory  # noqa: F401
from knative_lambda.platform.runtime import app as runtime_app
from knative_lambda.platform.runtime import loader, server


def _read_line(conn: socket.socket, limit: int = 1 << 20) -> bytes:
    buf = b""
    while b"\n" not in buf and len(buf) < limit:
        chunk = conn.recv(65536)
        if not chunk:
            break
        buf += chunk
    return buf.split(b"\n", 1)[0]


def _child(conn: socket.socket, request: dict) -> None:
    """Become one instance; never returns."""
    code = 0
    try:
        conn.sendall(json.dumps({"pid": os.getpid()}).encode() + b"\n")  # process started
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        server.die_with_parent()
        limit = int(request.get("memory_limit") or 0)
        if limit > 0:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        os.environ.clear()
        os.environ.update({str(k): str(v) for k, v in (request.get("env") or {}).items()})
        artifact = loader.read_artifact(request["artifact"])
        os.chdir(artifact.code_dir)
        fn, is_async = loader.load_python(artifact)
        sock = server.listen(int(request.get("port") or 0))
        app = runtime_app.app_for_env(runtime_app.Invoker(fn, is_async, int(request.get("workers") or 16)))
        conn.sendall(json.dumps({"port": sock.getsockname()[1]}).encode() + b"\n")
        server.serve(sock, app)
    except BaseException as exc:  # report and exit: the gateway shows this line
        code = 1
        try:
            conn.sendall(json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode() + b"\n")
        except OSError:
            pass
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main(path: str) -> None:
    server.die_with_parent(signal.SIGTERM)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps instances
    if os.path.exists(path):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(256)
    gc.collect()
    gc.freeze()  # keep preloaded objects out of the children's GC: fewer copied pages
    while True:
        conn, _ = listener.accept()
        try:
            conn.settimeout(5.0)
            line = _read_line(conn)
            request = json.loads(line) if line else None  # empty: a liveness probe
            conn.settimeout(None)
        except (OSError, ValueError):
            request = {}
        if not isinstance(request, dict) or "artifact" not in request:
            if request is not None:
                try:
                    conn.sendall(b'{"error": "bad fork request: expected a JSON object with artifact"}\n')
                except OSError:
                    pass
            conn.close()
            continue
        pid = os.fork()
        if pid == 0:
            listener.close()
            _child(conn, request)
        conn.close()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m knative_lambda.platform.runtime.zygote SOCKET_PATH")
    try:
        main(sys.argv[1])
    except KeyboardInterrupt:
        pass
