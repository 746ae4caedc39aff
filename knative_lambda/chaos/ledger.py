"""The events ledger: what the load generator sent against what the function processed.

Two append-only JSON-lines files in one directory:

    sent.jsonl       {"source": ..., "id": ...}   written by the load generator once the
                                                  broker ingress accepted the event (202)
    processed.jsonl  {"source": ..., "id": ...}   written by the counting function for every
                                                  delivery it sees (duplicates included)

Delivery is at-least-once and receivers dedupe on (source, id), so the verdict
(:func:`balance`) counts *distinct* keys: an event is lost when it was sent and
never processed, duplicated when it was processed more than once. Duplicates
are reported, never a loss. Lines are written with one ``write`` on an
``O_APPEND`` descriptor, so concurrent writers (several instances of the
function) do not interleave; a torn last line (a writer killed mid-write) is
skipped when reading.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

Key = tuple[str, str]  # (source, id)
SENT = "sent.jsonl"
PROCESSED = "processed.jsonl"
SAMPLE = 20  # ids listed in a balance, enough to look a few up in the logs


@dataclass(frozen=True)
class Balance:
    sent: int  # distinct events the broker accepted
    processed_once: int  # distinct sent events processed at least once
    lost: int  # sent, never processed
    duplicated: int  # distinct events processed more than once
    deliveries: int  # processed lines in total (duplicates included)
    unexpected: int  # processed but never recorded as sent (e.g. a publish that timed out)
    lost_sample: tuple[str, ...] = ()

    @property
    def balanced(self) -> bool:
        return self.lost == 0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["lost_sample"] = list(self.lost_sample)
        data["balanced"] = self.balanced
        return data


def balance(sent: Iterable[Key], processed: Iterable[Key]) -> Balance:
    """Compare the two sides of the ledger (pure)."""
    sent_keys = list(dict.fromkeys(sent))  # distinct, in sending order
    counts = Counter(processed)
    sent_set = set(sent_keys)
    lost = [key for key in sent_keys if key not in counts]
    return Balance(
        sent=len(sent_keys),
        processed_once=len(sent_keys) - len(lost),
        lost=len(lost),
        duplicated=sum(1 for n in counts.values() if n > 1),
        deliveries=sum(counts.values()),
        unexpected=sum(1 for key in counts if key not in sent_set),
        lost_sample=tuple(f"{s} {i}" for s, i in lost[:SAMPLE]),
    )


def append_line(path: Path | str, record: dict[str, Any]) -> None:
    """Append one JSON line atomically (one write on an O_APPEND descriptor)."""
    line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def read_keys(path: Path) -> list[Key]:
    """The (source, id) keys of a ledger file; a missing file is empty, torn lines are skipped."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    keys = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
            keys.append((str(record["source"]), str(record["id"])))
        except (ValueError, KeyError, TypeError):
            continue
    return keys


class Ledger:
    """One ledger directory (absolute: the counting function writes to it too).

    The counting function runs as an instance user of its own (the platform gives
    up root for function code), which may not enter the chaos directory. So
    :meth:`reset` puts the files in a fresh private-named directory under the
    system temp dir that other users may write to but not list, and leaves a
    symlink to it at the ledger's path.
    """

    def __init__(self, directory: Path | str) -> None:
        self.link = Path(directory).absolute()
        self.directory = self.link.resolve()

    @property
    def sent_path(self) -> Path:
        return self.directory / SENT

    @property
    def processed_path(self) -> Path:
        return self.directory / PROCESSED

    def reset(self) -> Ledger:
        """Start empty (a previous run's entries would falsify the balance)."""
        shutil.rmtree(self.directory, ignore_errors=True)
        if self.link.is_symlink():
            self.link.unlink()
        box = Path(tempfile.mkdtemp(prefix="kl-ledger-"))  # unguessable: no symlink games in /tmp
        for name, mode in ((SENT, 0o600), (PROCESSED, 0o622)):  # any instance user may append
            (box / name).touch()
            (box / name).chmod(mode)
        box.chmod(0o733)  # enter and create, not list
        self.link.parent.mkdir(parents=True, exist_ok=True)
        self.link.symlink_to(box, target_is_directory=True)
        self.directory = box
        return self

    def record_sent(self, source: str, event_id: str) -> None:
        append_line(self.sent_path, {"source": source, "id": event_id})

    def record_processed(self, source: str, event_id: str) -> None:
        append_line(self.processed_path, {"source": source, "id": event_id})

    def balance(self) -> Balance:
        return balance(read_keys(self.sent_path), read_keys(self.processed_path))
