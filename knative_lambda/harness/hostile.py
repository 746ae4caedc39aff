"""Hostile-input runner: send malformed requests, judge the answers, check nothing broke.

The corpus itself is data (``tests/hostile/corpus_*.py``); this module holds the
case types, the senders (HTTP through httpx, raw bytes on a socket for what is
not valid HTTP), the pure verdict on an answer, and the two after-checks every
group ends with: every part healthy, and a valid event published afterwards is
delivered (:class:`Canary`). A future ``kl hostile`` command can drive it as is.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from knative_lambda.contract.events import EventKind, event_type
from knative_lambda.contract.factory import new_event
from knative_lambda.harness.tap import EventTap

CANARY_TP = "kl-hostile"


# --- cases and answers ------------------------------------------------------------------


@dataclass(frozen=True)
class HttpCase:
    """One well-formed HTTP request with a hostile content."""

    id: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    method: str = "POST"
    path: str = "/default/default"  # relative to the component's base URL, query included
    status: tuple[int, ...] = (400,)
    expect: tuple[str, ...] = ()  # lowercase substrings the error must contain
    json_error: bool = True  # answer is a JSON object with "error" (False: protocol-level text)
    stream: bool = False  # send the body chunked, without Content-Length
    bug: str = ""  # a known platform defect this case shows (tests: strict xfail)


@dataclass(frozen=True)
class RawCase:
    """Bytes on a fresh connection that are not valid HTTP; ``status`` None = may just close."""

    id: str
    data: bytes
    status: tuple[int, ...] | None = (400,)
    expect: tuple[str, ...] = ()
    bug: str = ""


@dataclass(frozen=True)
class Answer:
    status: int | None  # None: the connection closed without an answer
    content_type: str = ""
    text: str = ""

    def json(self) -> Any:
        try:
            return json.loads(self.text)
        except ValueError:
            return None


def error_text(answer: Answer) -> str:
    """Everything an answer says about the problem, lowercased (JSON error + problems, or text)."""
    body = answer.json()
    if isinstance(body, dict):
        return " ".join([str(body.get("error", "")), json.dumps(body.get("problems", []))]).lower()
    return answer.text.lower()


def verdict(case: HttpCase | RawCase, answer: Answer) -> list[str]:
    """Why ``answer`` is not an acceptable reply to ``case`` (empty = acceptable). Pure."""
    problems: list[str] = []
    if answer.status is None:
        if case.status is not None:
            problems.append(f"no answer, expected HTTP {'/'.join(map(str, case.status))}")
        return problems
    if answer.status >= 500:
        problems.append(f"server error HTTP {answer.status}: {answer.text[:200]!r}")
    elif case.status is not None and answer.status not in case.status:
        problems.append(f"HTTP {answer.status}, expected {'/'.join(map(str, case.status))}: "
                        f"{answer.text[:200]!r}")
    if isinstance(case, HttpCase) and case.json_error:
        body = answer.json()
        if "json" not in answer.content_type or not isinstance(body, dict) or not body.get("error"):
            problems.append(f"answer is not a JSON error object ({answer.content_type or 'no type'}): "
                            f"{answer.text[:120]!r}")
    said = error_text(answer)
    problems += [f"error does not name {word!r}: {said[:200]!r}" for word in case.expect if word not in said]
    if "traceback" in answer.text.lower():
        problems.append("answer contains a traceback")
    return problems


# --- senders ------------------------------------------------------------------------------


def _pieces(body: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def send_http(client: httpx.Client, base_url: str, case: HttpCase, timeout: float = 30.0) -> Answer:
    content: Any = _pieces(case.body) if case.stream else case.body
    try:
        response = client.request(case.method, base_url.rstrip("/") + case.path, headers=list(case.headers),
                                  content=content, timeout=timeout)
    except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
        return Answer(None)  # the server closed the connection: no answer, no crash
    return Answer(response.status_code, response.headers.get("content-type", ""),
                  response.content.decode("utf-8", "replace"))


def send_raw(base_url: str, data: bytes, *, half_close: bool = False, timeout: float = 5.0) -> Answer:
    """Write ``data`` (then half-close: "no more is coming") and read one response, or none.

    aiohttp drops a half-closed connection without answering, so half-close only
    to tell the server that a cut-off request will not be completed.
    """
    parts = urlsplit(base_url)
    received = b""
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and not _complete(received):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
        except (ConnectionError, TimeoutError):
            pass
    return _parse_response(received)


def _complete(raw: bytes) -> bool:
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            try:
                return len(body) >= int(value.strip())
            except ValueError:
                return True
    return False  # no length: read until the server closes


def _parse_response(raw: bytes) -> Answer:
    if not raw.startswith(b"HTTP/"):
        return Answer(None, text=raw.decode("latin-1"))
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        return Answer(None, text=raw.decode("latin-1"))
    content_type = next((line.split(":", 1)[1].strip() for line in lines[1:]
                         if line.lower().startswith("content-type:")), "")
    return Answer(status, content_type, body.decode("utf-8", "replace"))


# --- after-checks ---------------------------------------------------------------------------


def unhealthy_parts(target: Any) -> dict[str, str]:
    """Parts of ``target`` that do not answer ``/healthz`` (services included where known)."""
    report = dict(target.health())
    builder_url = getattr(target.settings, "builder_url", "")
    if builder_url and "builder" not in report:
        try:
            response = httpx.get(builder_url.rstrip("/") + "/healthz", timeout=5)
            report["builder"] = (response.is_success, f"HTTP {response.status_code}")
        except httpx.HTTPError as exc:
            report["builder"] = (False, type(exc).__name__)
    return {name: detail for name, (ok, detail) in report.items() if not ok}


class Canary:
    """Valid events published between hostile ones; all of them must arrive at a tap."""

    def __init__(self, target: Any, *, publish_timeout: float = 15.0) -> None:
        self.target = target
        self.prefix = target.settings.event_prefix
        self.publish_timeout = publish_timeout
        self.sent: list[str] = []
        self.tap = EventTap(
            target.settings.broker_url,
            [{"exact": {"type": event_type(EventKind.PARSER_START, self.prefix),
                        "source": f"network.notifi.{CANARY_TP}"}}],
            token=target.settings.token, namespace=target.settings.namespace,
        )

    def __enter__(self) -> Canary:
        self.tap.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.tap.stop()

    def publish(self) -> str:
        """Publish one canary; a 503 (RabbitMQ reconnecting) is retried as a client would."""
        event = new_event(EventKind.PARSER_START, {"canary": len(self.sent)},
                          source=f"network.notifi.{CANARY_TP}", subject="canary", prefix=self.prefix,
                          extensions={"thirdpartyid": CANARY_TP, "parserid": "canary"})
        deadline = time.monotonic() + self.publish_timeout
        status = 0
        while time.monotonic() < deadline:
            try:
                status = self.target.publish(event)
            except httpx.HTTPError:
                status = 0
            if status == 202:
                self.sent.append(str(event.get_id()))
                return str(event.get_id())
            time.sleep(0.2)
        raise AssertionError(f"canary not accepted within {self.publish_timeout:g}s (last HTTP {status})")

    def wait_all(self, timeout: float = 20.0) -> list[str]:
        """Ids of canaries not delivered within ``timeout`` (empty = none lost)."""
        deadline = time.monotonic() + timeout
        while True:
            got = {str(e.get_id()) for e in self.tap.events}
            missing = [i for i in self.sent if i not in got]
            if not missing or time.monotonic() > deadline:
                return missing
            time.sleep(0.05)


# --- the kl command line ---------------------------------------------------------------------

PRELOAD = (
    "knative_lambda.harness.local", "knative_lambda.harness.state", "knative_lambda.harness.targets",
    "knative_lambda.harness.targets.local", "knative_lambda.bench.gate", "knative_lambda.bench.results",
    "knative_lambda.bench.budgets", "knative_lambda.bench.suite", "knative_lambda.bench.runner",
    "knative_lambda.bench.report", "knative_lambda.platform.broker.client", "knative_lambda.contract",
    "knative_lambda.platform.builder.source", "httpx", "boto3", "yaml",
)

# Runs in a child interpreter: imports every kl command once, then forks one process per
# command line, so each run is a separate process with the real entry point
# (``python -m knative_lambda``) without paying the interpreter's start-up each time.
_CLI_WORKER = r'''
import importlib, json, os, runpy, sys, time, traceback
job = json.loads(sys.stdin.read())
from knative_lambda.cli import COMMANDS, LazyGroup
for name in COMMANDS:
    try:
        LazyGroup._load(name)
    except Exception:
        pass  # a command that cannot import fails the same way in its own run
for module in job["preload"]:  # what the commands import when they run
    try:
        importlib.import_module(module)
    except Exception:
        pass
cases, parallel, results, running = job["cases"], max(1, job["parallel"]), {}, {}

def child(case):
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    for fd, path in ((1, case["out"]), (2, case["err"])):
        os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
    os.chdir(case["cwd"])
    os.environ.clear()
    os.environ.update(case["env"])
    sys.argv = ["kl", *case["argv"]]
    code = 0
    try:
        runpy.run_module("knative_lambda", run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        if isinstance(exc.code, int) or exc.code is None:
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

pending = list(enumerate(cases))
while pending or running:
    while pending and len(running) < parallel:
        index, case = pending.pop(0)
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            child(case)
        running[pid] = (index, time.monotonic() + case["timeout"], time.monotonic())
    pid, status = os.waitpid(-1, os.WNOHANG)
    if pid:
        index, _, started = running.pop(pid)
        results[index] = [os.waitstatus_to_exitcode(status), time.monotonic() - started]
        continue
    now = time.monotonic()
    for pid, (index, deadline, started) in list(running.items()):
        if now > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            running.pop(pid)
            results[index] = [None, now - started]
    time.sleep(0.005)
print(json.dumps([results[i] for i in range(len(cases))]))
'''


@dataclass(frozen=True)
class CliRun:
    code: int | None  # None: killed after the timeout (a hang)
    stdout: bytes
    stderr: bytes
    elapsed_s: float = 0.0


def run_cli(argvs: list[list[str]], *, cwd: str, env: dict[str, str], scratch: str,
            timeout: float = 30.0, parallel: int = 4) -> list[CliRun]:
    """Run ``kl <argv>`` for each argv, each in its own (forked) process; results in order."""
    cases = [{"argv": argv, "cwd": cwd, "env": env, "timeout": timeout,
              "out": str(Path(scratch) / f"{i}.out"), "err": str(Path(scratch) / f"{i}.err")}
             for i, argv in enumerate(argvs)]
    job = {"preload": list(PRELOAD), "cases": cases, "parallel": parallel}
    done = subprocess.run([sys.executable, "-c", _CLI_WORKER], input=json.dumps(job).encode(),
                          capture_output=True, timeout=timeout * len(cases) + 60)
    if done.returncode != 0:
        raise RuntimeError(f"kl runner failed: {done.stderr.decode(errors='replace')[-2000:]}")
    outcomes = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return [CliRun(code, Path(case["out"]).read_bytes(), Path(case["err"]).read_bytes(), elapsed)
            for (code, elapsed), case in zip(outcomes, cases, strict=True)]


def cli_verdict(run: CliRun, expect: tuple[str, ...] = ()) -> list[str]:
    """Why a hostile command line's outcome is not acceptable (empty = acceptable). Pure."""
    if run.code is None:
        return ["still running at the timeout (a hang)"]
    stderr = run.stderr.decode("utf-8", "replace")
    problems = []
    if "Traceback" in stderr:
        problems.append("traceback on stderr: " + stderr.strip().splitlines()[-1][:200])
    if run.code == 0:
        problems.append(f"exit 0 (stdout {run.stdout[-200:]!r})")
    lines = [line for line in stderr.splitlines() if line.strip()]
    # click surrounds a usage error with "Usage: ..." and "Try 'kl -h' ..."; the error is one line
    errors = [line for line in lines if line.lower().startswith("error")]
    if len(errors) != 1 or len(lines) > 4:
        problems.append(f"not a one-line error: {stderr[-400:]!r}")
        return problems
    message = errors[0].lower()
    problems += [f"error does not name {w!r}: {message[:200]!r}" for w in expect if w not in message]
    return problems
