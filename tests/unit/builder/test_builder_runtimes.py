"""Runtime detection and static checks (pure), plus one real `node --check`."""

from __future__ import annotations

import shutil

import pytest

from knative_lambda.platform.builder import runtimes
from knative_lambda.platform.builder.errors import FunctionInvalid
from knative_lambda.platform.builder.runtimes import FunctionSpec


@pytest.mark.parametrize(
    "text, runtime",
    [
        ("def handle(event):\n    return 1\n", "python"),
        ("async def handle(event):\n    return 1\n", "python"),
        ("import json\nx = 1\n", "python"),
        ("def handle(event):\n    return (\n", "python"),  # broken python is still python
        ("module.exports = { handle: (e) => e }", "node"),
        ("exports.parse = function (e) { return e }", "node"),
        ("const x = require('x');", "node"),
        ("", "python"),
    ],
)
def test_sniff_runtime(text: str, runtime: str) -> None:
    assert runtimes.sniff_runtime(text) == runtime


@pytest.mark.parametrize(
    "hint, runtime",
    [(None, None), ("auto", None), ("python", "python"), ("py", "python"), ("python3", "python"),
     ("node", "node"), ("nodejs", "node"), ("js", "node"), ("JavaScript", "node")],
)
def test_normalize_hint(hint, runtime) -> None:
    assert runtimes.normalize_hint(hint) == runtime


def test_unknown_hint_is_an_error() -> None:
    with pytest.raises(FunctionInvalid, match="unknown runtime 'ruby'"):
        runtimes.normalize_hint("ruby")


@pytest.mark.parametrize(
    "files, root",
    [
        (["handler.py"], ""),
        (["fn/handler.py", "fn/requirements.txt"], "fn"),
        (["a/b/index.js", "a/b/package.json"], "a/b"),
        (["fn/handler.py", "other.txt"], ""),
        (["fn/x/handler.py", "fn/y/z.py"], "fn"),
    ],
)
def test_code_root(files: list[str], root: str) -> None:
    assert runtimes.code_root(files) == root


@pytest.mark.parametrize(
    "files, hint, package, spec",
    [
        (["handler.py"], None, None, FunctionSpec("python", "handler.py")),
        (["main.py", "requirements.txt"], None, None, FunctionSpec("python", "main.py", "requirements.txt")),
        (["mine.py", "lib/util.py"], None, None, FunctionSpec("python", "mine.py")),
        (["index.js"], None, None, FunctionSpec("node", "index.js")),
        (["src/app.js", "package.json"], None, '{"main": "./src/app.js"}', FunctionSpec("node", "src/app.js", "package.json")),
        (["index.js", "package.json", "tool.py"], None, "{}", FunctionSpec("node", "index.js", "package.json")),
        (["index.js", "handler.py"], None, None, FunctionSpec("python", "handler.py")),
        (["index.js", "handler.py"], "node", None, FunctionSpec("node", "index.js")),
    ],
)
def test_detect(files, hint, package, spec) -> None:
    assert runtimes.detect(files, hint, package) == spec


@pytest.mark.parametrize(
    "files, hint, reason",
    [
        (["README.md"], None, "no function found"),
        (["a.py", "b.py"], None, "no function found"),
        (["index.js"], "python", "no Python entry"),
        (["handler.py"], "node", "no Node.js entry"),
    ],
)
def test_detect_failures(files, hint, reason) -> None:
    with pytest.raises(FunctionInvalid, match=reason):
        runtimes.detect(files, hint)


def test_detect_bad_package_json() -> None:
    with pytest.raises(FunctionInvalid, match="package.json is not valid JSON"):
        runtimes.detect(["index.js", "package.json"], None, "{nope")


@pytest.mark.parametrize(
    "source",
    [
        "def handle(event):\n    return 1\n",
        "async def handle(event):\n    return 1\n",
        "handle = lambda e: e\n",
        "from lib import handle\n",
        "from lib import run as handle\n",
    ],
)
def test_check_python_accepts(source: str) -> None:
    runtimes.check_python(source, "handler.py")


@pytest.mark.parametrize(
    "source, message",
    [
        ("def handle(event):\n    x = (1,\n    return x\n", r"syntax error in handler.py line 2: '\(' was never closed"),
        ("def handle(event)\n    pass\n", "syntax error in handler.py line 1"),
        ("x = 1\n\n\n  y = 2\n", "syntax error in handler.py line 4: unexpected indent"),
        ("def other(event):\n    pass\n", "defines no top-level handle"),
        ("class C:\n    def handle(self, e): pass\n", "defines no top-level handle"),
        ("a = 1\x00", "cannot be parsed|syntax error"),
    ],
)
def test_check_python_rejects(source: str, message: str) -> None:
    with pytest.raises(FunctionInvalid, match=message):
        runtimes.check_python(source, "handler.py")


@pytest.mark.parametrize(
    "source, export",
    [
        ("module.exports = { handle }", "handle"),
        ("module.exports = { parse: (e) => e }", "parse"),
        ("exports.handle = async (e) => e", "handle"),
    ],
)
def test_js_export(source: str, export: str) -> None:
    assert runtimes.js_export(source, "index.js") == export


@pytest.mark.parametrize(
    "source, message",
    [("function handle(e) {}", "no module.exports"), ("module.exports = { run }", "neither handle nor parse")],
)
def test_js_export_rejects(source: str, message: str) -> None:
    with pytest.raises(FunctionInvalid, match=message):
        runtimes.js_export(source, "index.js")


NODE_STDERR = """/tmp/x/index.js:3
  b: 2
  ^

SyntaxError: Unexpected identifier 'b'
    at wrapSafe (node:internal/modules/cjs/loader:1464:18)
"""


@pytest.mark.parametrize(
    "stderr, message",
    [
        (NODE_STDERR, "syntax error in index.js line 3: SyntaxError: Unexpected identifier 'b'"),
        ("boom", "index.js does not load: boom"),
        ("", "index.js does not load: node --check failed"),
    ],
)
def test_node_check_message(stderr: str, message: str) -> None:
    assert runtimes.node_check_message(stderr, "index.js") == message


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
async def test_node_check_real(tmp_path) -> None:
    good = tmp_path / "good.js"
    good.write_text("module.exports = { parse: (e) => e };\n")
    assert await runtimes.check_node(good, "good.js") == "parse"
    bad = tmp_path / "bad.js"
    bad.write_text("module.exports = {\n  handle: () => {\n    return (;\n  }\n};\n")
    with pytest.raises(FunctionInvalid, match="syntax error in bad.js line 3"):
        await runtimes.check_node(bad, "bad.js")
