"""Which user an instance runs as: the KL_INSTANCE_USER policy, and anchored paths."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from knative_lambda.errors import ConfigError
from knative_lambda.platform.runtime import privileges
from knative_lambda.platform.runtime.loader import Artifact
from knative_lambda.platform.serving.isolation import (
    DEFAULT_RANGE,
    OFF,
    InstanceUser,
    InstanceUsers,
    IsolationPolicy,
    parse_policy,
)


def fake_lookup(name: str) -> pwd.struct_passwd:
    if name != "fnuser":
        raise KeyError(name)
    return pwd.struct_passwd(("fnuser", "x", 1234, 5678, "", "/", "/bin/false"))


@pytest.mark.parametrize(
    ("text", "root", "expected"),
    [
        ("", True, IsolationPolicy(first=DEFAULT_RANGE[0], last=DEFAULT_RANGE[1])),
        ("auto", True, IsolationPolicy(first=DEFAULT_RANGE[0], last=DEFAULT_RANGE[1])),
        ("  auto ", True, IsolationPolicy(first=DEFAULT_RANGE[0], last=DEFAULT_RANGE[1])),
        ("", False, OFF),
        ("auto", False, OFF),
        ("off", True, OFF),
        ("off", False, OFF),
        ("fnuser", True, IsolationPolicy(fixed=InstanceUser(1234, 5678))),
        ("4000", True, IsolationPolicy(fixed=InstanceUser(4000, 4000))),
        ("4000:4001", True, IsolationPolicy(fixed=InstanceUser(4000, 4001))),
        ("300000-300009", True, IsolationPolicy(first=300000, last=300009)),
        ("7-7", True, IsolationPolicy(first=7, last=7)),
    ],
)
def test_policy_values(text: str, root: bool, expected: IsolationPolicy) -> None:
    assert parse_policy(text, root, fake_lookup) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("nosuchuser", "no such user"),
        ("0", "ids 1..2^31-2"),  # root is not a way to isolate
        ("0:0", "ids 1..2^31-2"),
        ("12:0", "ids 1..2^31-2"),
        ("12x", "ids 1..2^31-2"),
        ("12:", "ids 1..2^31-2"),
        ("-5", "ids 1..2^31-2"),
        ("5-", "ids 1..2^31-2"),
        ("9-3", "first uid is above its last"),
        ("1-99999999999", "ids 1..2^31-2"),
    ],
)
def test_bad_policies_name_the_setting(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_policy(text, True, fake_lookup)
    assert "KL_INSTANCE_USER" in str(err.value) and fragment in str(err.value)


@pytest.mark.parametrize("text", ["fnuser", "4000", "4000:4001", "300000-300009"])
def test_changing_user_needs_root(text: str) -> None:
    with pytest.raises(ConfigError, match="needs the gateway to run as root"):
        parse_policy(text, False, fake_lookup)


def test_per_service_users_are_stable_distinct_and_in_range() -> None:
    users = InstanceUsers(parse_policy("", True))
    got = [users.user_for("default", f"fn-{i}") for i in range(2000)]
    assert all(u is not None and u.uid == u.gid for u in got)
    assert all(DEFAULT_RANGE[0] <= u.uid <= DEFAULT_RANGE[1] for u in got if u)
    assert len({u.uid for u in got if u}) == 2000  # never shared, collisions included
    assert users.user_for("default", "fn-1") == got[1]
    assert users.user_for("a", "fn") != users.user_for("b", "fn")  # the namespace counts
    # the same service gets the same uid from a fresh table (a restarted gateway)
    assert InstanceUsers(parse_policy("", True)).user_for("default", "fn-0") == got[0]


def test_a_hash_collision_moves_the_later_service_to_the_next_free_uid() -> None:
    policy = IsolationPolicy(first=100, last=103)  # 4 uids: collisions are certain
    users = InstanceUsers(policy)
    got = [users.user_for("ns", name) for name in ("a", "b", "c", "d")]
    assert sorted(u.uid for u in got if u) == [100, 101, 102, 103]
    assert users.user_for("ns", "c") == got[2]  # an assigned uid stays put
    with pytest.raises(ConfigError, match="all 4 uids of 100-103 are taken.*ns/e"):
        users.user_for("ns", "e")


def test_fixed_off_and_single_uid_range() -> None:
    assert InstanceUsers(OFF).user_for("default", "fn") is None
    fixed = InstanceUsers(IsolationPolicy(fixed=InstanceUser(10, 20)))
    assert fixed.user_for("x", "y") == fixed.user_for("z", "w") == InstanceUser(10, 20)
    assert InstanceUsers(IsolationPolicy(first=7, last=7)).user_for("x", "y") == InstanceUser(7, 7)


def test_anchored_paths_go_through_the_deepest_held_directory(tmp_path: Path) -> None:
    (tmp_path / "art" / "code" / "lib").mkdir(parents=True)
    anchors = privileges.anchor([tmp_path, tmp_path / "art" / "code", tmp_path / "missing"])
    try:
        assert len(anchors.fds) == 2  # a missing directory is not held
        code = anchors.dirs[str((tmp_path / "art" / "code").resolve())]
        assert anchors.path(tmp_path / "art" / "code" / "lib") == code + "/lib"
        assert anchors.path(tmp_path / "art") == anchors.dirs[str(tmp_path.resolve())] + "/art"
        assert anchors.path("/elsewhere/x") == "/elsewhere/x"
        assert os.path.isdir(anchors.path(tmp_path / "art" / "code" / "lib"))
        art = Artifact(tmp_path / "art", "python", tmp_path / "art" / "code", "handler.py",
                       pythonpath=(str(tmp_path / "art" / "code"),))
        moved = anchors.artifact(art)
        assert str(moved.code_dir) == code and moved.pythonpath == (code,)
        assert moved.entry_path == Path(code) / "handler.py"
    finally:
        for fd in anchors.fds:
            os.close(fd)


def test_a_sibling_with_a_common_prefix_is_not_inside(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "apple").mkdir()
    anchors = privileges.anchor([tmp_path / "app"])
    try:
        assert anchors.path(tmp_path / "apple") == str(tmp_path / "apple")
    finally:
        for fd in anchors.fds:
            os.close(fd)
