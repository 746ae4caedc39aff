"""The malformed corpus: every case is rejected with a ContractError naming its problem."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from knative_lambda.contract import ContractError, Problem, from_amqp, from_http, validate


def _load_corpus():
    path = Path(__file__).with_name("malformed_corpus.py")
    spec = importlib.util.spec_from_file_location("kl_contract_malformed_corpus", path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules[spec.name] = module  # dataclasses look their module up while executing
    spec.loader.exec_module(module)
    return module


CORPUS = _load_corpus()


def _decode_and_validate(case) -> None:
    if case.transport == "json":
        validate(case.message)
    elif case.transport == "http":
        validate(from_http(*case.message))
    elif case.transport == "amqp":
        validate(from_amqp(*case.message))
    else:
        raise AssertionError(f"unknown transport {case.transport}")


def test_corpus_is_large_and_ids_are_unique() -> None:
    ids = [c.id for c in CORPUS.CASES]
    assert len(ids) >= 60
    assert len(ids) == len(set(ids))
    assert {c.transport for c in CORPUS.CASES} == {"json", "http", "amqp"}


@pytest.mark.parametrize("case", CORPUS.CASES, ids=lambda c: c.id)
def test_malformed_event_is_rejected_with_its_problem_named(case) -> None:
    with pytest.raises(ContractError) as info:
        _decode_and_validate(case)
    message = str(info.value)
    assert "\n" not in message  # one line, for logs and the CLI
    for expected in case.expect:
        assert expected in message, f"{expected!r} not in {message!r}"
    assert info.value.problems and all(isinstance(p, Problem) for p in info.value.problems)


@pytest.mark.parametrize("kind", sorted(CORPUS.BASE), ids=str)
@pytest.mark.parametrize("transport", ["json", "http", "amqp"])
def test_corpus_baselines_are_valid(kind: str, transport: str) -> None:
    # The mutations are meaningful only if the unmutated events pass.
    d = CORPUS.doc(kind)
    if transport == "json":
        validate(d)
    elif transport == "http":
        validate(from_http(*CORPUS.http_binary(d)))
    else:
        validate(from_amqp(*CORPUS.amqp_binary(d)))
