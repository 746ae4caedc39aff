"""Which user a function instance runs as (``KL_INSTANCE_USER``). Pure.

Function code must not read the platform's secrets (the state file and token
are 0600) nor signal or trace platform processes or other functions' instances.
When the gateway runs as root, each instance gives up root before the
function's code runs:

- ``auto`` (default): as root, a uid of its own per service, picked from
  ``200000-265535`` (no distribution allocates there) by a hash of
  ``namespace/service``, gid the same; not root: the platform's own user;
- ``off``: the platform's own user (say so explicitly to run functions as root);
- ``NAME`` or ``UID[:GID]``: one fixed user for every instance;
- ``FIRST-LAST``: per-service uids from that range.

Every value but ``auto`` and ``off`` needs root. Two services never share a
per-service uid: on a hash collision the later one takes the next free uid.
"""

from __future__ import annotations

import pwd
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from knative_lambda.errors import ConfigError

ENV = "KL_INSTANCE_USER"
DEFAULT_RANGE = (200_000, 265_535)


@dataclass(frozen=True)
class InstanceUser:
    uid: int
    gid: int


@dataclass(frozen=True)
class IsolationPolicy:
    """``fixed`` for every instance, else a uid per service from ``first..last``, else none."""

    fixed: InstanceUser | None = None
    first: int = 0
    last: int = -1

    @property
    def enabled(self) -> bool:
        return self.fixed is not None or self.last >= self.first


OFF = IsolationPolicy()


def parse_policy(
    text: str, is_root: bool, lookup: Callable[[str], pwd.struct_passwd] = pwd.getpwnam
) -> IsolationPolicy:
    """The policy ``KL_INSTANCE_USER=text`` asks for; ConfigError naming the problem."""
    value = text.strip()
    if value in ("", "auto"):
        return IsolationPolicy(first=DEFAULT_RANGE[0], last=DEFAULT_RANGE[1]) if is_root else OFF
    if value == "off":
        return OFF
    if not is_root:
        raise ConfigError(f"{ENV}={text!r} needs the gateway to run as root (or use auto/off)")
    if "-" in value:
        first, _, last = value.partition("-")
        lo, hi = _id(first, text), _id(last, text)
        if lo > hi:
            raise ConfigError(f"{ENV}={text!r}: the range's first uid is above its last")
        return IsolationPolicy(first=lo, last=hi)
    if value[0].isdigit():
        uid_text, colon, gid_text = value.partition(":")
        uid = _id(uid_text, text)
        return IsolationPolicy(fixed=InstanceUser(uid, _id(gid_text, text) if colon else uid))
    try:
        entry = lookup(value)
    except KeyError:
        raise ConfigError(f"{ENV}={text!r}: no such user") from None
    return IsolationPolicy(fixed=InstanceUser(entry.pw_uid, entry.pw_gid))


def _id(part: str, text: str) -> int:
    if not part.isdigit() or int(part) == 0 or int(part) > 2**31 - 2:
        raise ConfigError(
            f"{ENV}={text!r}: use auto, off, a user name, UID[:GID] or FIRST-LAST (ids 1..2^31-2)"
        )
    return int(part)


class InstanceUsers:
    """The user each service's instances run as under ``policy``.

    Per-service uids start at the hash of ``namespace/service`` and move to the
    next free uid in the range when another service already has that one, so
    two services never share a uid (they could signal each other's instances).
    A uid stays with its service for the gateway's lifetime: instances of a
    deleted service may still be draining.
    """

    def __init__(self, policy: IsolationPolicy) -> None:
        self.policy = policy
        self._uids: dict[str, int] = {}  # namespace/service -> uid
        self._owners: dict[int, str] = {}  # uid -> namespace/service

    def user_for(self, namespace: str, service: str) -> InstanceUser | None:
        """The user an instance of ``namespace/service`` runs as; None: the platform's user.
        ConfigError when every uid of the range is taken."""
        policy = self.policy
        if policy.fixed is not None:
            return policy.fixed
        if not policy.enabled:
            return None
        key = f"{namespace}/{service}"
        uid = self._uids.get(key)
        if uid is None:
            span = policy.last - policy.first + 1
            start = zlib.crc32(key.encode()) % span
            uid = next((policy.first + (start + i) % span for i in range(span)
                        if policy.first + (start + i) % span not in self._owners), None)
            if uid is None:
                raise ConfigError(
                    f"{ENV}: all {span} uids of {policy.first}-{policy.last} are taken by other "
                    f"services; {key} cannot get one of its own (widen the range)"
                )
            self._uids[key], self._owners[uid] = uid, key
        return InstanceUser(uid, uid)
