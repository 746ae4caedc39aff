"""The state file: what ``kl up`` started, so later commands and runs can find it.

It is written after every step of ``up`` (atomically), so a crash part-way
leaves a file that ``down`` can still clean up from.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from knative_lambda.errors import ConfigError
from knative_lambda.files import read_json
from knative_lambda.settings import Settings

DEFAULT_STATE = Path(".kl/env.json")


def default_state_path() -> Path:
    return Path(os.environ.get("KL_STATE", str(DEFAULT_STATE)))


@dataclass
class State:
    target: str = "local"
    settings: dict[str, Any] = field(default_factory=dict)
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    components: dict[str, dict[str, Any]] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)

    def platform_settings(self) -> Settings:
        known = {f.name for f in fields(Settings)}
        values = {k: v for k, v in self.settings.items() if k in known}
        if "data_dir" in values:
            values["data_dir"] = Path(values["data_dir"])
        return Settings(**values)


def settings_to_dict(settings: Settings) -> dict[str, Any]:
    data = asdict(settings)
    data["data_dir"] = str(settings.data_dir)
    return data


def load(path: Path | str | None = None) -> State:
    """Read the state file; a missing or unreadable one is a ConfigError saying what to do."""
    path = Path(path) if path else default_state_path()
    raw = read_json(path, "state file", hint="; remove it or run 'kl down'",
                    missing=f"no platform state at {path}: run 'kl up' first (or pass --state)")
    if not isinstance(raw, dict):
        raise ConfigError(f"state file {path} is not a JSON object; remove it or run 'kl down'")
    known = {f.name for f in fields(State)}
    return State(**{k: v for k, v in raw.items() if k in known})


def save(state: State, path: Path | str | None = None) -> None:
    path = Path(path) if path else default_state_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    # owner-only: the state holds the platform's token and S3 keys
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an older .tmp may have had wider permissions
    with os.fdopen(fd, "w") as out:
        out.write(json.dumps(asdict(state), indent=2, sort_keys=True))
    os.replace(tmp, path)


def settings_from_state(path: Path | str | None = None) -> Settings:
    """Settings of a running platform, for CLI commands and tests."""
    return load(path).platform_settings()
