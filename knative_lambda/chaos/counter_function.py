"""The counting function: deployed by chaos experiments, it records every delivery.

This file is uploaded as a function's source, so it imports nothing from the
project. The load generator puts the ledger's location in each event's data
(``{"ledger": "/abs/dir", "source": ..., "id": ...}``); every delivery appends
one line to ``<ledger>/processed.jsonl`` with a single write on an O_APPEND
descriptor, so concurrent instances never interleave lines. Duplicated
deliveries are recorded too: the ledger's balance dedupes. Without a ledger
(plain HTTP load) it just answers success.
"""

import json
import os
import time


def _data(event):
    # the wrapper may hand over the event's data, or the event as a dict or object
    if isinstance(event, dict):
        inner = event.get("data")
        return inner if isinstance(inner, dict) and "ledger" in inner else event
    data = getattr(event, "data", None)
    if data is None and hasattr(event, "get_data"):
        data = event.get_data()
    return data if isinstance(data, dict) else {}


def handle(event):
    data = _data(event)
    delay = float(data.get("work_s", 0) or 0)
    if delay > 0:
        time.sleep(min(delay, 5.0))  # simulated work, to let a queue build up
    ledger = data.get("ledger")
    if not ledger:  # plain HTTP load: nothing to record
        return {"succeeded": True, "contextId": str(data.get("seq", "")), "eventEntries": []}
    line = json.dumps({"source": data.get("source", ""), "id": data.get("id", ""),
                       "pid": os.getpid(), "at": time.time()}) + "\n"
    fd = os.open(os.path.join(ledger, "processed.jsonl"), os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
    return {"succeeded": True, "contextId": data.get("id", ""), "eventEntries": []}
