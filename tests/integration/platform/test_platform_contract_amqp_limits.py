"""The contract's attribute limits fit what a real RabbitMQ carries.

An event right at every limit (255-byte id, 4 KiB extensions up to the 64 KiB
total) is valid, so it must also publish (confirmed) and come back equal; one
byte more is a ContractError, not a frame error that closes the connection.
"""

from __future__ import annotations

import uuid

import aio_pika
import pytest

from knative_lambda.contract import ContractError, from_amqp, to_amqp, validate
from knative_lambda.contract.bindings import event_from_dict
from knative_lambda.contract.validation import (
    MAX_ATTRIBUTE_BYTES,
    MAX_ATTRIBUTES_BYTES,
    MAX_SHORT_ATTRIBUTE_BYTES,
)

P = "network.notifi.lambda"


def at_the_limits() -> dict[str, object]:
    doc: dict[str, object] = {
        "specversion": "1.0", "id": "i" * MAX_SHORT_ATTRIBUTE_BYTES, "source": "network.notifi.acme",
        "type": f"{P}.parser.start", "subject": "parser-1", "data": {"x": 1},
    }
    used = sum(len(k) + len(str(v)) for k, v in doc.items() if k != "data")
    n = 0
    while used + 8 + MAX_ATTRIBUTE_BYTES <= MAX_ATTRIBUTES_BYTES:
        doc[f"ext{n:05d}"] = "v" * MAX_ATTRIBUTE_BYTES
        used += 8 + MAX_ATTRIBUTE_BYTES
        n += 1
    return doc


async def test_an_event_at_every_limit_publishes_and_round_trips(amqp_url: str) -> None:
    event = validate(at_the_limits(), P).event
    headers, body, content_type = to_amqp(event)
    connection = await aio_pika.connect(amqp_url, timeout=10)
    try:
        channel = await connection.channel(publisher_confirms=True)
        queue = await channel.declare_queue(f"kl-limits-{uuid.uuid4().hex[:8]}", auto_delete=True)
        await channel.default_exchange.publish(
            aio_pika.Message(body, headers=headers, content_type=content_type, message_id=str(event.get_id())),
            routing_key=queue.name,
        )
        message = await queue.get(timeout=10)
        await message.ack()
        back = validate(from_amqp(message.headers, message.body, message.content_type), P).event
        sent = event.get_attributes()
        assert {k: v for k, v in back.get_attributes().items() if k in sent} == sent
        assert back.get_data() == event.get_data()
        assert not connection.is_closed  # no frame error
    finally:
        await connection.close()


@pytest.mark.parametrize("change", ["id", "extension", "total"])
def test_one_byte_more_is_a_contract_error(change: str) -> None:
    doc = at_the_limits()
    if change == "id":
        doc["id"] = "i" * (MAX_SHORT_ATTRIBUTE_BYTES + 1)
    elif change == "extension":
        doc["ext00000"] = "v" * (MAX_ATTRIBUTE_BYTES + 1)
    else:  # fill what is left, plus one byte, in extensions each within their own limit
        left = MAX_ATTRIBUTES_BYTES - sum(len(k) + len(str(v)) for k, v in doc.items() if k != "data")
        doc["extraa"] = "v" * (left // 2)
        doc["extrab"] = "v" * (left - left // 2 - 12 + 1)
    with pytest.raises(ContractError) as info:
        event_from_dict(doc)
    assert len(info.value.problems) == 1
    assert {"id": "attribute id", "extension": "attribute ext00000", "total": "attributes"}[change] == \
        info.value.problems[0].where
