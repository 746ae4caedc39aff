"""The project's exception base.

    KLError                      anything this project raises on purpose
    ├── ContractError            an event or value breaks the contract (lists every problem)
    ├── ConfigError              bad settings, spec or budget file
    └── PlatformError            a runtime failure of a platform part
        └── ServiceUnavailable   a backing service (RabbitMQ, S3, Docker) cannot start or be reached

The CLI prints ``str(error)`` of a KLError in one line and exits 2; anything else
is a bug and gets a traceback.
"""

from __future__ import annotations


class KLError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigError(KLError):
    """Invalid configuration, spec or input file."""


class PlatformError(KLError):
    """A platform part failed at run time."""


class ServiceUnavailable(PlatformError):
    """A backing service cannot start or be reached; the message says what to install or do."""
