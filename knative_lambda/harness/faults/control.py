"""The fault proxy's HTTP control API and its Python client.

    GET  /faults   -> current faults (JSON, see model.Faults.to_dict)
    PUT  /faults   <- faults JSON merged over a healthy link (400 on bad fields)
    PATCH /faults  <- faults JSON merged over the current faults
    POST /heal     -> clear every fault
    POST /reset    -> RST every open connection; {"reset": n}
    GET  /stats    -> connections, bytes, resets, faults
    GET  /healthz
"""

from __future__ import annotations

from typing import Any

import httpx
from aiohttp import web

from knative_lambda.errors import ConfigError, PlatformError
from knative_lambda.harness.faults.model import parse_faults
from knative_lambda.harness.faults.proxy import FaultProxy

PROXY_KEY = web.AppKey("proxy", FaultProxy)


def control_app(proxy: FaultProxy) -> web.Application:
    app = web.Application()
    app[PROXY_KEY] = proxy

    async def get_faults(_: web.Request) -> web.Response:
        return web.json_response(proxy.faults.to_dict())

    async def set_faults(request: web.Request) -> web.Response:
        try:
            raw = await request.json()
        except ValueError:
            return web.json_response({"error": "body must be JSON"}, status=400)
        base = proxy.faults if request.method == "PATCH" else None
        try:
            faults = parse_faults(raw, base)
        except ConfigError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        proxy.set_faults(faults)
        return web.json_response(faults.to_dict())

    async def heal(_: web.Request) -> web.Response:
        proxy.heal()
        return web.json_response(proxy.faults.to_dict())

    async def reset(_: web.Request) -> web.Response:
        return web.json_response({"reset": proxy.reset_connections()})

    async def stats(_: web.Request) -> web.Response:
        return web.json_response(proxy.snapshot())

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app.router.add_get("/faults", get_faults)
    app.router.add_put("/faults", set_faults)
    app.router.add_patch("/faults", set_faults)
    app.router.add_post("/heal", heal)
    app.router.add_post("/reset", reset)
    app.router.add_get("/stats", stats)
    app.router.add_get("/healthz", healthz)
    return app


class FaultProxyClient:
    """Synchronous client of one proxy's control API (what chaos actions use)."""

    def __init__(self, control_url: str, timeout: float = 5.0) -> None:
        self.control_url = control_url.rstrip("/")
        self._http = httpx.Client(timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> FaultProxyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        try:
            response = self._http.request(method, self.control_url + path, json=body)
        except httpx.HTTPError as exc:
            raise PlatformError(f"fault proxy at {self.control_url} unreachable "
                                f"({type(exc).__name__}); is the platform up with --faults?") from None
        if response.status_code == 400:
            raise ConfigError(response.json().get("error", response.text))
        if not response.is_success:
            raise PlatformError(f"fault proxy at {self.control_url} answered {response.status_code}")
        return response.json()

    def faults(self) -> dict[str, Any]:
        return self._call("GET", "/faults")

    def set_faults(self, faults: dict[str, Any]) -> dict[str, Any]:
        """Replace the faults (unspecified fields healthy)."""
        return self._call("PUT", "/faults", faults)

    def update_faults(self, faults: dict[str, Any]) -> dict[str, Any]:
        """Merge over the current faults."""
        return self._call("PATCH", "/faults", faults)

    def heal(self) -> dict[str, Any]:
        return self._call("POST", "/heal")

    def reset_connections(self) -> int:
        return int(self._call("POST", "/reset")["reset"])

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/stats")

    def healthy(self) -> bool:
        try:
            return self._http.get(self.control_url + "/healthz", timeout=1.0).is_success
        except httpx.HTTPError:
            return False
