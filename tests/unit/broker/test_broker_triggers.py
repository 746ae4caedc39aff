"""Trigger spec parsing, ISO-8601 durations, the retry schedule and the retry decision."""

from __future__ import annotations

import pytest

from knative_lambda.errors import ConfigError
from knative_lambda.platform.broker.triggers import (
    PARALLELISM_ANNOTATION,
    Delivery,
    TriggerSpecError,
    backoff_delays,
    parse_duration,
    parse_trigger,
    should_retry,
    trigger_object,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("PT1S", 1.0),
        ("PT0.05S", 0.05),
        ("PT0,5S", 0.5),
        ("PT2M", 120.0),
        ("PT1H", 3600.0),
        ("PT1H30M", 5400.0),
        ("PT1M0.5S", 60.5),
        ("P1D", 86400.0),
        ("P1DT2H", 93600.0),
        ("P2W", 1209600.0),
        ("pt3s", 3.0),
        ("PT0S", 0.0),
    ],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text", ["", "P", "PT", "1S", "PT1", "P1Y", "P1M", "PT-1S", "PT1S2M", "P1W1D", "PTS", "T1S", "1.5", "PT1.S"]
)
def test_parse_duration_rejects(text):
    with pytest.raises(ConfigError):
        parse_duration(text)


def test_parse_duration_rejects_non_strings():
    with pytest.raises(ConfigError):
        parse_duration(1)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("delivery", "delays"),
    [
        (Delivery(retry=0), []),
        (Delivery(retry=3, backoff_policy="linear", backoff_delay=1.0), [1.0, 2.0, 3.0]),
        (Delivery(retry=4, backoff_policy="exponential", backoff_delay=1.0), [1.0, 2.0, 4.0, 8.0]),
        (Delivery(retry=5, backoff_policy="exponential", backoff_delay=0.05), [0.05, 0.1, 0.2, 0.4, 0.8]),
        (Delivery(retry=2, backoff_policy="linear", backoff_delay=0.0), [0.0, 0.0]),
        (Delivery(retry=1, backoff_policy="exponential", backoff_delay=0.2), [0.2]),
    ],
)
def test_backoff_delays(delivery, delays):
    assert backoff_delays(delivery) == pytest.approx(delays)


@pytest.mark.parametrize(
    ("status", "retry"),
    [
        (None, True),  # connection error / timeout
        (404, True),
        (408, True),
        (409, True),
        (429, True),
        (500, True),
        (502, True),
        (503, True),
        (504, True),
        (599, True),
        (400, False),
        (401, False),
        (403, False),
        (405, False),
        (410, False),
        (413, False),
        (415, False),
        (422, False),
        (499, False),
        (301, False),
    ],
)
def test_should_retry(status, retry):
    assert should_retry(status) is retry


def test_parse_full_trigger():
    obj = trigger_object(
        "t1", "http://127.0.0.1:1/x", broker="b1", namespace="ns1",
        attributes={"type": "a.b", "subject": ""},
        filters=[{"prefix": {"type": "a."}}],
        delivery={"retry": 5, "backoffPolicy": "linear", "backoffDelay": "PT0.5S",
                  "deadLetterSink": {"uri": "http://127.0.0.1:2/dead"}, "timeout": "PT3S"},
        parallelism=50,
    )
    spec = parse_trigger(obj, "ns1", "t1")
    assert spec.key == "ns1/t1" and spec.broker == "b1"
    assert spec.subscriber == "http://127.0.0.1:1/x"
    assert spec.attributes == {"type": "a.b", "subject": ""}
    assert spec.filters == [{"prefix": {"type": "a."}}]
    assert spec.delivery == Delivery(5, "linear", 0.5, "http://127.0.0.1:2/dead", 3.0)
    assert spec.parallelism == 50
    assert spec.matches({"type": "a.c"})  # filters win
    assert parse_trigger(obj, "ns1", "t1") == spec  # equal specs: PUT is idempotent


def test_defaults():
    spec = parse_trigger({"spec": {"broker": "default", "subscriber": {"uri": "http://h/"}}}, "default", "t")
    assert spec.parallelism == 1 and spec.delivery == Delivery()
    assert spec.describe_filter() == "*"
    assert spec.matches({"type": "anything"})


def test_subscriber_uri_as_plain_string_is_accepted():
    spec = parse_trigger({"spec": {"broker": "default", "subscriber": "http://h/"}}, "default", "t")
    assert spec.subscriber == "http://h/"


def test_every_problem_is_reported():
    obj = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "other", "annotations": {PARALLELISM_ANNOTATION: "zero"}},
        "spec": {
            "broker": "Bad_Name",
            "subscriber": {"ref": {"kind": "Service", "name": "x"}},
            "filter": {"attributes": {"type": 1}},
            "filters": [{"cesql": "x"}],
            "delivery": {"retry": -1, "backoffPolicy": "random", "backoffDelay": "1s",
                         "deadLetterSink": {"uri": "ftp://x"}},
        },
    }
    with pytest.raises(TriggerSpecError) as info:
        parse_trigger(obj, "default", "t1")
    wheres = [p["where"] for p in info.value.problem_dicts()]
    for expected in ["apiVersion", "kind", "metadata.name", "spec.broker", "spec.subscriber.ref",
                     "spec.filter.attributes.type", "spec.filters[0].cesql", "spec.delivery.retry",
                     "spec.delivery.backoffPolicy", "spec.delivery.backoffDelay",
                     "spec.delivery.deadLetterSink.uri",
                     f"metadata.annotations.{PARALLELISM_ANNOTATION}"]:
        assert expected in wheres, (expected, wheres)
    assert isinstance(info.value, ConfigError)


@pytest.mark.parametrize(
    ("obj", "where"),
    [
        ([], "body"),
        ({}, "spec"),
        ({"spec": {"broker": "default"}}, "spec.subscriber.uri"),
        ({"spec": {"subscriber": {"uri": "http://h/"}}}, "spec.broker"),
        ({"metadata": {"namespace": "x"}, "spec": {"broker": "default", "subscriber": "http://h/"}},
         "metadata.namespace"),
        ({"metadata": {"annotations": {PARALLELISM_ANNOTATION: "0"}},
          "spec": {"broker": "default", "subscriber": "http://h/"}},
         f"metadata.annotations.{PARALLELISM_ANNOTATION}"),
        ({"spec": {"broker": "default", "subscriber": "http://h/", "delivery": {"timeout": "PT0S"}}},
         "spec.delivery.timeout"),
    ],
)
def test_single_problems(obj, where):
    with pytest.raises(TriggerSpecError) as info:
        parse_trigger(obj, "default", "t1")
    assert where in [p["where"] for p in info.value.problem_dicts()]


def test_bad_url_names():
    with pytest.raises(TriggerSpecError) as info:
        parse_trigger({"spec": {"broker": "default", "subscriber": "http://h/"}}, "NS", "a_b")
    wheres = [p["where"] for p in info.value.problem_dicts()]
    assert wheres == ["metadata.name", "metadata.namespace"]
