"""The hostile corpus as a whole: large enough, ids unique, every case well-formed."""

from __future__ import annotations

from collections import Counter

from tests.hostile import (
    corpus_archives,
    corpus_cli,
    corpus_components,
    corpus_events,
    corpus_manifests,
)


def categories() -> dict[str, list[str]]:
    """Case ids per category (the contract's malformed events are reused, replayed over HTTP)."""
    return {
        "events: contract corpus over HTTP": [c.id for c in corpus_events.contract_cases()],
        "events: hostile HTTP requests": [c.id for c in corpus_events.HTTP_CASES],
        "events: raw non-HTTP bytes": [c.id for c in corpus_events.RAW_CASES],
        "http: builder and gateway": [c.id for cases in corpus_components.CASES.values() for c in cases],
        "archives": [c.id for c in corpus_archives.CASES],
        "manifests: trigger specs": [c.id for c in corpus_manifests.TRIGGER_CASES
                                     + corpus_manifests.TRIGGER_NAMESPACE_CASES],
        "manifests: service specs": [c.id for c in corpus_manifests.SERVICE_CASES
                                     + corpus_manifests.SERVICE_NAMESPACE_CASES],
        "cli arguments": [c.id for c in corpus_cli.CASES],
    }


def test_corpus_has_at_least_200_hostile_inputs() -> None:
    counts = {name: len(ids) for name, ids in categories().items()}
    print("\n" + "\n".join(f"  {n:40} {c:4d}" for n, c in counts.items()) + f"\n  {'total':40} {sum(counts.values()):4d}")
    assert sum(counts.values()) >= 200
    new = sum(counts.values()) - counts["events: contract corpus over HTTP"]
    assert new >= 200, "at least 200 without the reused contract corpus"
    assert all(c >= 20 for c in counts.values()), counts


def test_case_ids_are_unique_within_each_category() -> None:
    for name, ids in categories().items():
        duplicates = [i for i, n in Counter(ids).items() if n > 1]
        assert duplicates == [], f"{name}: {duplicates}"


def test_every_case_says_what_it_expects() -> None:
    components = [c for cases in corpus_components.CASES.values() for c in cases]
    for case in corpus_events.HTTP_CASES + corpus_manifests.TRIGGER_CASES + corpus_manifests.SERVICE_CASES + components:
        assert case.status and all(400 <= s < 500 for s in case.status), case.id
        assert all(e == e.lower() for e in case.expect), case.id
    for archive_case in corpus_archives.CASES:
        assert archive_case.expect, archive_case.id
    for cli_case in corpus_cli.CASES:
        assert cli_case.argv, cli_case.id
