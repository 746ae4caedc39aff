"""Benchmark suites: ``benchmarks/suites/<name>.yaml`` parsed into plain data. Pure.

    version: 1
    description: what the suite is for
    benchmarks:
      - name: cold_start          # unique; measurement ids start with it
        kind: cold_start          # one of KINDS; the implementation is looked up by kind
        expect_s: 40              # optional: expected duration, for the ETA
        timeout_s: 120            # optional: the implementation's time budget
        params: {iterations: 10}  # passed to the implementation as is
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from knative_lambda.errors import ConfigError
from knative_lambda.files import compose_yaml, read_text

KINDS = ("cold_start", "build", "throughput", "events", "burst", "scale_to_zero")
SUITE_VERSION = 1
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_BENCH_KEYS = {"name", "kind", "params", "expect_s", "timeout_s", "description"}


@dataclass(frozen=True)
class BenchmarkSpec:
    name: str
    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    expect_s: float | None = None
    timeout_s: float | None = None
    description: str = ""


@dataclass(frozen=True)
class Suite:
    name: str
    source: str
    description: str
    benchmarks: tuple[BenchmarkSpec, ...]

    def select(self, only: list[str] | tuple[str, ...]) -> Suite:
        """The suite restricted to the named benchmarks (in suite order)."""
        if not only:
            return self
        unknown = sorted(set(only) - {b.name for b in self.benchmarks})
        if unknown:
            raise ConfigError(
                f"{self.source}: no benchmark named {', '.join(unknown)} "
                f"(the suite has {', '.join(b.name for b in self.benchmarks)})"
            )
        return Suite(self.name, self.source, self.description,
                     tuple(b for b in self.benchmarks if b.name in only))


def _line(source: str, node: yaml.Node) -> str:
    return f"{source}:{node.start_mark.line + 1}"


def _construct(node: yaml.Node) -> Any:
    return yaml.SafeLoader("").construct_document(node)


def _seconds(value: Any, where: str, key: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"{where}: {key} must be a positive number of seconds, not {value!r}")
    return float(value)


def parse_suite(text: str, source: str = "<suite>", name: str | None = None) -> Suite:
    """Parse and validate a whole suite before anything runs; errors name file and line."""
    root = compose_yaml(text, source)
    if not isinstance(root, yaml.MappingNode):
        raise ConfigError(f"{source}: a suite is a mapping with 'benchmarks:'")
    top = {k.value: v for k, v in root.value}
    unknown = set(top) - {"version", "description", "benchmarks"}
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigError(f"{_line(source, top[key])}: unknown key {key!r} "
                          "(expected version, description, benchmarks)")
    if "version" in top and top["version"].value != str(SUITE_VERSION):
        raise ConfigError(f"{_line(source, top['version'])}: suite version "
                          f"{top['version'].value!r} not supported (this kl reads {SUITE_VERSION})")
    bnode = top.get("benchmarks")
    if not isinstance(bnode, yaml.SequenceNode) or not bnode.value:
        where = _line(source, bnode) if bnode is not None else source
        raise ConfigError(f"{where}: 'benchmarks' must be a non-empty list")
    specs: list[BenchmarkSpec] = []
    seen: set[str] = set()
    for item in bnode.value:
        where = _line(source, item)
        data = _construct(item)
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: each benchmark is a mapping with name and kind")
        extra = set(data) - _BENCH_KEYS
        if extra:
            raise ConfigError(f"{where}: unknown key {sorted(extra)[0]!r} "
                              f"(expected {', '.join(sorted(_BENCH_KEYS))})")
        bname = data.get("name")
        if not isinstance(bname, str) or not _NAME.match(bname):
            raise ConfigError(f"{where}: benchmark name {bname!r} must match [a-z][a-z0-9_]*")
        if bname in seen:
            raise ConfigError(f"{where}: benchmark {bname!r} defined twice")
        seen.add(bname)
        kind = data.get("kind")
        if kind not in KINDS:
            raise ConfigError(f"{where}: benchmark {bname!r}: unknown kind {kind!r} "
                              f"(one of {', '.join(KINDS)})")
        params = data.get("params") or {}
        if not isinstance(params, dict):
            raise ConfigError(f"{where}: benchmark {bname!r}: params must be a mapping")
        specs.append(BenchmarkSpec(
            name=bname, kind=kind, params=params,
            expect_s=_seconds(data.get("expect_s"), where, "expect_s"),
            timeout_s=_seconds(data.get("timeout_s"), where, "timeout_s"),
            description=str(data.get("description") or ""),
        ))
    desc = top["description"].value if "description" in top else ""
    return Suite(name or Path(source).stem, source, str(desc), tuple(specs))


def suite_dirs() -> list[Path]:
    """Where suite names are looked up: ./benchmarks/suites, then the checkout's."""
    return [Path("benchmarks/suites"), Path(__file__).resolve().parents[2] / "benchmarks/suites"]


def load_suite(name_or_path: str) -> Suite:
    """A suite by name (``default`` -> benchmarks/suites/default.yaml) or by path."""
    candidates = [Path(name_or_path)] if name_or_path.endswith((".yaml", ".yml")) else [
        d / f"{name_or_path}.yaml" for d in suite_dirs()
    ]
    for path in candidates:
        if path.is_file():
            return parse_suite(read_text(path, "suite file"), str(path), Path(path).stem)
    names = sorted({p.stem for d in suite_dirs() if d.is_dir() for p in d.glob("*.yaml")})
    raise ConfigError(f"no suite {name_or_path!r} (known: {', '.join(names) or 'none'}; "
                      "or give a path to a .yaml file)")
