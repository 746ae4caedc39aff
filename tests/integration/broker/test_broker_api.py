"""The trigger API and the token, over real HTTP."""

from __future__ import annotations

import httpx
import pytest

from knative_lambda.errors import ConfigError
from knative_lambda.platform.broker.client import BrokerClient
from knative_lambda.platform.broker.triggers import trigger_object

from .conftest import parser_event, unique_name


def test_put_is_idempotent_and_update_changes_the_filter(broker, receivers):
    client = broker.client()
    name = unique_name()
    obj = trigger_object(name, "http://127.0.0.1:1/", attributes={"type": "a.b"})
    url = f"{broker.url}/apis/v1/namespaces/default/triggers/{name}"
    assert httpx.put(url, json=obj).status_code == 201
    assert httpx.put(url, json=obj).status_code == 200
    obj2 = trigger_object(name, "http://127.0.0.1:1/", filters=[{"prefix": {"type": "a."}}],
                          parallelism=7)
    info = client.put_trigger(obj2)
    assert info["parallelism"] == 7 and info["filter"] == '[{"prefix":{"type":"a."}}]'
    listed = {t["name"]: t for t in client.list_triggers()}
    assert listed[name]["queue_depth"] == 0
    for key in ("broker", "filter", "subscriber", "delivered", "retried", "dead_lettered"):
        assert key in listed[name]
    assert client.delete_trigger(name)


def test_invalid_trigger_gets_400_with_problems(broker):
    r = httpx.put(f"{broker.url}/apis/v1/namespaces/default/triggers/t-bad",
                  json={"spec": {"broker": "default", "subscriber": {"uri": "nope"},
                                 "delivery": {"backoffDelay": "soon"}}})
    assert r.status_code == 400
    assert {p["where"] for p in r.json()["problems"]} == {
        "spec.subscriber.uri", "spec.delivery.backoffDelay"}
    r = httpx.put(f"{broker.url}/apis/v1/namespaces/default/triggers/t-bad", content=b"{")
    assert r.status_code == 400
    with pytest.raises(ConfigError):
        broker.client().put_trigger({"metadata": {"name": "x"}, "spec": {}})


async def test_token_protects_ingress_and_api(start_broker):
    bp = start_broker(token="s3cret")
    r = httpx.get(f"{bp.url}/apis/v1/triggers")
    assert r.status_code == 401
    assert httpx.get(f"{bp.url}/healthz").status_code == 200
    with pytest.raises(ConfigError):
        BrokerClient(bp.url, "wrong").list_triggers()
    client = BrokerClient(bp.url, "s3cret")
    assert client.list_triggers() == []
    assert await client.publish(parser_event()) != ""
    await client.aclose()


def test_metrics_count_events(broker):
    client = broker.client()
    client.publish_sync(parser_event())
    text = httpx.get(f"{broker.url}/metrics").text
    assert 'cloudevents_total{broker="default",namespace="default",outcome="published",trigger=""}' in text
