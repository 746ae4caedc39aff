"""The ingress workers' pure parts: how many (``KL_BROKER_INGRESS_WORKERS``) and which brokers a
worker knows (the default one and those of the stored triggers, on a real store directory)."""

from __future__ import annotations

import os

import pytest

from knative_lambda.errors import ConfigError
from knative_lambda.platform.broker.config import MAX_INGRESS_WORKERS, ingress_workers
from knative_lambda.platform.broker.store import TriggerStore
from knative_lambda.platform.broker.triggers import trigger_object
from knative_lambda.platform.broker.workers import KnownBrokers


@pytest.mark.parametrize(("raw", "cpus", "want"), [
    ("", 1, 0), ("", 2, 1), ("", 64, 1), ("  ", 4, 1),  # default: one worker given a second CPU
    ("0", 8, 0), ("1", 1, 1), ("3", 2, 3), (" 2 ", 2, 2), (str(MAX_INGRESS_WORKERS), 2, MAX_INGRESS_WORKERS),
])
def test_ingress_workers(raw: str, cpus: int, want: int) -> None:
    assert ingress_workers(raw, cpus) == want


@pytest.mark.parametrize(("raw", "reason"), [
    ("many", "not a whole number"), ("1.5", "not a whole number"), ("-1", "use 0"),
    (str(MAX_INGRESS_WORKERS + 1), "use 0"),
])
def test_ingress_workers_rejects(raw: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=f"KL_BROKER_INGRESS_WORKERS={raw!r}.*{reason}"):
        ingress_workers(raw, 2)


def test_a_worker_knows_the_default_broker_without_a_store(tmp_path) -> None:
    known = KnownBrokers(TriggerStore(tmp_path))
    assert known("default", "default")
    assert not known("default", "other") and not known("other", "default")


def test_a_worker_learns_the_brokers_of_stored_triggers_and_keeps_them(tmp_path) -> None:
    store = TriggerStore(tmp_path)
    known = KnownBrokers(store)
    assert not known("team", "orders")
    store.save("team", "t1", trigger_object("t1", "http://127.0.0.1:1/", broker="orders", namespace="team"))
    assert known("team", "orders")
    assert not known("default", "orders")  # a broker belongs to its namespace
    store.delete("team", "t1")
    os.utime(store.root, ns=(1, 1))  # a distinct stamp even within the file system's time resolution
    assert not known("team", "gone")  # a miss re-reads the store...
    assert known("team", "orders")  # ...and, as the broker, keeps a broker whose trigger went


def test_a_worker_skips_unreadable_or_invalid_stored_triggers(tmp_path) -> None:
    store = TriggerStore(tmp_path)
    store.root.mkdir(parents=True)
    (store.root / "team.bad.json").write_text("{not json")
    store.save("team", "odd", {"kind": "Trigger", "spec": {"subscriber": 5}})
    store.save("team", "ok", trigger_object("ok", "http://127.0.0.1:1/", broker="b2", namespace="team"))
    known = KnownBrokers(store)
    assert known("team", "b2")
    assert not known("team", "default")
