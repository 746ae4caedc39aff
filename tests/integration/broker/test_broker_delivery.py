"""Ingress -> RabbitMQ -> trigger -> HTTP receiver, against a real broker process."""

from __future__ import annotations

import asyncio
import base64

import aio_pika
import httpx
import pytest

from knative_lambda.contract.bindings import from_amqp, to_http
from knative_lambda.contract.errors import ContractError
from knative_lambda.contract.events import EventKind, FunctionResult
from knative_lambda.contract.factory import new_event
from knative_lambda.platform.broker import topology
from knative_lambda.platform.broker.triggers import trigger_object

from .conftest import parser_event, unique_name

pytestmark = pytest.mark.asyncio(loop_scope="function")


async def _dlq_messages(amqp_url: str, queue: str, expect: int, timeout: float = 10) -> list:
    conn = await aio_pika.connect(amqp_url)
    out = []
    async with conn:
        ch = await conn.channel()
        q = await ch.declare_queue(queue, passive=True)
        for _ in range(int(timeout / 0.1)):
            msg = await q.get(fail=False)
            if msg is None:
                if len(out) >= expect:
                    break
                await asyncio.sleep(0.1)
                continue
            await msg.ack()
            out.append(from_amqp(dict(msg.headers), msg.body, msg.content_type))
    return out


async def test_event_is_delivered_in_binary_mode_to_a_matching_trigger(broker, receivers):
    rec = await receivers()
    client = broker.client()
    parser = unique_name("p")
    client.put_trigger(trigger_object(unique_name(), rec.url, attributes={"subject": parser}))
    other = parser_event(unique_name("x"))
    ev = parser_event(parser)
    assert await client.publish(other) == other.get_id()
    assert await client.publish(ev) == ev.get_id()
    await rec.wait_for(lambda r: len(r.unique) == 1)
    got = rec.unique[0]
    assert got.get_id() == ev.get_id() and got.get_data() == {"n": 1}
    await asyncio.sleep(0.3)
    assert [e.get_id() for _, e in rec.attempts] == [ev.get_id()]  # the other was filtered
    await client.aclose()


async def test_retries_follow_the_delivery_spec_then_dead_letter(broker, receivers, amqp_url):
    rec = await receivers(default_status=503)
    client = broker.client()
    name, parser = unique_name(), unique_name("p")
    client.put_trigger(trigger_object(
        name, rec.url, attributes={"subject": parser},
        delivery={"retry": 3, "backoffPolicy": "linear", "backoffDelay": "PT0.05S"}))
    ev = parser_event(parser)
    await client.publish(ev)
    await rec.wait_for(lambda r: len(r.attempts) == 4)
    dead = await _dlq_messages(amqp_url, topology.dlq_name("default", "default", name), 1)
    assert [d.get_id() for d in dead] == [ev.get_id()]
    d = dead[0]
    assert d.get_extension("knativeerrorcode") == "503"
    assert d.get_extension("knativeerrordest") == rec.url
    assert base64.b64decode(d.get_extension("knativeerrordata")) == b"status 503"
    assert d.get_data() == ev.get_data()
    # Each retry waited at least its linear backoff (0.05, 0.10, 0.15 s): a lower
    # bound is behaviour; how much longer it took is the machine's business.
    times = [t for t, _ in rec.attempts]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert all(g >= want - 0.005 for g, want in zip(gaps, (0.05, 0.10, 0.15), strict=True)), gaps
    info = client.get_trigger(name)
    assert (info["retried"], info["dead_lettered"], info["delivered"]) == (3, 1, 0)
    await client.aclose()


async def test_client_errors_are_not_retried(broker, receivers, amqp_url):
    rec = await receivers(default_status=400)
    client = broker.client()
    name, parser = unique_name(), unique_name("p")
    client.put_trigger(trigger_object(
        name, rec.url, attributes={"subject": parser},
        delivery={"retry": 5, "backoffDelay": "PT0.05S"}))
    ev = parser_event(parser)
    await client.publish(ev)
    dead = await _dlq_messages(amqp_url, topology.dlq_name("default", "default", name), 1)
    assert [d.get_extension("knativeerrorcode") for d in dead] == ["400"]
    assert len(rec.attempts) == 1
    await client.aclose()


async def test_retriable_statuses_recover_without_dead_letter(broker, receivers):
    rec = await receivers(statuses=[404, 409, 429, 500])
    client = broker.client()
    name, parser = unique_name(), unique_name("p")
    client.put_trigger(trigger_object(
        name, rec.url, attributes={"subject": parser},
        delivery={"retry": 4, "backoffPolicy": "exponential", "backoffDelay": "PT0.02S"}))
    await client.publish(parser_event(parser))
    await rec.wait_for(lambda r: len(r.unique) == 1)
    assert len(rec.attempts) == 5
    times = [t for t, _ in rec.attempts]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert all(g >= want - 0.005 for g, want in zip(gaps, (0.02, 0.04, 0.08, 0.16), strict=True)), gaps
    info = client.get_trigger(name)
    assert (info["retried"], info["delivered"], info["dead_lettered"]) == (4, 1, 0)
    await client.aclose()


async def test_dead_letter_sink_receives_the_failed_event(broker, receivers):
    rec = await receivers(default_status=500)
    sink = await receivers()
    client = broker.client()
    parser = unique_name("p")
    client.put_trigger(trigger_object(
        unique_name(), rec.url, attributes={"subject": parser},
        delivery={"retry": 1, "backoffDelay": "PT0.01S", "deadLetterSink": {"uri": sink.url}}))
    ev = parser_event(parser)
    await client.publish(ev)
    await sink.wait_for(lambda r: len(r.unique) == 1)
    dead = sink.unique[0]
    assert dead.get_id() == ev.get_id()
    assert dead.get_extension("knativeerrorcode") == "500"
    assert dead.get_extension("knativeerrordest") == rec.url
    await client.aclose()


async def test_connection_errors_are_retried_and_dead_lettered(broker, amqp_url):
    client = broker.client()
    name, parser = unique_name(), unique_name("p")
    client.put_trigger(trigger_object(
        name, "http://127.0.0.1:9/", attributes={"subject": parser},
        delivery={"retry": 2, "backoffDelay": "PT0.01S"}))
    await client.publish(parser_event(parser))
    dead = await _dlq_messages(amqp_url, topology.dlq_name("default", "default", name), 1)
    assert dead[0].get_extension("knativeerrorcode") == "0"
    assert client.get_trigger(name)["retried"] == 2
    await client.aclose()


async def test_reply_is_published_back_to_the_broker(broker, receivers):
    def reply(event):
        return new_event(EventKind.PROCESSED, FunctionResult.ok([{"x": 1}]),
                         source="fn", subject=event.get_subject())

    parser = unique_name("p")
    fn = await receivers(reply=reply)
    results = await receivers()
    client = broker.client()
    client.put_trigger(trigger_object(unique_name(), fn.url, filters=[
        {"exact": {"subject": parser}}, {"suffix": {"type": ".parser.start"}}]))
    client.put_trigger(trigger_object(unique_name(), results.url, filters=[
        {"all": [{"exact": {"subject": parser}}, {"prefix": {"type": "network.notifi.lambda.proc"}}]}]))
    await client.publish(parser_event(parser))
    await results.wait_for(lambda r: len(r.unique) == 1)
    assert results.unique[0].get_type() == "network.notifi.lambda.processed"
    assert results.unique[0].get_data()["succeeded"] is True
    assert results.unique[0].get_extension("knativebrokerttl") == "254"
    await client.aclose()


async def test_parallelism_is_honoured(broker, receivers):
    rec = await receivers(delay=0.5)
    client = broker.client()
    parser = unique_name("p")
    client.put_trigger(trigger_object(unique_name(), rec.url, attributes={"subject": parser},
                                      parallelism=4))
    await asyncio.gather(*(client.publish(parser_event(parser)) for _ in range(16)))
    await rec.wait_for(lambda r: len(r.unique) == 16)
    assert rec.max_inflight == 4
    await client.aclose()


async def test_each_event_is_delivered_once_when_deliveries_finish_out_of_order(broker, receivers):
    """Acks are coalesced (acks.py); acking a tag twice would close the channel and RabbitMQ
    would deliver every unacked event again."""
    rec = await receivers(jitter=0.05)
    client = broker.client()
    parser = unique_name("p")
    client.put_trigger(trigger_object(unique_name(), rec.url, attributes={"subject": parser},
                                      parallelism=20))
    await asyncio.gather(*(client.publish(parser_event(parser)) for _ in range(300)))
    await rec.wait_for(lambda r: len(r.unique) == 300, timeout=60)
    await asyncio.sleep(1.0)  # a closed channel's redeliveries would arrive by now
    assert len(rec.attempts) == 300
    assert "PRECONDITION_FAILED" not in broker.log_text()
    await client.aclose()


async def test_malformed_events_are_rejected_with_every_reason(broker, receivers):
    rec = await receivers()
    client = broker.client()
    client.put_trigger(trigger_object(unique_name(), rec.url, filters=[{"prefix": {"type": ""}}]))
    async with httpx.AsyncClient() as http:
        # binary mode, contract problems: bad source, bad subject, bad correlation id
        r = await http.post(f"{broker.url}/default/default", content=b'{"a":1}', headers={
            "ce-specversion": "1.0", "ce-id": "1", "ce-type": "network.notifi.lambda.parser.start",
            "ce-source": "somewhere", "ce-subject": "Not A Label",
            "ce-correlationid": "not-a-uuid", "content-type": "application/json"})
        assert r.status_code == 400
        where = {p["where"] for p in r.json()["problems"]}
        assert {"attribute source", "attribute subject", "attribute correlationid"} <= where, r.json()
        # envelope problems: no id, no source
        r = await http.post(f"{broker.url}/default/default", content=b'{"a":1}', headers={
            "ce-specversion": "1.0", "ce-type": "network.notifi.lambda.parser.start",
            "content-type": "application/json"})
        assert r.status_code == 400
        assert {"attribute id", "attribute source"} <= {p["where"] for p in r.json()["problems"]}
        # structured mode: broken JSON
        r = await http.post(f"{broker.url}/default/default", content=b"{nope",
                            headers={"content-type": "application/cloudevents+json"})
        assert r.status_code == 400 and r.json()["problems"]
        # too large
        big = parser_event(data={"blob": "x" * (1024 * 1024 + 10)})
        headers, body = to_http(big, "binary")
        r = await http.post(f"{broker.url}/default/default", content=body, headers=headers)
        assert r.status_code == 413
        # unknown broker
        headers, body = to_http(parser_event(), "structured")
        r = await http.post(f"{broker.url}/default/nope", content=body, headers=headers)
        assert r.status_code == 404
    with pytest.raises(ContractError):
        await client.publish(parser_event(tp="Not_Valid"))
    await asyncio.sleep(0.5)
    assert rec.attempts == []  # nothing was published
    await client.aclose()


async def test_a_message_that_is_not_a_cloudevent_is_dead_lettered_not_dropped(broker, receivers, amqp_url):
    rec = await receivers()
    client = broker.client()
    name = unique_name()
    client.put_trigger(trigger_object(name, rec.url))  # no filter: bound with '#'
    conn = await aio_pika.connect(amqp_url)
    async with conn:
        ch = await conn.channel()
        ex = await ch.get_exchange(topology.exchange_name("default", "default"))
        await ex.publish(aio_pika.Message(b"not an event", headers={"x": "1"},
                                          delivery_mode=aio_pika.DeliveryMode.PERSISTENT), "junk")
        q = await ch.declare_queue(topology.dlq_name("default", "default", name), passive=True)
        for _ in range(100):
            msg = await q.get(fail=False)
            if msg is not None:
                break
            await asyncio.sleep(0.1)
        assert msg is not None and msg.body == b"not an event"
        assert msg.headers["knativeerrorcode"] == "0"
        assert b"not a CloudEvent" in base64.b64decode(msg.headers["knativeerrordata"])
        await msg.ack()
    assert rec.attempts == []
    client.delete_trigger(name)
    await client.aclose()


async def test_a_reply_loop_ends_when_the_hop_budget_is_spent(broker, receivers):
    parser = unique_name("p")

    def echo(event):  # answers every event with one it matches again
        return new_event(EventKind.PARSER_START, {"hop": 1}, source="network.notifi.acme",
                         subject=event.get_subject())

    loop = await receivers(reply=echo)
    client = broker.client()
    client.put_trigger(trigger_object(unique_name(), loop.url, attributes={"subject": parser},
                                      parallelism=1))
    await client.publish(parser_event(parser))
    await loop.wait_for(lambda r: len(r.unique) == 255, timeout=60)  # the original + 254 replies
    await asyncio.sleep(0.5)
    assert len(loop.unique) == 255
    assert loop.unique[-1].get_extension("knativebrokerttl") == "1"
    await client.aclose()
