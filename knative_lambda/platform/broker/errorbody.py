"""JSON error bodies for the answers aiohttp makes by itself (404, 405, 413, bad encodings).

The broker's handlers answer ``{"error": ..., "problems": [...]}``; aiohttp's
router and body reader raise ``HTTPException`` with a text/plain body instead.
This middleware turns those into the same JSON shape, so a client parses one
error format whatever went wrong. (A shared one in ``platform/http.py`` can
replace it once it exists.)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.http_exceptions import ContentEncodingError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_message(status: int, method: str, path: str, allowed: frozenset[str] | set[str] = frozenset()) -> str:
    """The one-line error for an answer aiohttp raised. Pure."""
    if status == 404:
        return f"not found: no route for {path}"
    if status == 405:
        allow = ", ".join(sorted(allowed)) or "none"
        return f"method not allowed: {method} {path} (allowed: {allow})"
    if status == 413:
        return "request body too large"
    return f"HTTP {status}"


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or (exc.content_type or "").endswith("json"):
            raise
        allowed = getattr(exc, "allowed_methods", frozenset())
        message = error_message(exc.status, request.method, request.path, allowed)
        if exc.status == 413 and exc.text:
            message = f"{message}: {exc.text}"
        headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        return web.json_response(
            {"error": message, "problems": [{"where": "request", "reason": message}]},
            status=exc.status, headers=headers,
        )
    except ContentEncodingError as exc:
        # A body that does not decode with its Content-Encoding (gzip/deflate/br).
        reason = f"body does not decode with its content-encoding: {exc.message}"
        return web.json_response(
            {"error": reason, "problems": [{"where": "content-encoding", "reason": reason}]}, status=400
        )
