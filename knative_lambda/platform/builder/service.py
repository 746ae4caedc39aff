"""The builder's orchestration: one build request in, one build result out.

    fetch global/parser/<id>  ->  hash  ->  backoff?  ->  extract safely + detect runtime
      -> cache hit? (done, cached)  ->  single flight per key  ->  concurrency slot
      -> [timeout]  static check  ->  context upload  ->  backend build  ->  commit artifact

Every failure becomes a BuildResult with status failed/timeout and a message a
person can act on; nothing escapes as an exception. Emitting the result event is
the caller's job (app.py), so this is usable in-process too.
"""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from knative_lambda.contract import keys, names
from knative_lambda.contract.events import (
    STATUS_FAILED,
    STATUS_SUCCEEDED,
    STATUS_TIMEOUT,
    BuildRequest,
    BuildResult,
    is_uuid4,
)
from knative_lambda.platform.builder import archive, runtimes, source
from knative_lambda.platform.builder.backends import BuildBackend, BuildInput, make_backend
from knative_lambda.platform.builder.cache import ArtifactStore, SingleFlight, cache_key
from knative_lambda.platform.builder.config import BuilderConfig
from knative_lambda.platform.builder.context import (
    TEMPLATES,
    BuildConfig,
    assemble,
    runtime_digest,
    wrapper_state,
)
from knative_lambda.platform.builder.errors import (
    BackoffActive,
    BuildFailed,
    BuildTimedOut,
    FunctionInvalid,
    SourceMissing,
)
from knative_lambda.platform.builder.guards import Backoff, PriorityGate, priority_of
from knative_lambda.settings import Settings

UNKNOWN_HASH = "0" * keys.CONTENT_HASH_LEN  # the object could not be read: no hash to report


@dataclass(frozen=True)
class Built(BuildResult):
    """A BuildResult plus what the local platform needs to find the artifact."""

    artifact: str = ""  # artifact key (GET /apis/v1/artifacts/<key>)
    runtime: str = ""
    backend: str = ""

    def to_dict(self) -> dict[str, Any]:
        return super().to_dict() | {"artifact": self.artifact, "runtime": self.runtime, "backend": self.backend}


@dataclass
class BuildRecord:
    """One request's progress, for GET /apis/v1/builds and `kl build`."""

    correlation_id: str
    kind: str
    third_party_id: str
    parser_id: str
    priority: int
    phase: str = "received"
    content_hash: str = ""
    started: float = field(default_factory=time.time)
    ended: float | None = None
    result: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "correlation_id": self.correlation_id,
            "kind": self.kind,
            "third_party_id": self.third_party_id,
            "parser_id": self.parser_id,
            "priority": self.priority,
            "phase": self.phase,
            "content_hash": self.content_hash,
            "started": self.started,
            "ended": self.ended,
            "result": self.result,
        }


class BuildLog:
    """In-flight builds plus the last ``keep`` finished ones."""

    def __init__(self, keep: int = 200) -> None:
        self.keep = keep
        self.records: OrderedDict[str, BuildRecord] = OrderedDict()

    def add(self, record: BuildRecord) -> BuildRecord:
        self.records[record.correlation_id] = record
        self.records.move_to_end(record.correlation_id)
        finished = [k for k, r in self.records.items() if r.ended is not None]
        for k in finished[: max(0, len(finished) - self.keep)]:
            del self.records[k]
        return record

    def get(self, correlation_id: str) -> BuildRecord | None:
        return self.records.get(correlation_id)

    def list(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.records.values()]


@dataclass
class _Prepared:
    spec: runtimes.FunctionSpec
    staging: Path
    key: str
    base: str


class Builder:
    def __init__(
        self,
        settings: Settings,
        config: BuilderConfig | None = None,
        backend: BuildBackend | None = None,
        s3: Any = None,
    ) -> None:
        self.settings = settings
        self.config = config or BuilderConfig()
        self.backend = backend or make_backend(self.config, settings)
        self.s3 = s3 or source.make_client(settings)
        self.store = ArtifactStore(Path(settings.data_dir) / "artifacts")
        self.store.root.mkdir(parents=True, exist_ok=True)
        self.gate = PriorityGate(self.config.max_concurrent)
        self.backoff = Backoff(self.config.backoff_s)
        self.flight = SingleFlight()
        self.log = BuildLog(self.config.recent)
        self.builds_done = 0  # real builds (not cache hits): tests check "no work" with it
        self.limits = archive.Limits(self.config.max_entries, self.config.max_bytes, self.config.max_ratio)

    # ------------------------------------------------------------------ entry point

    async def handle(
        self, request: BuildRequest, kind: str = "build.start", correlation_id: str | None = None
    ) -> Built:
        """Build (or find) the artifact for ``request``; never raises for a bad build."""
        t0 = time.monotonic()
        cid = correlation_id if correlation_id and is_uuid4(correlation_id) else str(uuid.uuid4())
        record = self.log.add(
            BuildRecord(cid, kind, request.third_party_id, request.parser_id, priority_of(kind, request.priority))
        )
        content_hash = request.content_hash or UNKNOWN_HASH
        runtime = ""
        try:
            record.phase = "fetching"
            src = await asyncio.to_thread(
                source.fetch, self.s3, self.settings.source_bucket, keys.source_key(request.parser_id), self.config.max_bytes
            )
            content_hash = record.content_hash = keys.content_hash(src.data)
            backoff_key = (request.third_party_id, request.parser_id, content_hash)
            self._check_backoff(backoff_key)
            try:
                record.phase = "extracting"
                prepared = await asyncio.to_thread(self._prepare, request, src)
                runtime = prepared.spec.runtime
                cached = await self._build_once(request, kind, record, prepared, content_hash)
            except BuildFailed as exc:
                if not isinstance(exc, BackoffActive):
                    self.backoff.failed(backoff_key, time.monotonic(), str(exc))
                raise
            self.backoff.succeeded(backoff_key)
            result = self._result(request, cid, content_hash, t0, STATUS_SUCCEEDED, "", 0, cached=cached,
                                  artifact=prepared.key, runtime=runtime)
        except BuildFailed as exc:
            status = STATUS_TIMEOUT if isinstance(exc, BuildTimedOut) else STATUS_FAILED
            result = self._result(request, cid, content_hash, t0, status, str(exc), exc.exit_code, runtime=runtime)
        except Exception as exc:  # a bug or an unexpected tool failure: still answer, with its name
            result = self._result(request, cid, content_hash, t0, STATUS_FAILED,
                                  f"internal builder error: {type(exc).__name__}: {exc}", 1, runtime=runtime)
        record.phase, record.ended, record.result = "done", time.time(), result.to_dict()
        return result

    # ------------------------------------------------------------------ steps

    def _check_backoff(self, key: tuple[str, str, str]) -> None:
        blocked = self.backoff.blocked(key, time.monotonic())
        if blocked is None:
            return
        until, reason = blocked
        left = until - time.monotonic()
        ends = datetime.fromtimestamp(time.time() + left, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        raise BackoffActive(
            f"not rebuilt: this code ({key[2]}) failed within the last {self.config.backoff_s:.0f}s "
            f"(backoff window, KL_BUILD_BACKOFF); retry after {ends} ({left:.0f}s) or upload a fix. "
            f"Last error: {reason}"
        )

    def _runtime_hint(self, request: BuildRequest, src: source.Source) -> str | None:
        params = request.parameters or {}
        hint = params.get("runtime") or src.metadata.get("runtime")
        if hint and str(hint).lower() != "auto":
            return runtimes.normalize_hint(str(hint))
        filename = str(params.get("filename") or src.metadata.get("filename") or "")
        if filename.endswith(".py"):
            return "python"
        if filename.endswith((".js", ".cjs")):
            return "node"
        return None

    def _prepare(self, request: BuildRequest, src: source.Source) -> _Prepared:
        """Extract into a staging dir and detect the runtime (blocking; run in a thread)."""
        staging = self.store.staging("incoming")
        try:
            code = staging / "code"
            hint = self._runtime_hint(request, src)
            if archive.format_of(src.data) == "file":
                try:
                    text = src.data.decode("utf-8")
                except UnicodeDecodeError:
                    raise FunctionInvalid(
                        "source is neither an archive (tar.gz, zip) nor a UTF-8 .py/.js file"
                    ) from None
                runtime = hint or runtimes.sniff_runtime(text)
                code.mkdir()
                (code / runtimes.SINGLE_FILE[runtime]).write_bytes(src.data)
                spec = runtimes.FunctionSpec(runtime, runtimes.SINGLE_FILE[runtime])
            else:
                raw = staging / "raw"
                raw.mkdir()
                files = archive.extract(src.data, raw, self.limits)
                root = runtimes.code_root(files)
                (raw / root).rename(code) if root else raw.rename(code)
                shutil.rmtree(raw, ignore_errors=True)
                inner = [f[len(root) + 1 :] if root else f for f in files]
                package = code / "package.json"
                spec = runtimes.detect(inner, hint, package.read_text(errors="replace") if package.is_file() else None)
            base = self.backend.base(spec.runtime)
            key = cache_key(keys.content_hash(src.data), spec.runtime, self.backend.name, base,
                            runtime_digest(spec.runtime))
            return _Prepared(spec, staging, key, base)
        except BaseException:
            self.store.discard(staging)
            raise

    async def _build_once(
        self, request: BuildRequest, kind: str, record: BuildRecord, prepared: _Prepared, content_hash: str
    ) -> bool:
        """True when no build ran for this request: a cache hit or someone else's build (shared)."""
        force = kind == "rebuild.start"
        if not force and self.store.lookup(prepared.key) is not None:
            self.store.discard(prepared.staging)
            return True

        async def work() -> bool:
            record.phase = "queued"
            async with self.gate.slot(priority_of(kind, request.priority)):
                if not force and self.store.lookup(prepared.key) is not None:
                    return True  # built by someone else while we queued
                try:
                    async with asyncio.timeout(self.config.timeout_s):
                        await self._build(request, record, prepared, content_hash)
                except TimeoutError:
                    raise BuildTimedOut(
                        f"build exceeded the timeout of {self.config.timeout_s:g}s (KL_BUILD_TIMEOUT); "
                        "the build process was killed"
                    ) from None
                return False

        try:
            was_cached, shared = await self.flight.run(prepared.key, work)
        finally:
            if prepared.staging.exists():
                self.store.discard(prepared.staging)
        return was_cached or shared

    async def _build(self, request: BuildRequest, record: BuildRecord, prepared: _Prepared, content_hash: str) -> None:
        spec, staging = prepared.spec, prepared.staging
        record.phase = "checking"
        code = staging / "code"
        if spec.runtime == "python":
            entry = code / spec.entry
            runtimes.check_python(entry.read_text(errors="replace"), spec.entry)
            export = "handle"
        else:
            export = await runtimes.check_node(code / spec.entry, spec.entry)
        spec = runtimes.FunctionSpec(spec.runtime, spec.entry, spec.deps, export)
        tp, parser = request.third_party_id, request.parser_id
        config = BuildConfig(
            third_party_id=tp,
            parser_id=parser,
            content_hash=content_hash,
            runtime=spec.runtime,
            entry=spec.entry,
            export=export,
            deps=spec.deps,
            image_uri=names.image_uri(self.settings.registry, tp, parser, content_hash),
            job_name=names.job_name(tp, parser, content_hash),
            base_image=self.config.python_base if spec.runtime == "python" else self.config.node_base,
            backend=self.backend.name,
            runtime_wrapper=wrapper_state(),
        )
        record.phase = "uploading-context"
        context_key = keys.context_key(parser)
        data = await asyncio.to_thread(assemble, code, spec, config)
        await asyncio.to_thread(source.upload, self.s3, self.settings.temp_bucket, context_key, data,
                                {"content-hash": content_hash})
        record.phase = "building"
        extras = await self.backend.build(BuildInput(prepared.key, spec, staging, config, context_key))
        bin_dir = staging / "bin"
        bin_dir.mkdir(exist_ok=True)
        shutil.copyfile(TEMPLATES / "kl_invoke.py.tmpl", bin_dir / "kl_invoke.py")
        shutil.copyfile(TEMPLATES / "kl_invoke.js", bin_dir / "kl_invoke.js")
        manifest = {
            "key": prepared.key,
            "runtime": spec.runtime,
            "entry": spec.entry,
            "export": export,
            "code": "code",
            "deps": spec.deps,
            "third_party_id": tp,
            "parser_id": parser,
            "content_hash": content_hash,
            "image_uri": config.image_uri,
            "job_name": config.job_name,
            "backend": self.backend.name,
            "base": prepared.base,
            "context": f"s3://{self.settings.temp_bucket}/{context_key}",
            "built_at": datetime.now(UTC).isoformat(),
        } | extras
        tag = config.image_uri.rsplit(":", 1)[-1]
        self.store.commit(staging, prepared.key, manifest, tag)
        self.builds_done += 1

    def _result(
        self, request: BuildRequest, cid: str, content_hash: str, t0: float, status: str, error: str,
        exit_code: int | None, *, cached: bool = False, artifact: str = "", runtime: str = "",
    ) -> Built:
        tp, parser = request.third_party_id, request.parser_id
        ok = status == STATUS_SUCCEEDED
        return Built(
            third_party_id=tp,
            parser_id=parser,
            content_hash=content_hash,
            job_name=names.job_name(tp, parser, content_hash),
            image_uri=names.image_uri(self.settings.registry, tp, parser, content_hash) if ok else "",
            status=status,
            error_message=" ".join(error.split())[:2000],  # one line (tool output is multi-line)
            exit_code=exit_code,
            duration=round(time.monotonic() - t0, 4),
            correlation_id=cid,
            cached=cached,
            artifact=artifact,
            runtime=runtime,
            backend=self.backend.name,
        )


__all__ = ["Builder", "Built", "BuildLog", "BuildRecord", "SourceMissing"]
