"""Read and parse the files a user hands to kl (budgets, suites, results, state).

Every failure is one ConfigError line that names the file, the kind of file and
why, never a traceback: ``<path>[:line]: cannot read <what> (<why>)<hint>``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from knative_lambda.errors import ConfigError


def read_text(path: Path | str, what: str, *, missing: str | None = None, hint: str = "") -> str:
    """The UTF-8 text of ``path``.

    ``missing`` replaces the message when the file does not exist; ``hint`` (say,
    "; remove it") is added to every other message.
    """
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        if missing is not None and isinstance(exc, FileNotFoundError):
            raise ConfigError(missing) from None
        why = exc.strerror or str(exc)
    except UnicodeDecodeError:
        why = "not UTF-8 text"
    raise ConfigError(f"{path}: cannot read {what} ({why}){hint}") from None


def read_json(path: Path | str, what: str, *, missing: str | None = None, hint: str = "") -> Any:
    """The parsed JSON document in ``path``; errors as for :func:`read_text`."""
    text = read_text(path, what, missing=missing, hint=hint)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where, why = f"{path}:{exc.lineno}", f"not valid JSON: {exc.msg}"
    except RecursionError:
        where, why = str(path), "JSON nested too deeply"
    except ValueError as exc:  # e.g. an integer over sys.get_int_max_str_digits() digits
        where, why = str(path), f"not valid JSON: {exc}"
    raise ConfigError(f"{where}: cannot read {what} ({why}){hint}") from None


def compose_yaml(text: str, source: str) -> yaml.Node | None:
    """The YAML node tree of ``text``, whose marks let later errors name a line.

    Bad YAML is a ConfigError ``<source>:<line>: not valid YAML (<problem>)``.
    """
    try:
        return yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{source}{line}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
