"""Which runtime a function is, where its entry point is, and whether it can load.

Pure parts (detection over file names and text, the Python static check,
parsing ``node --check`` output) are separate from the one subprocess call.
"""

from __future__ import annotations

import ast
import asyncio
import json
import re
from dataclasses import dataclass
from pathlib import Path

from knative_lambda.platform.builder.errors import FunctionInvalid

RUNTIMES = ("python", "node")
PY_ENTRIES = ("handler.py", "main.py", "index.py", "function.py", "app.py", "lambda_function.py")
JS_ENTRIES = ("index.js", "handler.js", "main.js", "function.js", "app.js")
SINGLE_FILE = {"python": "handler.py", "node": "index.js"}

_PY_HANDLE = re.compile(r"^\s*(async\s+)?def\s+handle\s*\(", re.M)
_JS_EXPORTS = re.compile(r"module\.exports|exports\.(handle|parse)\b")


@dataclass(frozen=True)
class FunctionSpec:
    runtime: str  # "python" | "node"
    entry: str  # path of the entry file, relative to the code root
    deps: str | None = None  # "requirements.txt" / "package.json" when present
    export: str = "handle"  # node: "handle" or "parse"


def sniff_runtime(text: str) -> str:
    """Runtime of a single source file by its content (the object key has no extension)."""
    if _PY_HANDLE.search(text):
        return "python"
    if _JS_EXPORTS.search(text):
        return "node"
    try:
        compile(text, "<source>", "exec", dont_inherit=True)
        return "python"
    except (SyntaxError, ValueError):
        pass
    if re.search(r"\b(const|let|var|function)\b|=>|require\(", text):
        return "node"
    return "python"


def normalize_hint(hint: str | None) -> str | None:
    """``python``/``py``/``python3``/``node``/``nodejs``/``js``/``auto`` -> runtime or None."""
    if not hint or hint.lower() == "auto":
        return None
    h = hint.lower()
    if h in ("python", "py", "python3"):
        return "python"
    if h in ("node", "nodejs", "js", "javascript"):
        return "node"
    raise FunctionInvalid(f"unknown runtime {hint!r}: use python, node or auto")


def code_root(files: list[str]) -> str:
    """The directory holding the function: descend through a lone top-level folder."""
    prefix = ""
    while True:
        rest = [f[len(prefix) :] for f in files if f.startswith(prefix)]
        tops = {r.split("/", 1)[0] for r in rest}
        if len(tops) == 1 and all("/" in r for r in rest):
            prefix += tops.pop() + "/"
        else:
            return prefix.rstrip("/")


def _package_main(package_json: str | None) -> str | None:
    if not package_json:
        return None
    try:
        main = json.loads(package_json).get("main")
    except (ValueError, AttributeError):
        raise FunctionInvalid("package.json is not valid JSON") from None
    return main.removeprefix("./") if isinstance(main, str) else None


def detect(files: list[str], hint: str | None = None, package_json: str | None = None) -> FunctionSpec:
    """Pick runtime and entry from the file list (relative to the code root)."""
    top = {f for f in files if "/" not in f}
    want = normalize_hint(hint)
    py = next((e for e in PY_ENTRIES if e in top), None)
    py = py or (next(iter(p for p in sorted(top) if p.endswith(".py")), None) if sum(p.endswith(".py") for p in top) == 1 else None)
    main = _package_main(package_json)
    js = main if main in files else next((e for e in JS_ENTRIES if e in top), None)
    js = js or (next(iter(p for p in sorted(top) if p.endswith(".js")), None) if sum(p.endswith(".js") for p in top) == 1 else None)
    if want is None:
        if py and js:
            want = "node" if "package.json" in top and "requirements.txt" not in top else "python"
        else:
            want = "python" if py else "node" if js else None
    if want == "python":
        if not py:
            raise FunctionInvalid(f"no Python entry file: add one of {', '.join(PY_ENTRIES)} defining handle(event)")
        return FunctionSpec("python", py, "requirements.txt" if "requirements.txt" in top else None)
    if want == "node":
        if not js:
            raise FunctionInvalid(f"no Node.js entry file: add one of {', '.join(JS_ENTRIES)} (or package.json main)")
        return FunctionSpec("node", js, "package.json" if "package.json" in top else None)
    raise FunctionInvalid(
        "no function found: expected a Python file with handle(event) or a Node.js file exporting handle/parse"
    )


def check_python(source: str, filename: str) -> None:
    """Raise FunctionInvalid with the line of a syntax error, or when no handle() exists."""
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as exc:
        text = (exc.text or "").strip()
        where = f" line {exc.lineno}" if exc.lineno else ""
        raise FunctionInvalid(
            f"syntax error in {filename}{where}: {exc.msg}" + (f": {text!r}" if text else "")
        ) from None
    except ValueError as exc:  # NUL bytes and the like
        raise FunctionInvalid(f"{filename} cannot be parsed: {exc}") from None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "handle":
            return
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "handle" for t in node.targets):
            return
        if isinstance(node, ast.ImportFrom) and any((a.asname or a.name) == "handle" for a in node.names):
            return
    raise FunctionInvalid(f"{filename} defines no top-level handle(event) function")


def js_export(source: str, filename: str) -> str:
    """``handle`` or ``parse``: what the module exports (a static look, not an evaluation)."""
    if not _JS_EXPORTS.search(source) and "export " not in source:
        raise FunctionInvalid(f"{filename} has no module.exports: export handle or parse")
    if re.search(r"\bhandle\b", source):
        return "handle"
    if re.search(r"\bparse\b", source):
        return "parse"
    raise FunctionInvalid(f"{filename} exports neither handle nor parse")


def node_check_message(stderr: str, filename: str) -> str:
    """Turn ``node --check`` output into one line: file, line, error."""
    line = None
    for raw in stderr.splitlines():
        m = re.match(r"^.*?:(\d+)$", raw.strip())
        if m and line is None:
            line = m.group(1)
        if re.match(r"^\w*Error\b", raw.strip()):
            where = f" line {line}" if line else ""
            return f"syntax error in {filename}{where}: {raw.strip()}"
    return f"{filename} does not load: {stderr.strip()[:300] or 'node --check failed'}"


async def check_node(path: Path, filename: str, node: str = "node") -> str:
    """``node --check`` the entry file; returns the export name or raises FunctionInvalid."""
    try:
        proc = await asyncio.create_subprocess_exec(
            node, "--check", str(path), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
    except FileNotFoundError:
        raise FunctionInvalid("Node.js is not installed on the builder (install nodejs)") from None
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise FunctionInvalid(node_check_message(err.decode(errors="replace"), filename))
    return js_export(path.read_text(errors="replace"), filename)
