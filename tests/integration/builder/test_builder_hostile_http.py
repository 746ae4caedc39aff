"""The builder's HTTP face against inputs the hostile suite found: each a 4xx JSON error, never a 500."""

from __future__ import annotations

import httpx
import pytest

from knative_lambda.platform.builder.app import make_app
from knative_lambda.platform.builder.config import BuilderConfig
from knative_lambda.settings import Settings

TOKEN = "tok"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BINARY = [("ce-specversion", "1.0"), ("ce-id", "hostile-b1"), ("ce-source", "network.notifi.acme"),
          ("ce-type", "network.notifi.lambda.build.start"), ("ce-subject", "parser-1"),
          ("Content-Type", "application/json")]
DATA = b'{"third_party_id": "acme", "parser_id": "parser-1"}'


@pytest.fixture
async def served(builder_settings: Settings, serve_app) -> str:
    settings = Settings(**(builder_settings.__dict__ | {"token": TOKEN}))
    return await serve_app(make_app(settings, BuilderConfig(offline=True, backoff_s=0)))


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "status", "words"),
    [
        ("GET", "/", [], b"", 405, "method not allowed"),
        ("GET", "/apis/v1/nope", AUTH, b"", 404, "not found"),
        ("GET", "/apis/v1/artifacts/a%00b", AUTH, b"", 404, "no artifact"),
        ("POST", "/", [*BINARY, ("Content-Encoding", "gzip")], b"not gzip", 400, "content-encoding"),
        ("POST", "/", BINARY, b'{"third_party_id": ' + b"9" * 5000 + b"}", 400, "invalid json"),
        ("POST", "/", BINARY, b'{"third_party_id": NaN}', 400, "invalid json"),
        ("POST", "/", [*BINARY, ("ce-id", "hostile-b2")], DATA, 400, "duplicate"),
        ("POST", "/", [("Content-Type", "application/cloudevents+json")],
         b'{"specversion":"1.0","id":"1","data":' + b"9" * 5000 + b"}", 400, "invalid json"),
    ],
    ids=["get-root", "unknown-api", "artifact-nul", "gzip-garbage", "big-int", "nan", "duplicate-ce-id",
         "structured-big-int"],
)
async def test_hostile_request_gets_a_json_error(served: str, method: str, path: str,
                                                 headers: list[tuple[str, str]], body: bytes, status: int,
                                                 words: str) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.request(method, served + path, headers=headers, content=body)
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith("application/json")
        assert words in response.json()["error"].lower()
        assert (await http.get(served + "/readyz")).status_code in (200, 503)  # still answering
