"""Run one instance directly: ``python -m knative_lambda.platform.runtime ARTIFACT_DIR [PORT]``.

Used for containers and as the direct-to-instance baseline of the benchmarks;
the gateway forks instances from the zygote instead. Prints ``READY <port>``.
"""

from __future__ import annotations

import os
import sys

from knative_lambda.platform.runtime import app, loader, server


def main(argv: list[str]) -> int:
    if not argv or len(argv) > 2:
        print("usage: python -m knative_lambda.platform.runtime ARTIFACT_DIR [PORT]", file=sys.stderr)
        return 2
    try:
        artifact = loader.read_artifact(argv[0])
        if artifact.runtime != "python":
            print(f"error: {argv[0]} is a {artifact.runtime} function; run wrapper.js with node", file=sys.stderr)
            return 2
        fn, is_async = loader.load_python(artifact)
    except loader.FunctionLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # containers set KL_LISTEN_HOST=0.0.0.0: their port is published, loopback would be unreachable
    sock = server.listen(int(argv[1]) if len(argv) > 1 else 0, os.environ.get("KL_LISTEN_HOST") or "127.0.0.1")
    print(f"READY {sock.getsockname()[1]}", flush=True)
    server.serve(sock, app.app_for_env(app.Invoker(fn, is_async)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
