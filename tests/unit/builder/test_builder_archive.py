"""Archive safety: the pure member checks as tables, then real tar/zip bytes end to end."""

from __future__ import annotations

import gzip
import io
import stat
import tarfile
import warnings
import zipfile

import pytest

from knative_lambda.platform.builder import archive
from knative_lambda.platform.builder.archive import Kind, Limits, Member
from knative_lambda.platform.builder.errors import ArchiveRejected

SMALL = Limits(max_entries=10, max_bytes=10_000, max_ratio=50.0, ratio_floor=1000)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("handler.py", "handler.py"),
        ("./handler.py", "handler.py"),
        ("src/./lib/x.py", "src/lib/x.py"),
        ("dir/", "dir"),
        ("./", ""),
        (".", ""),
        ("a//b", "a/b"),
    ],
)
def test_safe_names_are_normalized(name: str, expected: str) -> None:
    assert archive.safe_name(name) == expected


@pytest.mark.parametrize(
    "name, reason",
    [
        ("/etc/passwd", "absolute path"),
        ("//server/share", "absolute path"),
        ("C:/windows/x", "absolute path"),
        ("../x", "escapes"),
        ("a/../../x", "escapes"),
        ("a/..", "escapes"),
        ("..", "escapes"),
        ("a\\..\\x", "backslash"),
        ("a\x00b", "NUL"),
        ("evil\n\x1b[31m.py", "control characters"),
        ("x\x7f.py", "control characters"),
        ("handler\u202eyp.txt", "bidirectional"),
        ("a\u2066b.py", "bidirectional"),
        ("\udcff\udcfe.py", "not valid UTF-8"),
        ("n" * 256 + ".py", "name too long"),
        ("/".join(["d"] * 600) + "/x.py", "path too long"),
    ],
)
def test_hostile_names_are_rejected(name: str, reason: str) -> None:
    with pytest.raises(ArchiveRejected, match=reason):
        archive.safe_name(name)


@pytest.mark.parametrize(
    "member, reason",
    [
        (Member("link", Kind.SYMLINK, link="/etc/passwd"), "points outside"),
        (Member("a/link", Kind.SYMLINK, link="../../x"), "points outside"),
        (Member("a/link", Kind.SYMLINK, link="../b"), "not allowed"),  # inside, still refused
        (Member("link", Kind.SYMLINK, link="handler.py"), "not allowed"),
        (Member("hard", Kind.HARDLINK, link="/etc/shadow"), "points outside"),
        (Member("hard", Kind.HARDLINK, link="../x"), "points outside"),
        (Member("hard", Kind.HARDLINK, link="handler.py"), "not allowed"),
        (Member("dev", Kind.CHARDEV), "character device"),
        (Member("blk", Kind.BLOCKDEV), "block device"),
        (Member("pipe", Kind.FIFO), "fifo"),
        (Member("weird", Kind.OTHER), "special file"),
        (Member("neg", Kind.FILE, size=-1), "negative size"),
    ],
)
def test_member_kinds_rejected(member: Member, reason: str) -> None:
    with pytest.raises(ArchiveRejected, match=reason):
        archive.check_member(member)


@pytest.mark.parametrize("member", [Member("a.py", Kind.FILE, 10), Member("d/", Kind.DIR), Member("d/e/f.txt")])
def test_member_kinds_accepted(member: Member) -> None:
    assert archive.check_member(member)


@pytest.mark.parametrize(
    "entries, total, compressed, reason",
    [
        (11, 10, 100, "more than 10 entries"),
        (1, 10_001, 10_000, "more than 10000 bytes"),
        (1, 5000, 10, "compression bomb"),  # 500x > 50x, above the floor
    ],
)
def test_totals_rejected(entries: int, total: int, compressed: int, reason: str) -> None:
    with pytest.raises(ArchiveRejected, match=reason):
        archive.check_totals(entries, total, compressed, SMALL)


@pytest.mark.parametrize(
    "entries, total, compressed",
    [(10, 10_000, 10_000), (1, 999, 1), (5, 5000, 100)],  # below the ratio floor / within ratio
)
def test_totals_accepted(entries: int, total: int, compressed: int) -> None:
    archive.check_totals(entries, total, compressed, SMALL)


@pytest.mark.parametrize(
    "members, reason",
    [
        ([Member("a.py"), Member("a.py")], "duplicate entry 'a.py'"),
        ([Member("./a.py"), Member("a.py")], "duplicate entry"),
        ([Member("a"), Member("a/b.py")], "lies under a file"),
        ([Member("a/b"), Member("a/b/c/d.py")], "lies under a file"),
        ([Member("d", Kind.DIR), Member("d")], "both a file and a directory"),
        ([Member("d/x.py"), Member("d")], "both a file and a directory"),
        ([Member("d"), Member("d", Kind.DIR)], "both a file and a directory"),
        ([Member("caf\u00e9.py"), Member("cafe\u0301.py")], "collide after Unicode normalization"),
    ],
)
def test_tree_conflicts_rejected(members: list[Member], reason: str) -> None:
    with pytest.raises(ArchiveRejected, match=reason):
        list(archive.scan(members, 1000, SMALL))


@pytest.mark.parametrize(
    "members",
    [
        [Member("d", Kind.DIR), Member("d", Kind.DIR), Member("d/a.py")],  # repeated dirs are harmless
        [Member("d/a.py"), Member("d", Kind.DIR), Member("d/b.py")],
        [Member("./"), Member("./"), Member("a.py")],
        [Member("Handler.py"), Member("handler.py")],  # case differs: distinct on Linux, allowed
    ],
)
def test_tree_accepts(members: list[Member]) -> None:
    kept = [path for path, _ in archive.scan(members, 1000, SMALL)]
    assert kept == [p for p in (archive.safe_name(m.name) for m in members) if p]


def test_scan_stops_at_first_problem_without_reading_further() -> None:
    consumed: list[str] = []

    def members():
        for name in ("ok.py", "../evil", "never.py"):
            consumed.append(name)
            yield Member(name)

    with pytest.raises(ArchiveRejected):
        list(archive.scan(members(), 100, SMALL))
    assert consumed == ["ok.py", "../evil"]


@pytest.mark.parametrize(
    "data, kind",
    [(b"\x1f\x8b\x08rest", "tar.gz"), (b"PK\x03\x04rest", "zip"), (b"def handle(e): pass", "file"),
     (b"x" * 257 + b"ustar" + b"\0" * 10, "tar")],
)
def test_format_of(data: bytes, kind: str) -> None:
    assert archive.format_of(data) == kind


# ------------------------------------------------------------------ real bytes


def make_tar(entries: list[tarfile.TarInfo | tuple[str, bytes]], gz: bool = True) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if gz else "w") as tar:
        for entry in entries:
            if isinstance(entry, tuple):
                info = tarfile.TarInfo(entry[0])
                info.size = len(entry[1])
                tar.addfile(info, io.BytesIO(entry[1]))
            else:
                tar.addfile(entry)
    return buffer.getvalue()


def special(name: str, type_: bytes, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = type_
    info.linkname = link
    return info


def make_zip(entries: list[tuple[str, bytes, int]]) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        warnings.simplefilter("ignore")  # "Duplicate name": one case is about duplicates
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return buffer.getvalue()


HOSTILE = {
    "traversal": make_tar([("handler.py", b"x"), ("../../evil.py", b"x")]),
    "absolute": make_tar([("/tmp/evil.py", b"x")]),
    "symlink-out": make_tar([special("link", tarfile.SYMTYPE, "/etc/passwd")]),
    "symlink-in": make_tar([("a.py", b"x"), special("b.py", tarfile.SYMTYPE, "a.py")]),
    "hardlink": make_tar([special("h", tarfile.LNKTYPE, "/etc/shadow")]),
    "chardev": make_tar([special("null", tarfile.CHRTYPE)]),
    "blockdev": make_tar([special("sda", tarfile.BLKTYPE)]),
    "fifo": make_tar([special("pipe", tarfile.FIFOTYPE)]),
    "count-bomb": make_tar([(f"f{i}.txt", b"") for i in range(11)]),
    "size-bomb": make_tar([("big.bin", b"\0" * 20_000)], gz=False),
    "ratio-bomb": make_tar([("zeros.bin", b"\0" * 9_000)]),
    "plain-tar-traversal": make_tar([("../x", b"x")], gz=False),
    "zip-traversal": make_zip([("../evil.py", b"x", 0o100644)]),
    "zip-absolute": make_zip([("/etc/cron.d/evil", b"x", 0o100644)]),
    "zip-symlink": make_zip([("link", b"/etc/passwd", stat.S_IFLNK | 0o777)]),
    "zip-fifo": make_zip([("pipe", b"", stat.S_IFIFO | 0o644)]),
    "zip-count-bomb": make_zip([(f"f{i}", b"", 0o100644) for i in range(11)]),
    "zip-ratio-bomb": make_zip([("zeros", b"\0" * 9_000, 0o100644)]),
    "zip-size-bomb": make_zip([("a", bytes(range(256)) * 20, 0o100644), ("b", bytes(range(256)) * 20, 0o100644)]),
    "not-gzip": b"\x1f\x8bgarbage",
    "tar-cut-in-header": make_tar([("a.py", b"x"), ("b.bin", b"y" * 5000)], gz=False)[:1500],
    "tar-cut-at-header": make_tar([("a.py", b"x"), ("b.bin", b"y" * 5000)], gz=False)[:1024],
    "tar-cut-in-data": make_tar([("a.py", b"x"), ("b.bin", b"y" * 5000)], gz=False)[:3000],
    "tgz-cut": make_tar([("a.py", b"x"), ("b.bin", bytes(range(256)) * 40)])[:200],
    "duplicate": make_tar([("a.py", b"x"), ("a.py", b"y")]),
    "zip-duplicate": make_zip([("a.py", b"x", 0o100644), ("a.py", b"y", 0o100644)]),
    "file-then-under": make_tar([("a", b"x"), ("a/b.py", b"x")]),
    "zip-file-then-under": make_zip([("a", b"x", 0o100644), ("a/b.py", b"x", 0o100644)]),
    "zip-long-name": make_zip([("n" * 300 + ".py", b"x", 0o100644)]),
    "count-of-empty-headers": make_tar([special("./", tarfile.DIRTYPE) for _ in range(11)]),
    "truncated-zip": make_zip([("a.py", b"x" * 100, 0o100644)])[:30],
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_archives_rejected_and_nothing_escapes(name: str, tmp_path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(ArchiveRejected) as info:
        archive.extract(HOSTILE[name], dest, SMALL)
    assert str(info.value)  # a reason a person can read
    outside = {p for p in tmp_path.rglob("*") if not p.is_relative_to(dest)} - {dest}
    assert outside == set()
    assert not any(p.is_symlink() for p in dest.rglob("*"))


def test_lying_gzip_stream_is_bounded(tmp_path) -> None:
    # A tar whose decompressed stream is far bigger than the limits allow, in one member.
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("zeros")
        info.size = 2_000_000
        tar.addfile(info, io.BytesIO(b"\0" * info.size))
    bomb = gzip.compress(raw.getvalue())
    with pytest.raises(ArchiveRejected, match="bytes|bomb"):
        archive.extract(bomb, tmp_path, SMALL)


@pytest.mark.parametrize("gz", [True, False])
def test_benign_tar_extracts(gz: bool, tmp_path) -> None:
    info = tarfile.TarInfo("fn/")
    info.type = tarfile.DIRTYPE
    data = make_tar([info, ("fn/handler.py", b"def handle(e):\n    return 1\n"), ("fn/requirements.txt", b"six\n")], gz)
    files = archive.extract(data, tmp_path, SMALL)
    assert sorted(files) == ["fn/handler.py", "fn/requirements.txt"]
    assert (tmp_path / "fn" / "handler.py").read_text().startswith("def handle")


def test_benign_zip_extracts(tmp_path) -> None:
    data = make_zip([("index.js", b"module.exports={handle:()=>1}", 0o100644), ("lib/", b"", stat.S_IFDIR | 0o755)])
    assert archive.extract(data, tmp_path, SMALL) == ["index.js"]
    assert (tmp_path / "lib").is_dir()


def test_single_file_is_not_an_archive(tmp_path) -> None:
    with pytest.raises(ArchiveRejected, match="not an archive"):
        archive.extract(b"def handle(e): pass", tmp_path, SMALL)
