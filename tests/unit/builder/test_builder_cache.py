"""Cache key, artifact store and single flight."""

from __future__ import annotations

import asyncio

import pytest

from knative_lambda.platform.builder.cache import ArtifactStore, SingleFlight, cache_key


def test_cache_key_depends_on_every_part() -> None:
    base = cache_key("abc", "python", "local", "py3.11", "w1")
    variants = [
        cache_key("abd", "python", "local", "py3.11", "w1"),
        cache_key("abc", "node", "local", "py3.11", "w1"),
        cache_key("abc", "python", "docker", "py3.11", "w1"),
        cache_key("abc", "python", "local", "py3.12", "w1"),
        cache_key("abc", "python", "local", "py3.11", "w2"),  # another wrapper: another artifact
        cache_key("ab", "cpython", "local", "py3.11", "w1"),  # no blurring across the separator
    ]
    assert len({base, *variants}) == 7
    assert base == cache_key("abc", "python", "local", "py3.11", "w1") and len(base) == 16


def test_store_commit_lookup_resolve(tmp_path) -> None:
    store = ArtifactStore(tmp_path)
    assert store.lookup("k1") is None
    staging = store.staging("k1")
    (staging / "code").mkdir()
    store.commit(staging, "k1", {"runtime": "python", "n": 1}, "tp-p-12345678")
    assert store.lookup("k1") == {"runtime": "python", "n": 1}
    assert store.resolve("k1") == ("k1", {"runtime": "python", "n": 1})
    assert store.resolve("tp-p-12345678")[0] == "k1"
    assert store.resolve("localhost:5000/knative-lambdas:tp-p-12345678")[0] == "k1"
    # a forced rebuild replaces the artifact in place
    again = store.staging("k1")
    store.commit(again, "k1", {"runtime": "python", "n": 2}, "tp-p-12345678")
    assert store.lookup("k1")["n"] == 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize(
    "ref", ["../etc", "nope", ".tmp-x", "a/../../b", "", "a\x00b", "\x00", "k" * 5000, "x:a\x00b"]
)
def test_store_resolve_refuses_unknown_or_hostile(tmp_path, ref: str) -> None:
    assert ArtifactStore(tmp_path).resolve(ref) is None


async def test_single_flight_runs_once() -> None:
    flight = SingleFlight()
    calls = 0

    async def work() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return "artifact"

    results = await asyncio.gather(*(flight.run("k", work) for _ in range(5)))
    assert calls == 1
    assert sorted(shared for _, shared in results) == [False, True, True, True, True]
    assert {r for r, _ in results} == {"artifact"}
    assert not flight.busy("k")


async def test_single_flight_shares_failures() -> None:
    flight = SingleFlight()

    async def work() -> str:
        await asyncio.sleep(0.01)
        raise ValueError("broken")

    results = await asyncio.gather(*(flight.run("k", work) for _ in range(3)), return_exceptions=True)
    assert all(isinstance(r, ValueError) for r in results)
