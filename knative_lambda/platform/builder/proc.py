"""Run a build tool as a subprocess that dies with the build.

Each tool runs in its own process group; if the awaiting task is cancelled
(the build timed out) the whole group is killed, so no npm/uv/docker child
outlives its build.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal


async def run(
    argv: list[str], cwd: str | None = None, env: dict[str, str] | None = None, stdin_path: str | None = None
) -> tuple[int, str]:
    """``(returncode, combined stdout+stderr)``; FileNotFoundError if the tool is missing."""
    stdin = open(stdin_path, "rb") if stdin_path else None  # noqa: SIM115 - closed below
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=env,
            stdin=stdin or asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        if stdin:
            stdin.close()
    try:
        out, _ = await proc.communicate()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            await asyncio.shield(proc.wait())
        raise
    return proc.returncode or 0, out.decode(errors="replace")


def tail(output: str, lines: int = 12) -> str:
    return "\n".join(output.strip().splitlines()[-lines:])
