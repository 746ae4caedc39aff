"""The ``local`` target: the embedded reference platform started by ``kl up``.

Scenarios reach it through the same public surfaces as any other target
(:class:`PlatformTarget`); only the fault hooks reach for processes, because
that is what "local" means.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from knative_lambda.harness import local
from knative_lambda.harness import state as statefile
from knative_lambda.harness.targets.base import Function
from knative_lambda.harness.targets.remote import PlatformTarget


class LocalTarget(PlatformTarget):
    name = "local"

    def __init__(self, state_path: Path | str | None = None) -> None:
        self.state_path = Path(state_path) if state_path else statefile.default_state_path()
        self.state = statefile.load(self.state_path)
        super().__init__(self.state.platform_settings())

    def _reload(self) -> None:
        self.state = statefile.load(self.state_path)

    def health(self) -> dict[str, tuple[bool, str]]:
        return local.health(self.state)

    def trace_spans(self, trace_id: str, names: Sequence[str] = (), *, timeout: float = 5.0
                    ) -> list[dict[str, Any]] | None:
        """The spans of ``trace_id`` from the platform's span files (tracing.setup), once
        every name in ``names`` is there or at the timeout; None when the platform
        writes no span files (it exports to OTLP: no traces dir)."""
        from knative_lambda.platform import tracing  # OpenTelemetry: only when asked

        data_dir = Path(self.settings.data_dir)
        spans = tracing.wait_for_trace(data_dir, trace_id, names, timeout=timeout)
        return spans if spans or (data_dir / "traces").is_dir() else None

    # -- faults ---------------------------------------------------------------
    def parts(self) -> list[str]:
        return [*self.state.services, *self.state.components]

    def kill(self, part: str) -> None:
        local.signal_part(self.state, part, signal.SIGKILL)

    def pause(self, part: str) -> None:
        local.signal_part(self.state, part, signal.SIGSTOP)

    def resume(self, part: str) -> None:
        local.signal_part(self.state, part, signal.SIGCONT)

    def restart(self, part: str, *, timeout: float = 60.0) -> None:
        local.restart_part(self.state_path, part, timeout=timeout)
        self._reload()

    def kill_instances(self, fn: Function, count: int | None = 1) -> int:
        """SIGKILL ``count`` (None: all) of the function's instance processes."""
        service = self.service(fn.service) or {}
        pids = [i["pid"] for r in service.get("revisions", []) for i in r.get("instances", [])
                if i.get("pid")]
        killed = 0
        for pid in pids[: len(pids) if count is None else count]:
            try:
                os.kill(int(pid), signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        return killed
