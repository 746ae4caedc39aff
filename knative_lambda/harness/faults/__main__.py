"""Run one fault proxy as its own process.

    python -m knative_lambda.harness.faults --listen 127.0.0.1:P --upstream 127.0.0.1:Q \
        --control-port C [--seed N] [--faults JSON]

Serves the proxy on P and the control API (see ``control.py``) on C until
SIGTERM/SIGINT. Port 0 picks a free port; the bound ports are printed as one
JSON line on stdout, so a parent can read them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys

from aiohttp import web

from knative_lambda.errors import ConfigError
from knative_lambda.harness.faults.control import control_app
from knative_lambda.harness.faults.model import parse_faults
from knative_lambda.harness.faults.proxy import FaultProxy


def host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host, int(port)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m knative_lambda.harness.faults",
                                     description="TCP proxy with run-time faults")
    parser.add_argument("--listen", type=host_port, required=True)
    parser.add_argument("--upstream", type=host_port, required=True)
    parser.add_argument("--control-port", type=int, default=0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--faults", default="", help="initial faults as JSON")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    (lhost, lport), (uhost, uport) = args.listen, args.upstream
    proxy = FaultProxy(lhost, lport, uhost, uport, seed=args.seed)
    if args.faults:
        proxy.set_faults(parse_faults(json.loads(args.faults)))
    await proxy.start()
    runner = web.AppRunner(control_app(proxy), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", args.control_port, reuse_address=True)
    await site.start()
    control_port = runner.addresses[0][1]
    print(json.dumps({"listen_port": proxy.port, "control_port": control_port}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await proxy.stop()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse_args(argv)
    try:
        asyncio.run(serve(args))
    except (ConfigError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
