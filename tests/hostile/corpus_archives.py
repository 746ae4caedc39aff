"""Hostile function archives for the builder, as data: each must end in build.failed with its reason.

Every archive is made here, byte by byte where the standard library would
refuse (lying headers, encrypted flags, bad CRCs). Anything an archive tries
to write outside the build directory is named ``kl-hostile-escape-*`` so the
test can look for it afterwards. The unit tests of ``builder/archive.py`` check
the same rules on the extractor alone; these go through the running platform
(S3 upload, build.start through the broker, build.failed back through it).
"""

from __future__ import annotations

import gzip
import io
import stat
import struct
import tarfile
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

ESCAPE = "kl-hostile-escape"
UP = "../" * 40  # enough to reach / from any build directory
HANDLER = b"def handle(event):\n    return event\n"
MiB = 1024 * 1024

@dataclass(frozen=True)
class ArchiveCase:
    id: str
    make: Callable[[], bytes]  # built lazily: some are a few hundred KiB
    expect: tuple[str, ...]  # lowercase substrings of build.failed's error_message
    bug: str = ""
    parameters: dict[str, object] | None = None  # build.start data.parameters, when hostile too


# --- tar ---------------------------------------------------------------------------------


def _info(name: str, type_: bytes = tarfile.REGTYPE, link: str = "", size: int = 0, mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size, info.mode = type_, link, size, mode
    return info


def tar(*entries: tarfile.TarInfo | tuple[str, bytes], gz: bool = True, fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if gz else "w", format=fmt) as archive:
        for entry in entries:
            if isinstance(entry, tuple):
                archive.addfile(_info(entry[0], size=len(entry[1])), io.BytesIO(entry[1]))
            else:
                archive.addfile(entry)
    return buffer.getvalue()


def _with_handler(*entries: tarfile.TarInfo | tuple[str, bytes], gz: bool = True) -> bytes:
    return tar(("handler.py", HANDLER), *entries, gz=gz)


def _tar_lying_size(size: int) -> bytes:
    """One header that claims ``size`` bytes, followed by almost nothing."""
    header = _info("big.bin", size=size).tobuf(tarfile.GNU_FORMAT)
    return gzip.compress(header + b"\0" * 1024)


def _tar_pax_path(path: str) -> bytes:
    """The ustar name says ``ok.py``, a pax header overrides it with ``path``."""
    info = _info("ok.py", size=len(HANDLER))
    info.pax_headers = {"path": path}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as archive:
        archive.addfile(info, io.BytesIO(HANDLER))
    return buffer.getvalue()


def _tar_bad_utf8_name() -> bytes:
    """An entry name that is not UTF-8 (written through surrogateescape)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.GNU_FORMAT, encoding="utf-8",
                      errors="surrogateescape") as archive:
        archive.addfile(_info("handler.py", size=len(HANDLER)), io.BytesIO(HANDLER))
        archive.addfile(_info("\udcff\udcfe.py", size=1), io.BytesIO(b"x"))
    return buffer.getvalue()


def _count_bomb_tar(count: int) -> bytes:
    # "./" entries count but write nothing: a tar is checked as it streams, so a bomb of
    # real files would first make the builder write 10,000 of them (about 20 s here).
    return tar(*[_info("./", tarfile.DIRTYPE) for _ in range(count)])


# --- zip ---------------------------------------------------------------------------------


def zip_(*entries: tuple[str, bytes] | tuple[str, bytes, int], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w", method) as archive:
        warnings.simplefilter("ignore")  # "Duplicate name": duplicates are the point of one case
        for entry in entries:
            name, data = entry[0], entry[1]
            info = zipfile.ZipInfo(name)
            info.external_attr = (entry[2] if len(entry) > 2 else stat.S_IFREG | 0o644) << 16  # type: ignore[misc]
            info.compress_type = method
            archive.writestr(info, data)
    return buffer.getvalue()


def _zip_patch(data: bytes, old: bytes, new: bytes, count: int = -1) -> bytes:
    assert old in data, (old, data[:60])
    return data.replace(old, new, count)


def _zip_lying_size(size: int) -> bytes:
    """The central directory claims ``size`` uncompressed bytes for a tiny entry."""
    data = bytearray(zip_(("big.bin", b"tiny")))
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 24 : cd + 28] = struct.pack("<I", size)
    return bytes(data)


def _zip_flag(bit: int) -> bytes:
    """Set a general-purpose flag bit (0 = encrypted) in both headers."""
    data = bytearray(zip_(("handler.py", HANDLER)))
    for sig, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.find(sig)
        (flags,) = struct.unpack_from("<H", data, at + offset)
        struct.pack_into("<H", data, at + offset, flags | (1 << bit))
    return bytes(data)


def _zip_method(method: int) -> bytes:
    data = bytearray(zip_(("handler.py", HANDLER)))
    for sig, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        at = data.find(sig)
        struct.pack_into("<H", data, at + offset, method)
    return bytes(data)


def _zip_bad_crc() -> bytes:
    data = bytearray(zip_(("handler.py", HANDLER), method=zipfile.ZIP_STORED))
    for sig, offset in ((b"PK\x03\x04", 14), (b"PK\x01\x02", 16)):
        at = data.find(sig)
        struct.pack_into("<I", data, at + offset, 0xDEADBEEF)
    return bytes(data)


def _zip_header_name_differs() -> bytes:
    """Local header says ``../x.py``, central directory says ``ok/x.py`` (same length)."""
    data = bytearray(zip_(("ok/x.py", HANDLER)))
    at = data.find(b"PK\x03\x04") + 30
    data[at : at + 7] = b"../x.py"
    return bytes(data)


def _zip_count_bomb(count: int) -> bytes:
    return zip_(*[(f"f{i}", b"") for i in range(count)], method=zipfile.ZIP_STORED)


# --- the corpus ----------------------------------------------------------------------------

_ABS = f"/tmp/{ESCAPE}-abs.py"
_REL = f"{UP}tmp/{ESCAPE}-rel.py"


def _c(id_: str, make: Callable[[], bytes], *expect: str, bug: str = "") -> ArchiveCase:
    return ArchiveCase(id_, make, tuple(e.lower() for e in expect), bug)


CASES: list[ArchiveCase] = [
    # tar.gz: paths
    _c("tgz-traversal", lambda: _with_handler((_REL, b"x")), "escapes the build directory"),
    _c("tgz-traversal-middle", lambda: _with_handler((f"a/b/../../../{ESCAPE}-mid.py", b"x")), "escapes"),
    _c("tgz-traversal-dir-entry", lambda: _with_handler(_info(f"{UP}tmp/{ESCAPE}-dir", tarfile.DIRTYPE)), "escapes"),
    _c("tgz-absolute", lambda: _with_handler((_ABS, b"x")), "absolute path"),
    _c("tgz-absolute-dir", lambda: _with_handler(_info(f"/tmp/{ESCAPE}-absdir/", tarfile.DIRTYPE)), "absolute path"),
    _c("tgz-windows-drive", lambda: _with_handler(("C:/Windows/evil.py", b"x")), "absolute path"),
    _c("tgz-backslash-traversal", lambda: _with_handler(("..\\..\\evil.py", b"x")), "backslash"),
    _c("tgz-pax-path-override", lambda: _tar_pax_path(_REL), "escapes"),
    _c("tgz-gnu-longname-traversal", lambda: tar(("handler.py", HANDLER), ("x" * 120 + "/" + _REL, b"x"),
                                                 fmt=tarfile.GNU_FORMAT), "escapes"),
    # tar.gz: links and special files
    _c("tgz-symlink-absolute", lambda: _with_handler(_info("link", tarfile.SYMTYPE, "/etc/passwd")),
       "symlink", "outside"),
    _c("tgz-symlink-relative-out", lambda: _with_handler(_info("link", tarfile.SYMTYPE, UP + "etc")),
       "symlink", "outside"),
    _c("tgz-symlink-then-write-through", lambda: _with_handler(
        _info("lnk", tarfile.SYMTYPE, "/tmp"), (f"lnk/{ESCAPE}-through.py", b"x")), "symlink"),
    _c("tgz-symlink-inside", lambda: _with_handler(_info("alias.py", tarfile.SYMTYPE, "handler.py")),
       "links are refused"),
    _c("tgz-hardlink-out", lambda: _with_handler(_info("h", tarfile.LNKTYPE, "/etc/shadow")), "hardlink"),
    _c("tgz-hardlink-inside", lambda: _with_handler(_info("h.py", tarfile.LNKTYPE, "handler.py")), "hardlink"),
    _c("tgz-chardev", lambda: _with_handler(_info("null", tarfile.CHRTYPE)), "character device"),
    _c("tgz-blockdev", lambda: _with_handler(_info("sda", tarfile.BLKTYPE)), "block device"),
    _c("tgz-fifo", lambda: _with_handler(_info("pipe", tarfile.FIFOTYPE)), "fifo"),
    # tar.gz: bombs
    _c("tgz-count-bomb", lambda: _count_bomb_tar(10_001), "more than 10000 entries"),
    _c("tgz-size-bomb-lying-header", lambda: _tar_lying_size(300 * MiB), "expands to more than"),
    _c("tgz-ratio-bomb", lambda: tar(("zeros.bin", b"\0" * (4 * MiB))), "compression bomb"),
    _c("tgz-ratio-bomb-many-files", lambda: tar(*[(f"z{i}.bin", b"\0" * (256 * 1024)) for i in range(16)]),
       "compression bomb"),
    # tar.gz: structure
    _c("tgz-duplicate-entries", lambda: tar(("handler.py", HANDLER), ("handler.py", b"import os\n" + HANDLER)),
       "duplicate"),
    _c("tgz-file-then-dir", lambda: _with_handler(("a", b"x"), ("a/b.py", b"x")), "under a file"),
    _c("tgz-dir-then-file", lambda: _with_handler(_info("d", tarfile.DIRTYPE), ("d", b"x")),
       "both a file and a directory"),
    _c("tgz-empty", lambda: tar(), "no function found"),
    _c("tgz-corrupted", lambda: b"\x1f\x8b\x08\x00" + b"\x00garbage" * 20, "not a readable tar.gz"),
    _c("tgz-truncated", lambda: _with_handler(("data.bin", bytes(range(256)) * 64))[:200], "not a readable tar.gz"),
    _c("tgz-not-a-tar-inside", lambda: gzip.compress(b"just some text, not a tar " * 40), "not a readable tar"),
    _c("tar-traversal-uncompressed", lambda: _with_handler((_REL, b"x"), gz=False), "escapes"),
    _c("tar-truncated-in-data", lambda: _with_handler(("data.bin", b"y" * 5000), gz=False)[:3000],
       "not a readable tar"),
    _c("tar-truncated-in-header", lambda: _with_handler(("data.bin", b"y" * 5000), gz=False)[:1500],
       "not a readable tar"),
    # tar.gz: names
    _c("tgz-name-too-long", lambda: _with_handler(("n" * 300 + ".py", b"x")), "too long"),
    _c("tgz-path-too-long", lambda: _with_handler(("/".join(["d"] * 2100) + "/x.py", b"x")), "too long"),
    _c("tgz-name-invalid-utf8", _tar_bad_utf8_name, "name"),
    _c("tgz-name-control-chars", lambda: _with_handler(("evil\n\x1b[31m.py", b"x")), "name"),
    _c("tgz-name-bidi-override", lambda: _with_handler(("handler\u202eyp.txt", b"x")), "name"),
    _c("tgz-name-nfc-nfd-collision", lambda: _with_handler(("caf\u00e9.py", b"x"), ("cafe\u0301.py", b"y")),
       "name"),
    # zip
    _c("zip-traversal", lambda: zip_(("handler.py", HANDLER), (_REL, b"x")), "escapes the build directory"),
    _c("zip-absolute", lambda: zip_(("handler.py", HANDLER), (_ABS, b"x")), "absolute path"),
    _c("zip-backslash", lambda: zip_(("handler.py", HANDLER), ("..\\..\\evil.py", b"x")), "backslash"),
    _c("zip-symlink", lambda: zip_(("handler.py", HANDLER), ("link", b"/etc/passwd", stat.S_IFLNK | 0o777)),
       "symlink"),
    _c("zip-fifo", lambda: zip_(("handler.py", HANDLER), ("pipe", b"", stat.S_IFIFO | 0o644)), "fifo"),
    _c("zip-chardev", lambda: zip_(("handler.py", HANDLER), ("tty", b"", stat.S_IFCHR | 0o644)),
       "character device"),
    _c("zip-socket", lambda: zip_(("handler.py", HANDLER), ("sock", b"", stat.S_IFSOCK | 0o644)), "special file"),
    _c("zip-count-bomb", lambda: _zip_count_bomb(10_001), "more than 10000 entries"),
    _c("zip-size-bomb-lying-header", lambda: _zip_lying_size(300 * MiB), "expands to more than"),
    _c("zip-ratio-bomb", lambda: zip_(("zeros.bin", b"\0" * (4 * MiB))), "compression bomb"),
    _c("zip-duplicate-entries", lambda: zip_(("handler.py", HANDLER), ("handler.py", b"import os\n" + HANDLER)),
       "duplicate"),
    _c("zip-file-then-dir", lambda: zip_(("handler.py", HANDLER), ("d", b"x"), ("d/x.py", b"x")), "under a file"),
    _c("zip-empty", lambda: b"PK\x05\x06" + b"\0" * 18, "no function found"),
    _c("zip-truncated", lambda: zip_(("handler.py", HANDLER * 50))[:40], "not a readable zip"),
    _c("zip-encrypted-flag", lambda: _zip_flag(0), "cannot be read"),
    _c("zip-unsupported-method", lambda: _zip_method(99), "cannot be read"),
    _c("zip-bad-crc", lambda: _zip_bad_crc(), "cannot be read"),
    _c("zip-local-name-differs", _zip_header_name_differs, "cannot be read"),
    _c("zip-name-too-long", lambda: zip_(("handler.py", HANDLER), ("n" * 300 + ".py", b"x")), "too long"),
    # not archives at all
    _c("binary-garbage", lambda: bytes(range(256)) * 8, "neither an archive"),
    _c("xz-tarball", lambda: b"\xfd7zXZ\x00" + bytes(range(256)), "neither an archive"),
    _c("empty-object", lambda: b"", "handler"),
    # a good function with hostile build parameters
    *(ArchiveCase(f"param-runtime-{label}", lambda: HANDLER, ("unknown runtime",), parameters={"runtime": value})
      for label, value in (("cobol", "cobol"), ("number", 5), ("list", ["python"]),
                           ("traversal", "../../python"))),
]
