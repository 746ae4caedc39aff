"""Contract violations: every problem with an event or a name, not just the first.

A producer that sends a bad event gets one error listing everything wrong with
it, so one round trip is enough to fix it (the broker returns ``to_dict()`` as
its 400 body).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from knative_lambda.errors import KLError


@dataclass(frozen=True)
class Problem:
    """One thing wrong: ``where`` names the place ("attribute source",
    "data.priority", "body"), ``reason`` says what is wrong there."""

    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"

    def to_dict(self) -> dict[str, str]:
        return {"where": self.where, "reason": self.reason}


class ContractError(KLError):
    """An event or value breaks the contract; ``problems`` lists every violation."""

    def __init__(self, problems: Iterable[Problem], what: str = "invalid event") -> None:
        self.problems: list[Problem] = list(problems)
        self.what = what
        listed = "; ".join(str(p) for p in self.problems) or "no details"
        super().__init__(f"{what}: {listed}")

    def to_dict(self) -> dict[str, Any]:
        """The JSON body an HTTP edge returns with a 400."""
        return {"error": str(self), "problems": [p.to_dict() for p in self.problems]}
