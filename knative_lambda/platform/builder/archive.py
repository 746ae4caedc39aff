"""Safe extraction of a function archive (tar.gz, tar or zip).

The checks are pure functions over member *metadata* (:class:`Member`), run
before a byte is written, so they can be tested exhaustively as tables:
absolute paths, ``..``, links of any kind (a link is how an archive reaches
outside the build directory later), device files and fifos, and bombs (too
many entries, too many bytes, too high a compression ratio). The I/O half only
ever writes regular files and directories under the destination, and bounds
what it decompresses, so a header that lies cannot get past the limits either.
"""

from __future__ import annotations

import gzip
import io
import stat
import tarfile
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path, PurePosixPath

from knative_lambda.platform.builder.errors import ArchiveRejected

RATIO_FLOOR = 1024 * 1024  # below 1 MiB a high ratio is just tar padding, not a bomb
TAR_SLACK = 20 * 1024  # tar record padding: a 100-byte tar.gz of one small file is 10 KiB raw
NAME_MAX = 255  # bytes of one path component (Linux NAME_MAX)
PATH_MAX = 1024  # bytes of a whole entry path: far beyond any real function, far below PATH_MAX
# Unicode controls that make a name display differently from what it is (bidi overrides, isolates).
_BIDI = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C)}


class Kind(StrEnum):
    FILE = "file"
    DIR = "directory"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"
    CHARDEV = "character device"
    BLOCKDEV = "block device"
    FIFO = "fifo"
    OTHER = "special file"


@dataclass(frozen=True)
class Member:
    name: str
    kind: Kind = Kind.FILE
    size: int = 0
    link: str = ""


@dataclass(frozen=True)
class Limits:
    max_entries: int = 10_000
    max_bytes: int = 256 * 1024 * 1024
    max_ratio: float = 200.0
    ratio_floor: int = RATIO_FLOOR


# ---------------------------------------------------------------- pure checks


def format_of(data: bytes) -> str:
    """``tar.gz``, ``tar``, ``zip`` or ``file`` (a single source file), by magic bytes."""
    if data[:2] == b"\x1f\x8b":
        return "tar.gz"
    if data[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if len(data) >= 262 and data[257:262] == b"ustar":
        return "tar"
    return "file"


def safe_name(name: str) -> str:
    """The member's path relative to the destination, or ArchiveRejected saying why not.

    Returns "" for entries that name the root itself ("./"), which are skipped.
    """
    if "\x00" in name:
        raise ArchiveRejected(f"archive entry {name!r} has a NUL byte in its name")
    if any(0xD800 <= ord(c) <= 0xDFFF for c in name):  # undecodable bytes, kept as surrogates
        raise ArchiveRejected(f"archive entry name {name!r} is not valid UTF-8")
    if any(ord(c) < 32 or ord(c) == 127 or 0x80 <= ord(c) < 0xA0 for c in name):
        raise ArchiveRejected(f"archive entry name {name!r} has control characters")
    if any(c in _BIDI for c in name):
        raise ArchiveRejected(f"archive entry name {name!r} has bidirectional-override characters")
    if "\\" in name:
        raise ArchiveRejected(f"archive entry {name!r} uses a backslash path (not portable, refused)")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise ArchiveRejected(f"archive entry {name!r} has an absolute path")
    parts = [p for p in PurePosixPath(name).parts if p not in ("", ".")]
    if ".." in parts:
        raise ArchiveRejected(f"archive entry {name!r} escapes the build directory ('..')")
    if any(len(p.encode()) > NAME_MAX for p in parts):
        raise ArchiveRejected(f"archive entry {name[:80]!r}... has a name too long (over {NAME_MAX} bytes)")
    path = "/".join(parts)
    if len(path.encode()) > PATH_MAX:
        raise ArchiveRejected(f"archive entry {name[:80]!r}... has a path too long (over {PATH_MAX} bytes)")
    return path


def _link_escapes(name: str, target: str) -> bool:
    if target.startswith("/"):
        return True
    depth = len(PurePosixPath(name).parent.parts)
    for part in PurePosixPath(target).parts:
        depth += -1 if part == ".." else (0 if part == "." else 1)
        if depth < 0:
            return True
    return False


def check_member(member: Member) -> str:
    """Check one entry; returns its safe relative path ("" = skip) or raises ArchiveRejected."""
    path = safe_name(member.name)
    if member.kind in (Kind.SYMLINK, Kind.HARDLINK):
        # Any link is refused: even one pointing inside can be re-pointed by a later
        # entry or followed by a tool that writes through it.
        where = "points outside the build directory" if _link_escapes(
            path if member.kind is Kind.SYMLINK else "", member.link
        ) else "is not allowed (links are refused)"
        raise ArchiveRejected(f"archive entry {member.name!r} is a {member.kind} to {member.link!r} that {where}")
    if member.kind not in (Kind.FILE, Kind.DIR):
        raise ArchiveRejected(f"archive entry {member.name!r} is a {member.kind} (only files and directories are allowed)")
    if member.size < 0:
        raise ArchiveRejected(f"archive entry {member.name!r} has a negative size")
    return path


def check_totals(entries: int, total: int, compressed: int, limits: Limits) -> None:
    """Bomb checks on running totals, so a scan can stop at the first excess."""
    if entries > limits.max_entries:
        raise ArchiveRejected(f"archive has more than {limits.max_entries} entries (limit KL_BUILD_MAX_ENTRIES)")
    if total > limits.max_bytes:
        raise ArchiveRejected(
            f"archive expands to more than {limits.max_bytes} bytes (limit KL_BUILD_MAX_BYTES)"
        )
    if total > limits.ratio_floor and compressed > 0 and total / compressed > limits.max_ratio:
        raise ArchiveRejected(
            f"archive expands {total / compressed:.0f}x its size, more than the limit "
            f"{limits.max_ratio:.0f}x (a compression bomb; limit KL_BUILD_MAX_RATIO)"
        )


class Tree:
    """The paths seen so far, to refuse entries that would overwrite or shadow earlier ones."""

    def __init__(self) -> None:
        self.files: set[str] = set()
        self.dirs: set[str] = set()
        self.normal: dict[str, str] = {}  # NFC-normalized path -> path as written

    def add(self, path: str, kind: Kind) -> None:
        folded = unicodedata.normalize("NFC", path)
        other = self.normal.get(folded)
        if other is not None and other != path:
            # Distinct bytes, the same name to a reader (and on macOS): refuse the ambiguity.
            raise ArchiveRejected(f"archive entry names {other!r} and {path!r} collide after Unicode normalization")
        self.normal[folded] = path
        parents = ["/".join(path.split("/")[:i]) for i in range(1, path.count("/") + 1)]
        for parent in parents:
            if parent in self.files:
                raise ArchiveRejected(f"archive entry {path!r} lies under a file of the same name ({parent!r})")
        if kind is Kind.DIR:
            if path in self.files:
                raise ArchiveRejected(f"archive entry {path!r} is both a file and a directory")
        else:
            if path in self.dirs:
                raise ArchiveRejected(f"archive entry {path!r} is both a file and a directory")
            if path in self.files:
                raise ArchiveRejected(f"archive has a duplicate entry {path!r} (a later copy would silently win)")
            self.files.add(path)
        self.dirs.update(parents)
        if kind is Kind.DIR:
            self.dirs.add(path)


def scan(members: Iterable[Member], compressed: int, limits: Limits) -> Iterator[tuple[str, Member]]:
    """Yield ``(safe_path, member)`` for each acceptable entry; raise at the first bad one.

    Lazy on purpose: a streamed tar is not read past the first problem.
    """
    total = 0
    tree = Tree()
    for entries, member in enumerate(members, 1):
        total += max(member.size, 0)
        check_totals(entries, total, compressed, limits)
        path = check_member(member)
        if path:
            tree.add(path, member.kind)
            yield path, member


# ---------------------------------------------------------------- metadata adapters


def tar_kind(info: tarfile.TarInfo) -> Kind:
    if info.isreg():
        return Kind.FILE
    if info.isdir():
        return Kind.DIR
    if info.issym():
        return Kind.SYMLINK
    if info.islnk():
        return Kind.HARDLINK
    if info.ischr():
        return Kind.CHARDEV
    if info.isblk():
        return Kind.BLOCKDEV
    if info.isfifo():
        return Kind.FIFO
    return Kind.OTHER


def zip_kind(info: zipfile.ZipInfo) -> Kind:
    mode = info.external_attr >> 16
    if info.is_dir() or stat.S_ISDIR(mode):
        return Kind.DIR
    if mode == 0 or stat.S_ISREG(mode):
        return Kind.FILE
    if stat.S_ISLNK(mode):
        return Kind.SYMLINK
    if stat.S_ISCHR(mode):
        return Kind.CHARDEV
    if stat.S_ISBLK(mode):
        return Kind.BLOCKDEV
    if stat.S_ISFIFO(mode):
        return Kind.FIFO
    return Kind.OTHER


class _Bounded(io.RawIOBase):
    """A decompressed stream that refuses to yield more than a budget.

    The budget is the data limit plus room for headers and padding. The ratio is
    checked on member sizes (scan), not here: 10,000 empty headers compress 1000x
    and are an entry-count bomb, which is the message a person should read.
    """

    def __init__(self, inner: io.BufferedIOBase, budget: int, limits: Limits):
        self.inner, self.budget, self.limits, self.seen = inner, budget, limits, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        data = self.inner.read(len(buffer))
        self.seen += len(data)
        if self.seen > self.budget:
            raise ArchiveRejected(f"archive expands to more than {self.limits.max_bytes} bytes (limit KL_BUILD_MAX_BYTES)")
        buffer[: len(data)] = data
        return len(data)


def _write(dest: Path, rel: str, source: io.BufferedIOBase | None, size: int, executable: bool) -> None:
    target = dest.joinpath(*rel.split("/"))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as out:
            left = size + 1  # read one byte more than declared, to catch a lying header
            while source is not None and left > 0:
                chunk = source.read(min(left, 1 << 16))
                if not chunk:
                    break
                out.write(chunk)
                left -= len(chunk)
            if left <= 0:
                raise ArchiveRejected(f"archive entry {rel!r} holds more data than its header declares")
        target.chmod(0o755 if executable else 0o644)
    except IsADirectoryError:
        raise ArchiveRejected(f"archive entry {rel!r} is both a file and a directory") from None
    except (NotADirectoryError, FileExistsError):
        raise ArchiveRejected(f"archive entry {rel!r} lies under a file of the same name") from None


def _mkdir(dest: Path, rel: str) -> None:
    try:
        dest.joinpath(*rel.split("/")).mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ArchiveRejected(f"archive entry {rel!r} is both a file and a directory") from None


def _extract_tar(data: bytes, dest: Path, limits: Limits, compressed: bool) -> list[str]:
    raw: io.BufferedIOBase = io.BytesIO(data)
    if compressed:
        raw = gzip.GzipFile(fileobj=raw)
    budget = limits.max_bytes + (limits.max_entries + 1) * 1024 + TAR_SLACK  # data + headers + padding
    bounded = _Bounded(raw, budget, limits)
    stream = io.BufferedReader(bounded)
    written: list[str] = []
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            infos = ((Member(i.name, tar_kind(i), i.size, i.linkname), i) for i in tar)
            current: dict[str, tarfile.TarInfo] = {}

            def members() -> Iterator[Member]:
                for member, info in infos:
                    current["info"] = info
                    yield member

            for rel, member in scan(members(), len(data), limits):
                info = current["info"]
                if member.kind is Kind.DIR:
                    _mkdir(dest, rel)
                    continue
                _write(dest, rel, tar.extractfile(info), member.size, bool(info.mode & 0o111))
                written.append(rel)
            end = tar.offset  # where the end-of-archive block must start
        while stream.read(1 << 16):  # drain (bounded) to learn the real length
            pass
        if bounded.seen < end + tarfile.BLOCKSIZE:
            # tarfile takes a header cut short for the end of the archive: part of the upload is lost.
            raise ArchiveRejected(f"archive is not a readable tar{'.gz' if compressed else ''}: it is truncated")
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, OSError) as exc:
        raise ArchiveRejected(f"archive is not a readable tar{'.gz' if compressed else ''}: {exc}") from None
    return written


def _extract_zip(data: bytes, dest: Path, limits: Limits) -> list[str]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise ArchiveRejected(f"archive is not a readable zip: {exc}") from None
    with archive:
        infos = archive.infolist()
        members = [Member(i.filename, zip_kind(i), i.file_size) for i in infos]
        # A zip's directory is read without decompressing, so check everything first.
        checked = list(scan(members, len(data), limits))
        by_name = {i.filename: i for i in infos}
        written: list[str] = []
        for rel, member in checked:
            if member.kind is Kind.DIR:
                _mkdir(dest, rel)
                continue
            info = by_name[member.name]
            try:
                with archive.open(info) as source:
                    _write(dest, rel, source, member.size, bool((info.external_attr >> 16) & 0o111))
            except (zipfile.BadZipFile, RuntimeError, NotImplementedError, ValueError) as exc:
                raise ArchiveRejected(f"archive entry {rel!r} cannot be read: {exc}") from None
            except OSError as exc:
                raise ArchiveRejected(f"archive entry {rel!r} cannot be written: {exc.strerror or exc}") from None
            written.append(rel)
    return written


def extract(data: bytes, dest: Path, limits: Limits | None = None) -> list[str]:
    """Extract an archive into ``dest`` (which must exist); returns the files written.

    Raises ArchiveRejected with the reason for anything hostile or oversized.
    """
    limits = limits or Limits()
    kind = format_of(data)
    if kind == "zip":
        return _extract_zip(data, dest, limits)
    if kind in ("tar.gz", "tar"):
        return _extract_tar(data, dest, limits, compressed=kind == "tar.gz")
    raise ArchiveRejected("source is not an archive (expected tar.gz, tar or zip)")
