"""A data folder's digest (part of the study's identity) is cached between starts: a second start reads no file that
did not change, and a changed file still changes the digest."""

from __future__ import annotations

import hashlib
import os
import time

import pytest

from extf.data import lineage


@pytest.fixture
def reads(monkeypatch):
    """The files whose bytes are read for a digest, as a fresh process would (no in-process memo)."""
    read: list[str] = []
    uncached = lineage._file_digest.__wrapped__

    def file_digest(path, *stamp):
        read.append(os.path.basename(path))
        return uncached(path, *stamp)

    monkeypatch.setattr(lineage, "_file_digest", file_digest)
    return read


def make_folder(root):
    for cls in ("cat", "dog"):
        (root / "images" / cls).mkdir(parents=True)
        for n in range(3):
            (root / "images" / cls / f"{cls}{n}.png").write_bytes(f"{cls} image {n}".encode() * 100)
    return {"name": "image_dir", "path": str(root / "images")}


def expected_digest(folder) -> str:
    """The digest as the study identity has always computed it (so existing studies keep their identity)."""
    h = hashlib.sha256()
    for f in sorted(q for q in folder.rglob("*") if q.is_file()):
        h.update(str(f.relative_to(folder)).encode() + b"\0" + hashlib.sha256(f.read_bytes()).hexdigest().encode())
    return h.hexdigest()


def test_a_second_start_reads_no_unchanged_file(tmp_path, reads):
    ds, cache = make_folder(tmp_path), tmp_path / "outputs" / "studies" / ".data-digests"
    first = lineage.data_digest(ds, cache)
    assert first == expected_digest(tmp_path / "images") and len(reads) == 6
    assert [p.name for p in cache.iterdir()] and not list(cache.glob("*.tmp"))  # written whole, no leftovers
    reads.clear()
    assert lineage.data_digest(ds, cache) == first and reads == []
    assert lineage.data_digest(ds) == first and len(reads) == 6  # without a cache folder: every file is read


def test_a_changed_file_changes_the_digest_and_only_it_is_read_again(tmp_path, reads):
    ds, cache = make_folder(tmp_path), tmp_path / "cache"
    first = lineage.data_digest(ds, cache)
    changed = tmp_path / "images" / "dog" / "dog1.png"
    before = changed.stat()
    time.sleep(0.05)  # the change time moves on
    changed.write_bytes(changed.read_bytes()[::-1])  # same size, other content
    os.utime(changed, ns=(before.st_atime_ns, before.st_mtime_ns))  # and the old modification time (cp -p, rsync)
    reads.clear()
    second = lineage.data_digest(ds, cache)
    assert second != first and second == expected_digest(tmp_path / "images") and reads == ["dog1.png"]
    (tmp_path / "images" / "cat" / "cat3.png").write_bytes(b"a new image")
    (tmp_path / "images" / "dog" / "dog0.png").unlink()
    reads.clear()
    third = lineage.data_digest(ds, cache)
    assert third not in (first, second) and third == expected_digest(tmp_path / "images") and reads == ["cat3.png"]


def test_a_single_file_is_cached_too_and_a_damaged_cache_is_ignored(tmp_path, reads):
    data = tmp_path / "table.csv"
    data.write_text("a,b\n1,2\n")
    cache = tmp_path / "cache"
    digest = lineage.data_digest({"path": str(data)}, cache)
    assert digest == hashlib.sha256(data.read_bytes()).hexdigest() and reads == ["table.csv"]
    reads.clear()
    assert lineage.data_digest({"path": str(data)}, cache) == digest and reads == []
    for damaged in ("{not json", '{"data": "elsewhere", "files": {}}', '{"data": 1, "files": []}'):
        (cache_file,) = cache.iterdir()
        cache_file.write_text(damaged)
        reads.clear()
        assert lineage.data_digest({"path": str(data)}, cache) == digest and reads == ["table.csv"]


def test_a_cache_that_cannot_be_written_costs_a_read_not_an_error(tmp_path, reads):
    ds = make_folder(tmp_path)
    blocked = tmp_path / "a file, not a folder"
    blocked.write_text("")
    assert lineage.data_digest(ds, blocked / "cache") == expected_digest(tmp_path / "images") and len(reads) == 6


def test_the_study_identity_uses_the_cache_in_the_studies_folder(tmp_path, reads):
    from extf.tuning.study import DIGEST_CACHE, study_identity
    from tests.conftest import compose

    ds = make_folder(tmp_path)
    cfg = compose(["dataset=image_dir", f"dataset.path={ds['path']}", f"paths.root_dir={tmp_path}"], tmp_path / "out")
    study, _, data = study_identity(cfg)
    assert data == expected_digest(tmp_path / "images") and len(reads) == 6
    assert list((tmp_path / "outputs" / "studies" / DIGEST_CACHE).glob("*.json"))
    reads.clear()
    assert study_identity(cfg)[0] == study and reads == []
    (tmp_path / "images" / "cat" / "cat0.png").write_bytes(b"another cat")
    assert study_identity(cfg)[0] != study and reads == ["cat0.png"]  # changed data: another study
