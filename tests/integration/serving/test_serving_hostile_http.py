"""A real gateway process against bodies that do not decode: a 400 JSON error, never a 500."""

from __future__ import annotations

import httpx

from .conftest import HELLO_HANDLER, make_artifact

GARBAGE = {"Content-Encoding": "gzip", "Content-Type": "application/json"}


def test_management_put_with_an_undecodable_body_is_a_400(gateway) -> None:
    r = gateway.api.put("/apis/v1/namespaces/default/services/hostile-gz", content=b"not gzip", headers=GARBAGE)
    assert r.status_code == 400, r.text
    assert r.json()["problems"] == [{"where": "body",
                                     "reason": "not JSON: it does not decode with its Content-Encoding"}]
    assert gateway.api.get("/apis/v1/services").status_code == 200  # the API is fine afterwards


def test_unknown_management_method_is_a_json_405(gateway) -> None:
    r = gateway.api.post("/apis/v1/namespaces/default/services/hostile-x", json={})
    assert r.status_code in (404, 405)
    assert r.headers["content-type"].startswith("application/json") and r.json()["error"]


def test_data_plane_request_with_an_undecodable_body_is_a_400(gateway, artifacts) -> None:
    gateway.deploy("hostile-gz-fn", make_artifact(artifacts, "hostile-gz-fn", HELLO_HANDLER))
    url = f"{gateway.url}/default/hostile-gz-fn/"
    bad = httpx.post(url, content=b"not gzip at all", headers=GARBAGE, timeout=30)
    assert bad.status_code == 400, bad.text  # said by the instance: the gateway passes bodies on as sent
    assert bad.json() == {"succeeded": False,
                          "errorMessage": "request body cannot be read: Can not decode content-encoding: gzip"}
    good = httpx.post(url, json={"x": 1}, timeout=30)
    assert good.status_code == 200 and good.json()["eventEntries"] == [{"hello": {"x": 1}}]
    assert "Traceback" not in (gateway.tmp / "data" / "logs" / "instances.log").read_text()
