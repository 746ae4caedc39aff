"""The events ledger: the pure balance, and its files written by concurrent writers."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from knative_lambda.chaos import counter_function
from knative_lambda.chaos.ledger import Ledger, append_line, balance, read_keys

A, B, C, D = ("s", "a"), ("s", "b"), ("s", "c"), ("s", "d")


@pytest.mark.parametrize(
    ("sent", "processed", "expected"),
    [
        # sent, processed_once, lost, duplicated, deliveries, unexpected
        ([], [], (0, 0, 0, 0, 0, 0)),
        ([A, B, C], [A, B, C], (3, 3, 0, 0, 3, 0)),
        ([A, B, C], [C, A, B], (3, 3, 0, 0, 3, 0)),  # order does not matter
        ([A, B, C], [A, C], (3, 2, 1, 0, 2, 0)),
        ([A, B, C], [], (3, 0, 3, 0, 0, 0)),
        ([A, B], [A, A, B, B, B], (2, 2, 0, 2, 5, 0)),  # duplicates are not losses
        ([A, B], [A, A], (2, 1, 1, 1, 2, 0)),
        ([A], [A, D], (1, 1, 0, 0, 2, 1)),  # processed but never recorded as sent
        ([A, A, B], [A, B], (2, 2, 0, 0, 2, 0)),  # a key sent twice counts once
        ([("x", "1"), ("y", "1")], [("x", "1")], (2, 1, 1, 0, 1, 0)),  # source is part of the key
    ],
)
def test_balance(sent: list, processed: list, expected: tuple) -> None:
    b = balance(sent, processed)
    assert (b.sent, b.processed_once, b.lost, b.duplicated, b.deliveries, b.unexpected) == expected
    assert b.balanced is (b.lost == 0)
    assert b.sent == b.processed_once + b.lost


def test_balance_lists_a_sample_of_lost_ids_in_sending_order() -> None:
    sent = [("s", str(i)) for i in range(100)]
    b = balance(sent, sent[:50])
    assert b.lost == 50
    assert b.lost_sample[:2] == ("s 50", "s 51")
    assert len(b.lost_sample) == 20
    assert b.to_dict()["balanced"] is False


def test_ledger_files_round_trip_and_reset(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l").reset()
    ledger.record_sent("s", "1")
    ledger.record_sent("s", "2")
    ledger.record_processed("s", "1")
    assert ledger.balance().lost == 1
    ledger.reset()
    assert ledger.balance().sent == 0


def test_read_keys_skips_torn_and_foreign_lines(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"source":"s","id":"1"}\n{"source":"s"}\nnot json\n{"source":"s","id":"2"}\n{"sou')
    assert read_keys(path) == [("s", "1"), ("s", "2")]
    assert read_keys(tmp_path / "missing.jsonl") == []


def test_concurrent_appends_never_interleave(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"

    def write(worker: int) -> None:
        for i in range(200):
            append_line(path, {"source": f"w{worker}", "id": str(i), "pad": "x" * 200})

    threads = [threading.Thread(target=write, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = path.read_text().splitlines()
    assert len(lines) == 1600
    assert all(json.loads(line)["pad"] == "x" * 200 for line in lines)


@pytest.mark.parametrize("wrap", [
    lambda data: data,  # the wrapper hands over the data
    lambda data: {"id": "x", "data": data},  # the event as a dict
    lambda data: type("Ev", (), {"data": data})(),  # an object with .data
    lambda data: type("Ev", (), {"data": None, "get_data": lambda self: data})(),  # SDK-like
])
def test_counting_function_records_each_delivery(tmp_path: Path, wrap) -> None:
    ledger = Ledger(tmp_path / "l").reset()
    ledger.record_sent("network.notifi.t", "e1")
    data = {"ledger": str(ledger.directory), "source": "network.notifi.t", "id": "e1"}
    assert counter_function.handle(wrap(data))["succeeded"] is True
    counter_function.handle(wrap(data))  # a redelivery
    b = ledger.balance()
    assert (b.lost, b.duplicated, b.deliveries) == (0, 1, 2)


def test_counting_function_without_a_ledger_just_succeeds() -> None:
    assert counter_function.handle({"seq": 3}) == {"succeeded": True, "contextId": "3",
                                                    "eventEntries": []}


def test_reset_puts_the_files_where_any_instance_user_can_append(tmp_path) -> None:
    import stat

    first = Ledger(tmp_path / "chaos" / "l").reset()
    first.record_sent("s", "1")
    box = first.directory
    assert (tmp_path / "chaos" / "l").is_symlink() and (tmp_path / "chaos" / "l").resolve() == box
    assert stat.S_IMODE(box.stat().st_mode) == 0o733  # others enter and create, not list
    assert stat.S_IMODE(first.processed_path.stat().st_mode) == 0o622
    again = Ledger(tmp_path / "chaos" / "l")  # another process finds the same files by name
    assert again.directory == box and again.balance().sent == 1
    fresh = again.reset()
    assert fresh.balance().sent == 0 and not box.exists() and fresh.directory != box
