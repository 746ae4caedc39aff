"""What the broker's front answers itself and what it leaves to the aiohttp app (ingress.py)."""

from __future__ import annotations

import pytest

from knative_lambda.platform.broker.ingress import ingress_route


@pytest.mark.parametrize(("method", "path", "want"), [
    ("POST", "/default/default", ("default", "default")),
    ("POST", "/team-a/orders.v1", ("team-a", "orders.v1")),
    ("GET", "/default/default", None),  # aiohttp's 405
    ("POST", "/default/default/", None),  # aiohttp's 404
    ("POST", "/default", None),
    ("POST", "/default/%64efault", None),  # percent-escapes: aiohttp decodes them
    ("POST", "/default/..", None),  # dot segments: aiohttp normalizes them
    ("POST", "/apis/v1", None),  # the management API's rate limit applies
    ("POST", "/a/{b}", None),
])
def test_ingress_route(method: str, path: str, want: tuple[str, str] | None) -> None:
    assert ingress_route(method, path) == want
