"""Hostile ``kl`` command lines, as data: each must exit non-zero with a one-line error.

Arguments may hold placeholders the test fills in:

- ``{state}``: a state file of the running platform (so a command gets as far as it can),
- ``{missing}``: a path that does not exist, ``{dir}``: a directory,
- ``{f:NAME}``: a file whose bytes are ``FILES[NAME]``, ``{repo}``: the checkout.

Commands run in an empty working directory without ``KL_STATE``, so the default
``.kl/env.json`` is absent too. A command that would start something (``kl up``,
``kl conformance`` without ``--state``) is only ever given arguments that are
rejected first.
"""

from __future__ import annotations

from dataclasses import dataclass

BUG_JSON_DEPTH = ("BUG: bench/results.py load and harness/state.py load catch JSONDecodeError/ValueError "
                  "only: a deeply nested file raises RecursionError -> traceback")
BUG_RESULTS_FILE = ("BUG: bench/results.py load: a result file that is not UTF-8 (UnicodeDecodeError) or "
                    "holds a >4300-digit integer (ValueError) escapes as a traceback")
BUG_EMIT_DEPTH = ("BUG: broker/commands.py emit: --data nested deeper than the recursion limit raises "
                  "RecursionError -> traceback")
BUG_BUDGETS_UTF8 = ("BUG: bench/budgets.py load_budgets: a budget file that is not UTF-8 raises "
                    "UnicodeDecodeError -> traceback")


@dataclass(frozen=True)
class CliCase:
    id: str
    argv: tuple[str, ...]
    expect: tuple[str, ...]  # lowercase words of the error line
    bug: str = ""


_DEEP = b"[" * 100_000 + b"]" * 100_000
_LAUGHS = b"\n".join([b'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
                     + [f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},"
                        f"*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},"
                        f"*{chr(97 + i)}]".encode() for i in range(8)]
                     + [b"thresholds: *i"])

FILES: dict[str, bytes] = {
    "not-json": b"{this is not json",
    "json-array": b"[1, 2, 3]",
    "json-deep": _DEEP,
    "json-big-int": b'{"schema": ' + b"9" * 5000 + b"}",
    "not-utf8": b"\xff\xfe\x00garbage\x80",
    "empty": b"",
    "yaml-broken": b"thresholds: [unclosed\n  - a: {",
    "yaml-list": b"- 1\n- 2\n",
    "yaml-no-thresholds": b"on_missing: skip\n",
    "yaml-bad-on-missing": b"on_missing: explode\nthresholds:\n  x:\n    - p95 < 1s\n",
    "yaml-thresholds-list": b"thresholds:\n  - p95 < 1s\n",
    "yaml-bad-expression": b"thresholds:\n  cold_start:\n    - p95 <<< banana\n",
    "yaml-duplicate-key": b"thresholds:\n  a:\n    - p95 < 1s\n  a:\n    - p95 < 2s\n",
    "yaml-billion-laughs": _LAUGHS,
    "yaml-tag-python": b"thresholds: !!python/object/apply:os.system ['echo pwned']\n",
    "suite-broken": b"name: [\n",
    "suite-list": b"- a\n- b\n",
    "jsonl-garbage": b'{"type": "build.start"}\nnot json at all\n[1]\n',
    "function-py": b"def handle(event):\n    return event\n",
}


def _c(id_: str, *argv: str, expect: tuple[str, ...] = (), bug: str = "") -> CliCase:
    return CliCase(id_, tuple(argv), tuple(e.lower() for e in expect), bug)


CASES: list[CliCase] = [
    # the command line itself
    _c("unknown-command", "frobnicate", expect=("no such command",)),
    _c("unknown-command-long", "x" * 20_000, expect=("no such command",)),
    _c("unknown-command-non-ascii", "bü\u202eild", expect=("no such command",)),
    _c("unknown-global-option", "--frobnicate", expect=("no such option",)),
    _c("up-unknown-target", "up", "--target", "mars", expect=("invalid value",)),
    _c("up-dry-run-local", "up", "--dry-run", "--state", "{missing}", expect=("--dry-run",)),
    _c("up-cluster", "up", "--target", "cluster", "--state", "{missing}", expect=("cluster",)),
    # state files
    _c("status-missing-state", "status", "--state", "{missing}", expect=("no platform state",)),
    _c("status-state-is-dir", "status", "--state", "{dir}", expect=("cannot read state file",)),
    _c("status-state-not-json", "status", "--state", "{f:not-json}", expect=("cannot read state file",)),
    _c("status-state-array", "status", "--state", "{f:json-array}", expect=("not a json object",)),
    _c("status-state-not-utf8", "status", "--state", "{f:not-utf8}", expect=("state file",)),
    _c("status-state-empty", "status", "--state", "{f:empty}", expect=("state file",)),
    _c("status-state-deep", "status", "--state", "{f:json-deep}", expect=("state file",)),
    _c("status-bad-option", "status", "--json=yes", expect=("option",)),
    _c("triggers-missing-state", "triggers", "--state", "{missing}", expect=("no platform state",)),
    _c("down-state-is-dir", "down", "--state", "{dir}", expect=("state file",)),
    # emit
    _c("emit-bad-json", "emit", "build.start", "--data", "{bad json", "--state", "{state}",
       expect=("--data is not valid json",)),
    _c("emit-json-truncated", "emit", "build.start", "--data", '{"third_party_id": "acme"', "--state", "{state}",
       expect=("--data is not valid json",)),
    _c("emit-json-deep", "emit", "parser.start", "--data", "[" * 50_000 + "]" * 50_000, "--state", "{state}",
       expect=("--data",)),
    _c("emit-unknown-type", "emit", "build.begin", "--data", "{}", "--state", "{state}",
       expect=("unknown event type",)),
    _c("emit-invalid-event", "emit", "build.start", "--data", '{"third_party_id": "ACME", "parser_id": "p"}',
       "--state", "{state}", expect=("third_party_id",)),
    _c("emit-data-array", "emit", "build.start", "--data", "[1, 2]", "--state", "{state}", expect=("source",)),
    _c("emit-no-type", "emit", "--state", "{state}", expect=("give type",)),
    _c("emit-bad-mode", "emit", "build.start", "--mode", "smoke-signal", expect=("invalid value",)),
    _c("emit-file-missing", "emit", "--file", "{missing}", "--state", "{state}", expect=("cannot read",)),
    _c("emit-file-garbage", "emit", "--file", "{f:jsonl-garbage}", "--state", "{state}",
       expect=("bad line",)),
    _c("emit-missing-state", "emit", "build.start", "--data", "{}", "--state", "{missing}",
       expect=("no platform state",)),
    # build
    _c("build-missing-path", "build", "{missing}", "--tp", "acme", "--parser", "p1", expect=("does not exist",)),
    _c("build-missing-args", "build", expect=("missing argument",)),
    _c("build-missing-tp", "build", "{f:function-py}", "--parser", "p1", expect=("--tp",)),
    _c("build-bad-tp", "build", "{f:function-py}", "--tp", "ACME_Corp", "--parser", "p1", "--state", "{state}",
       expect=("must be a dns label",)),
    _c("build-bad-parser", "build", "{f:function-py}", "--tp", "acme", "--parser", "../../etc", "--state",
       "{state}", expect=("must be a dns label",)),
    _c("build-priority-out-of-range", "build", "{f:function-py}", "--tp", "a", "--parser", "p", "--priority",
       "11", expect=("--priority",)),
    _c("build-timeout-not-number", "build", "{f:function-py}", "--tp", "a", "--parser", "p", "--timeout",
       "soon", expect=("--timeout",)),
    _c("build-bad-runtime", "build", "{f:function-py}", "--tp", "a", "--parser", "p", "--runtime", "cobol",
       expect=("--runtime",)),
    _c("build-missing-state", "build", "{f:function-py}", "--tp", "a", "--parser", "p", "--state", "{missing}",
       expect=("no platform state",)),
    # bench
    _c("bench-unknown-suite", "bench", "no-such-suite", "--state", "{missing}", expect=("suite",)),
    _c("bench-suite-broken-yaml", "bench", "{f:suite-broken}", "--state", "{missing}", expect=("suite-broken",)),
    _c("bench-suite-list", "bench", "{f:suite-list}", "--state", "{missing}", expect=("suite-list",)),
    _c("bench-bad-target", "bench", "quick", "--target", "moon", expect=("invalid value",)),
    _c("bench-missing-suite-arg", "bench", expect=("missing argument",)),
    # gate
    _c("gate-missing-budgets-option", "gate", "{f:not-json}", expect=("--budgets",)),
    _c("gate-budgets-missing", "gate", "{f:not-json}", "--budgets", "{missing}", expect=("cannot read budget file",)),
    _c("gate-budgets-dir", "gate", "{f:not-json}", "--budgets", "{dir}", expect=("budget",)),
    _c("gate-budgets-broken-yaml", "gate", "{f:not-json}", "--budgets", "{f:yaml-broken}", expect=("not valid yaml",)),
    _c("gate-budgets-list", "gate", "{f:not-json}", "--budgets", "{f:yaml-list}", expect=("thresholds",)),
    _c("gate-budgets-no-thresholds", "gate", "{f:not-json}", "--budgets", "{f:yaml-no-thresholds}",
       expect=("thresholds",)),
    _c("gate-budgets-bad-on-missing", "gate", "{f:not-json}", "--budgets", "{f:yaml-bad-on-missing}",
       expect=("on_missing",)),
    _c("gate-budgets-thresholds-list", "gate", "{f:not-json}", "--budgets", "{f:yaml-thresholds-list}",
       expect=("thresholds",)),
    _c("gate-budgets-bad-expression", "gate", "{f:not-json}", "--budgets", "{f:yaml-bad-expression}",
       expect=("cold_start",)),
    _c("gate-budgets-duplicate-key", "gate", "{f:not-json}", "--budgets", "{f:yaml-duplicate-key}",
       expect=("listed twice",)),
    _c("gate-budgets-billion-laughs", "gate", "{f:not-json}", "--budgets", "{f:yaml-billion-laughs}",
       expect=("yaml-billion-laughs",)),
    _c("gate-budgets-python-tag", "gate", "{f:not-json}", "--budgets", "{f:yaml-tag-python}",
       expect=("yaml-tag-python",)),
    _c("gate-budgets-not-utf8", "gate", "{f:not-json}", "--budgets", "{f:not-utf8}", expect=("not-utf8",)),
    _c("gate-results-not-json", "gate", "{f:not-json}", "--budgets", "{repo}/benchmarks/budgets/local.yaml",
       expect=("not valid json",)),
    _c("gate-results-missing", "gate", "{missing}", "--budgets", "{repo}/benchmarks/budgets/local.yaml",
       expect=("cannot read result file",)),
    _c("gate-results-array", "gate", "{f:json-array}", "--budgets", "{repo}/benchmarks/budgets/local.yaml",
       expect=("not a benchmark result file",)),
    _c("gate-results-empty", "gate", "{f:empty}", "--budgets", "{repo}/benchmarks/budgets/local.yaml",
       expect=("not valid json",)),
    _c("gate-results-deep", "gate", "{f:json-deep}", "--budgets", "{repo}/benchmarks/budgets/local.yaml",
       expect=("json-deep",)),
    _c("gate-results-not-utf8", "gate", "{f:not-utf8}", "--budgets", "{repo}/benchmarks/budgets/local.yaml",
       expect=("not-utf8",)),
    _c("gate-results-big-int", "gate", "{f:json-big-int}", "--budgets", "{repo}/benchmarks/budgets/local.yaml",
       expect=("json-big-int",)),
    # report
    _c("report-results-missing", "report", "{missing}", "--out", "{dir}/report", expect=("cannot read",)),
    _c("report-results-not-json", "report", "{f:not-json}", "--out", "{dir}/report", expect=("not valid json",)),
    _c("report-no-results", "report", expect=("missing argument",)),
    # conformance (rejected before anything is started)
    _c("conformance-bad-target", "conformance", "--target", "venus", expect=("invalid value",)),
    _c("conformance-bad-option", "conformance", "--frobnicate", expect=("no such option",)),
]
