"""Which subscribers get the platform token with each delivery.

The platform's own receivers (builder, deployer) accept events only with the
token, so a client on the machine cannot bypass the broker's ingress check by
posting build.start or service.delete to them directly. The broker therefore
sends ``Authorization: Bearer <token>`` to those receivers, and only to them:
``KL_BROKER_TOKEN_SUBSCRIBERS`` lists their URL prefixes (``kl up`` sets it).
Function subscribers and dead-letter sinks never see the token.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from urllib.parse import urlsplit

ENV = "KL_BROKER_TOKEN_SUBSCRIBERS"


def trusted_prefixes(env: dict[str, str] | None = None) -> list[str]:
    text = (os.environ if env is None else env).get(ENV, "")
    return [p.strip().rstrip("/") for p in text.split(",") if p.strip()]


def _origin_path(url: str) -> tuple[str, str, int | None, str]:
    try:
        parts = urlsplit(url)
        return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port, parts.path.rstrip("/")
    except ValueError:
        return "", "", None, ""


def sends_token(subscriber: str, prefixes: Sequence[str]) -> bool:
    """Is ``subscriber`` one of the platform's receivers? Same scheme, host and port, and
    a path under the prefix's path (pure; a look-alike host or port never matches)."""
    scheme, host, port, path = _origin_path(subscriber)
    if not host:
        return False
    for prefix in prefixes:
        p_scheme, p_host, p_port, p_path = _origin_path(prefix)
        if (scheme, host, port) == (p_scheme, p_host, p_port) and (
            path == p_path or path.startswith(p_path + "/")
        ):
            return True
    return False


def delivery_headers(subscriber: str, token: str, prefixes: Sequence[str]) -> dict[str, str]:
    """The extra headers for deliveries to ``subscriber`` (pure)."""
    if token and sends_token(subscriber, prefixes):
        return {"Authorization": f"Bearer {token}"}
    return {}
