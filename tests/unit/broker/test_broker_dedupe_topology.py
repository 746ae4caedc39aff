"""Dedupe bound and RabbitMQ naming."""

from __future__ import annotations

import pytest

from knative_lambda.contract.dedupe import Dedupe
from knative_lambda.platform.broker import topology


def test_dedupe_first_time_then_duplicate():
    d = Dedupe(10)
    assert d.first_time("s", "1") is True
    assert d.first_time("s", "1") is False
    assert d.first_time("other", "1") is True  # the key is (source, id)
    assert d.duplicates == 1 and len(d) == 2


def test_dedupe_is_bounded_and_forgets_the_oldest():
    d = Dedupe(3)
    for i in range(5):
        assert d.first_time("s", str(i))
    assert len(d) == 3
    assert ("s", "0") not in d and ("s", "1") not in d
    assert d.first_time("s", "0") is True  # forgotten: seen as new
    assert d.first_time("s", "4") is False


def test_dedupe_a_repeated_key_stays_remembered():
    d = Dedupe(2)
    d.first_time("s", "a")
    d.first_time("s", "b")
    d.first_time("s", "a")  # duplicate refreshes "a"
    d.first_time("s", "c")  # evicts "b", not "a"
    assert ("s", "a") in d and ("s", "b") not in d


def test_dedupe_capacity_must_be_positive():
    with pytest.raises(ValueError):
        Dedupe(0)


def test_names():
    assert topology.exchange_name("default", "default") == "kl.broker.default.default"
    q = topology.queue_name("ns", "b", "t")
    assert q == "kl.broker.ns.b.trigger.t"
    assert topology.dlq_name("ns", "b", "t") == q + ".dlq"


@pytest.mark.parametrize(
    ("event_type", "key"),
    [(None, "#"), ("", "#"), ("a.b.c", "a.b.c"), ("a.*.c", "#"), ("a.#", "#")],
)
def test_binding_key(event_type, key):
    assert topology.binding_key(event_type) == key
