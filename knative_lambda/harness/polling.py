"""Wait for a condition: the one deadline loop the harness, targets and probes share."""

from __future__ import annotations

import time
from collections.abc import Callable


def poll(check: Callable[[], object], wait_s: float, *, interval: float = 0.2,
         ignore: tuple[type[BaseException], ...] = ()) -> bool:
    """True as soon as ``check()`` is truthy, False once ``wait_s`` has passed.

    ``check`` runs at least once (``wait_s=0`` is a plain check); exceptions of the
    types in ``ignore`` count as "not yet" (a part still coming back up).
    """
    deadline = time.monotonic() + wait_s
    while True:
        try:
            if check():
                return True
        except ignore:
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
