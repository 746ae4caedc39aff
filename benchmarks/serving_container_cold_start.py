"""Cold start of a hello Python function as a container instance vs as a forked process.

Builds the hello function's image once with the builder's docker backend (no S3:
the backend alone), then for each mode runs a private gateway
(``KL_INSTANCE_MODE=container`` / ``process``), deploys ``--n`` services with
``initial-scale: 0`` on that one artifact and sends each one request: every
request is a cold start from zero. The gateway timeline gives the breakdown
(buffered -> process_started: for a container, ``docker run`` returning;
process_started -> ready: the wrapper booting in the container and the /readyz poll).

Usage: .venv/bin/python benchmarks/serving_container_cold_start.py [--n 7]
Needs a Docker engine and the offline base image (scripts/docker-setup.sh).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving_cold_start import breakdown, measure  # noqa: E402
from serving_common import HELLO, Gateway, summary  # noqa: E402

from knative_lambda.contract import names  # noqa: E402
from knative_lambda.platform.builder.backends.base import BuildInput  # noqa: E402
from knative_lambda.platform.builder.backends.docker import DockerBackend, engine_reason  # noqa: E402
from knative_lambda.platform.builder.config import BuilderConfig  # noqa: E402
from knative_lambda.platform.builder.context import BuildConfig, wrapper_state  # noqa: E402
from knative_lambda.platform.builder.runtimes import FunctionSpec  # noqa: E402
from knative_lambda.settings import Settings  # noqa: E402


def build_hello(root: Path) -> tuple[Path, str]:
    """An artifact dir of the hello function whose manifest names the image the docker backend built."""
    art = root / "hello"
    (art / "code").mkdir(parents=True)
    (art / "code" / "handler.py").write_text(HELLO)
    config = BuilderConfig(offline=True, backend="docker")
    spec = FunctionSpec("python", "handler.py")
    image = names.image_uri("localhost:5000", "bench", "hello", "0" * 8 + str(int(time.time())))
    build = BuildConfig(third_party_id="bench", parser_id="hello", content_hash="bench", runtime="python",
                        entry="handler.py", export="handle", deps=None, image_uri=image, job_name="bench",
                        base_image=config.python_base, backend="docker", runtime_wrapper=wrapper_state())
    backend = DockerBackend(config, Settings(data_dir=root / "builder"))
    extras = asyncio.run(backend.build(BuildInput("bench", spec, art, build, "")))
    manifest = {"runtime": "python", "entry": "handler.py", "code": "code", "pythonpath": ["code"],
                "backend": "docker", "image_uri": image, **extras}
    (art / "manifest.json").write_text(json.dumps(manifest))
    return art, extras["image"]


def run_mode(mode: str, art: Path, n: int, gap: float) -> dict:
    env = {"KL_INSTANCE_MODE": mode, "KL_AUTOSCALER_ALLOW_ZERO_INITIAL_SCALE": "true",
           "KL_AUTOSCALER_INITIAL_SCALE": "0"}
    with Gateway(**env) as gw:
        names_ = [f"{mode}-{i}" for i in range(n)]
        for name in names_:
            gw.deploy(name, art)
        time.sleep(0.5)
        results = asyncio.run(measure(gw, names_, gap))
        events = gw.timeline()
    return {
        "errors": sum(1 for _, _, s in results if s != 200),
        "client_latency": summary([t for _, t, s in results if s == 200]),
        "breakdown": breakdown(events, names_),
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=7)
    ap.add_argument("--gap", type=float, default=0.3, help="seconds between cold starts")
    args = ap.parse_args()
    if reason := asyncio.run(engine_reason()):
        print(f"error: {reason}", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="kl-container-bench-"))
    art, image = build_hello(root)
    try:
        container = run_mode("container", art, args.n, args.gap)
        process = run_mode("process", art, args.n, args.gap)
    finally:
        subprocess.run(["docker", "rmi", "-f", image], capture_output=True)
    ratio = container["client_latency"]["p50_ms"] / process["client_latency"]["p50_ms"]
    print(json.dumps({
        "benchmark": "serving_container_cold_start",
        "command": f"python benchmarks/serving_container_cold_start.py --n {args.n} --gap {args.gap}",
        "container": container,
        "process": process,
        "p50_ratio_container_to_process": round(ratio, 1),
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
