"""A restarted gateway keeps its services: they are replayed from its data dir."""

from __future__ import annotations

from pathlib import Path

from .conftest import HELLO_HANDLER, GatewayProc, make_artifact


def test_services_survive_a_gateway_restart(tmp_path: Path) -> None:
    artifact = make_artifact(tmp_path / "artifacts", "hello", HELLO_HANDLER)
    home = tmp_path / "gw"
    home.mkdir()
    first = GatewayProc(home, {})
    try:
        first.deploy("kept", artifact, content_hash="aaaabbbbcccc")
        first.deploy("dropped", artifact, content_hash="ddddeeeeffff")
        assert first.api.delete("/apis/v1/namespaces/default/services/dropped").status_code == 200
        revision = first.service("kept")["latest_revision"]
    finally:
        first.stop()

    second = GatewayProc(home, {})
    try:
        restored = second.service("kept")
        assert restored["latest_revision"] == revision
        assert second.api.get("/apis/v1/namespaces/default/services/dropped").status_code == 404
        answer = second.api.post("/default/kept/", json={"x": 1})
        assert answer.status_code == 200 and answer.json()["succeeded"] is True
    finally:
        second.stop()
