"""The ``type`` label of ``cloudevents_total``: the event type, bounded against hostile input."""

from __future__ import annotations

from knative_lambda.harness.headline import summarize
from knative_lambda.platform.broker.metrics import MAX_TYPE_CHARS, OTHER_TYPE, TypeLabels

TYPE = "network.notifi.lambda.parser.start"


def test_a_well_formed_type_is_its_own_label() -> None:
    labels = TypeLabels(limit=4)
    assert labels(TYPE) == TYPE
    assert labels(TYPE) == TYPE  # seen again: same value, no new slot
    assert labels("com.example.x-y_z") == "com.example.x-y_z"


def test_distinct_types_past_the_cap_go_to_other() -> None:
    labels = TypeLabels(limit=3)
    got = [labels(f"t.{i}") for i in range(100)]
    assert got[:3] == ["t.0", "t.1", "t.2"]
    assert set(got[3:]) == {OTHER_TYPE}
    assert labels("t.1") == "t.1"  # the first ones keep their label


def test_malformed_types_go_to_other_and_take_no_slot() -> None:
    labels = TypeLabels(limit=1)
    for hostile in ("", " ", "a\nb", 'x"}', "a" * (MAX_TYPE_CHARS + 1), "ünïcode", ".x", None, 7):
        assert labels(hostile) == OTHER_TYPE, hostile
    assert labels(TYPE) == TYPE  # the slot is still free


def test_headline_sums_over_types() -> None:
    text = """\
# TYPE cloudevents_total counter
cloudevents_total{namespace="default",broker="default",trigger="",outcome="published",type="a.x"} 4.0
cloudevents_total{namespace="default",broker="default",trigger="",outcome="published",type="other"} 3.0
cloudevents_total{namespace="default",broker="default",trigger="",outcome="rejected",type=""} 9.0
cloudevents_total{namespace="default",broker="default",trigger="t",outcome="delivered",type="a.x"} 2.0
"""
    assert summarize("broker", text) == {"published": 7, "delivered": 2, "retried": 0, "dead-lettered": 0}
