"""Receiver-side dedupe on (source, id), bounded in memory.

Delivery is at-least-once, so a receiver sees some events twice (a redelivery
after a broker restart, a retry whose first attempt did succeed). Remembering
the last ``capacity`` keys is enough: a duplicate arrives soon after the original.
"""

from __future__ import annotations

from collections import OrderedDict


class Dedupe:
    """``first_time(source, id)`` is True once per key among the last ``capacity`` keys."""

    def __init__(self, capacity: int = 100_000) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self.duplicates = 0

    def first_time(self, source: str, event_id: str) -> bool:
        key = (source, event_id)
        if key in self._seen:
            self._seen.move_to_end(key)  # a key still being redelivered stays remembered
            self.duplicates += 1
            return False
        self._seen[key] = None
        if len(self._seen) > self.capacity:
            self._seen.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._seen
