"""Which tenant (third_party_id) a service belongs to, and what it holds (pure).

The deployer labels each service ``lambda.notifi.network/third-party-id``; a
direct API caller may say ``"tenant"`` in the PUT body. A service without a
tenant counts against no tenant quota.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

TENANT_LABEL = "lambda.notifi.network/third-party-id"


def tenant_of(doc: Any) -> str:
    """The tenant named by a PUT body, or "" (pure)."""
    if not isinstance(doc, Mapping):
        return ""
    tenant = doc.get("tenant")
    if not isinstance(tenant, str) or not tenant:
        labels = doc.get("labels")
        tenant = labels.get(TENANT_LABEL, "") if isinstance(labels, Mapping) else ""
    return tenant[:253] if isinstance(tenant, str) else ""


def services_of(tenants: Mapping[tuple[str, str], str], tenant: str,
                existing: Iterable[tuple[str, str]]) -> int:
    """How many of the ``existing`` services belong to ``tenant``."""
    return sum(1 for key in existing if tenants.get(key) == tenant)


def instance_room(limit: int, in_use: int, wanted: int) -> int:
    """How many of ``wanted`` new instances fit under ``limit`` (0 = unlimited)."""
    if limit <= 0:
        return wanted
    return max(0, min(wanted, limit - in_use))
