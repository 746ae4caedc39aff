"""Pure helpers of the local backend: the install tools' reasons, package.json dependencies."""

from __future__ import annotations

import pytest

from knative_lambda.platform.builder.backends.local import node_dependencies, npm_reason, pip_reason
from knative_lambda.platform.builder.errors import FunctionInvalid

UV_UNSAT = """Using Python 3.11.7 environment at: env
  × No solution found when resolving dependencies:
  ╰─▶ Because there is no version of six==999.0 and you require six==999.0, we can conclude that your
      requirements are unsatisfiable.
"""
UV_PLAIN = """error: No solution found when resolving dependencies
  cause: Because kl-nope was not found in the package registry and you require kl-nope, we can
  conclude that your requirements are unsatisfiable.
"""
PIP = """Collecting nope==1
ERROR: Could not find a version that satisfies the requirement nope==1 (from versions: none)
ERROR: No matching distribution found for nope==1
"""


@pytest.mark.parametrize(
    "output, expected",
    [
        (UV_UNSAT, "× No solution found when resolving dependencies: ╰─▶ Because there is no version of "
                   "six==999.0 and you require six==999.0, we can conclude that your requirements are unsatisfiable."),
        (UV_PLAIN, "error: No solution found when resolving dependencies cause: Because kl-nope was not found "
                   "in the package registry and you require kl-nope, we can conclude that your requirements "
                   "are unsatisfiable."),
        (PIP, "ERROR: Could not find a version that satisfies the requirement nope==1 (from versions: none) "
              "ERROR: No matching distribution found for nope==1"),
        ("something odd\nhappened", "something odd happened"),
    ],
)
def test_pip_reason(output: str, expected: str) -> None:
    assert pip_reason(output) == expected


def test_npm_reason() -> None:
    out = "npm ERR! code E404\nnpm ERR! 404 Not Found - GET https://registry/x - Not found\nnoise\n"
    assert npm_reason(out) == "npm ERR! code E404 npm ERR! 404 Not Found - GET https://registry/x - Not found"
    assert npm_reason("npm error code ENOTCACHED\n") == "npm error code ENOTCACHED"


@pytest.mark.parametrize(
    "text, deps",
    [('{"dependencies": {"a": "1"}}', {"a": "1"}), ("{}", {}), ('{"dependencies": []}', {}), ("[]", {})],
)
def test_node_dependencies(tmp_path, text: str, deps: dict) -> None:
    (tmp_path / "package.json").write_text(text)
    assert node_dependencies(tmp_path / "package.json") == deps


def test_node_dependencies_bad_json(tmp_path) -> None:
    (tmp_path / "package.json").write_text("{")
    with pytest.raises(FunctionInvalid, match="package.json is not valid JSON"):
        node_dependencies(tmp_path / "package.json")
