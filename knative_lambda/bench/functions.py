"""Sources of the functions benchmarks deploy, made in memory.

``nonce`` makes a source unique (a different content hash), so that a build of
it cannot be a cache hit.
"""

from __future__ import annotations

import io
import tarfile
import uuid

PYTHON_HELLO = b'''def handle(event):
    return {"hello": "world", "echo": event}
'''

NODE_HELLO = b'''module.exports = {
  handle: (event) => ({ hello: "world", echo: event }),
};
'''

# Stamps when the event reached the function: the events benchmark measures
# ingress -> function from it, whatever the reply's way back costs.
PYTHON_STAMP = b'''import time


def handle(event):
    return {"received_at": time.time()}
'''

PYTHON_WITH_DEP = b'''import six


def handle(event):
    return {"six": six.__version__, "echo": event}
'''


def _tagged(source: bytes, nonce: str | None, comment: bytes) -> bytes:
    return source if nonce is None else source + comment + nonce.encode() + b"\n"


def python_hello(nonce: str | None = None) -> bytes:
    return _tagged(PYTHON_HELLO, nonce, b"# nonce ")


def node_hello(nonce: str | None = None) -> bytes:
    return _tagged(NODE_HELLO, nonce, b"// nonce ")


def tar_gz(files: dict[str, bytes]) -> bytes:
    """A tar.gz holding ``files`` (name -> content, mode 0644): a source archive for S3."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def python_with_dependency(nonce: str | None = None) -> bytes:
    """A tar.gz holding handler.py and a requirements.txt with one small package."""
    return tar_gz({"handler.py": _tagged(PYTHON_WITH_DEP, nonce, b"# nonce "),
                   "requirements.txt": b"six>=1.16,<2\n"})


def python_stamp(nonce: str | None = None) -> bytes:
    return _tagged(PYTHON_STAMP, nonce, b"# nonce ")


SOURCES = {"python": python_hello, "node": node_hello, "python-dep": python_with_dependency,
           "python-stamp": python_stamp}


def unique_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"
