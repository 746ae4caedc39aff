"""Why a build did not produce an artifact.

    PlatformError
    └── BuildFailed          -> P.build.failed (message is what a person needs to act)
        ├── SourceMissing    the bucket or the object global/parser/<id> is not there
        ├── ArchiveRejected  a hostile or oversized archive (path, link, device, bomb)
        ├── FunctionInvalid  no runtime found, syntax error (with its line), no handler
        ├── DependencyFailed requirements.txt / package.json install failed (tool's reason)
        ├── BackoffActive    the same code failed recently; says when the window ends
        └── BuildTimedOut    -> P.build.timeout (the build process was killed)
"""

from __future__ import annotations

from knative_lambda.errors import PlatformError


class BuildFailed(PlatformError):
    status = "failed"
    exit_code = 1


class SourceMissing(BuildFailed):
    exit_code = 2


class ArchiveRejected(BuildFailed):
    exit_code = 3


class FunctionInvalid(BuildFailed):
    exit_code = 4


class DependencyFailed(BuildFailed):
    exit_code = 5


class BackoffActive(BuildFailed):
    exit_code = 75  # EX_TEMPFAIL: try again later


class BuildTimedOut(BuildFailed):
    status = "timeout"
    exit_code = 124  # as timeout(1)
