"""Which data a study saw: content digests, and the per-split description logged as MLflow dataset inputs.

A file dataset (dataset.path: a CSV, Parquet, NPZ or text file, or a folder of images) is identified by the SHA-256
of its content, so a study on a changed file is a new study (`extf.tuning.study.study_identity`). An embedded dataset
is made by extf's code from its config, so the config identifies it; its digest is that of the loaded arrays.

Each file's SHA-256 is kept in a small cache file (one per dataset path, in the folder the caller names: the studies'
folder), with the file's size, times and inode: a later start reads only the files that changed, not every byte of
a large image folder again. A file rewritten in place, even with its old size and modification time, has a new
change time (ctime), so it is read again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

CHUNK = 1 << 20
CONTEXTS = (("train", "train"), ("val", "validation"), ("test", "test"))  # Split attribute, MLflow context


def data_path(ds_cfg) -> Path | None:
    """The dataset's file or folder, when it has one that exists (a missing one is the loader's to report)."""
    path = ds_cfg.get("path") if hasattr(ds_cfg, "get") else None
    if not path:
        return None
    p = Path(str(path)).expanduser()
    return p if p.exists() else None


def data_digest(ds_cfg, cache_dir: Path | None = None) -> str | None:
    """SHA-256 of the dataset's file (or of every file under its folder, with their relative paths); None for a
    dataset without a path. `cache_dir`: where the files' digests are cached between starts (None: read them all)."""
    p = data_path(ds_cfg)
    if p is None:
        return None
    files = [p] if p.is_file() else sorted(q for q in p.rglob("*") if q.is_file())
    digests = _cached_digests(p, files, cache_dir)
    if p.is_file():
        return digests[0]
    h = hashlib.sha256()
    for f, digest in zip(files, digests):
        h.update(str(f.relative_to(p)).encode() + b"\0" + digest.encode())
    return h.hexdigest()


def _cached_digests(data: Path, files: list[Path], cache_dir: Path | None) -> list[str]:
    """Each file's SHA-256: from the cache when its size, times and inode are those cached, else read (and the
    cache rewritten atomically; a cache that cannot be written only costs the next start a read)."""
    where = str(data.resolve())
    cache = None if cache_dir is None else Path(cache_dir) / f"{hashlib.sha256(where.encode()).hexdigest()[:16]}.json"
    known = _read_cache(cache, where)
    entries, digests = {}, []
    for f in files:
        key = "" if f == data else str(f.relative_to(data))
        stamp = list(_stamp(f))
        cached = known.get(key)
        digest = cached[-1] if cached and cached[:-1] == stamp else _file_digest(str(f.resolve()), *stamp)
        entries[key] = [*stamp, digest]
        digests.append(digest)
    if cache is not None and entries != known:
        _write_cache(cache, {"data": where, "files": entries})
    return digests


def _read_cache(cache: Path | None, where: str) -> dict:
    """The cached entries {relative path: [size, mtime_ns, ctime_ns, inode, sha256]} of the data at `where`; {}
    when there are none or the file is not a cache of that path."""
    if cache is None:
        return {}
    try:
        saved = json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(saved, dict) or saved.get("data") != where or not isinstance(saved.get("files"), dict):
        return {}
    return {k: v for k, v in saved["files"].items() if isinstance(v, list) and len(v) == 5
            and all(isinstance(n, int) for n in v[:4]) and isinstance(v[4], str) and len(v[4]) == 64}


def _write_cache(cache: Path, content: dict) -> None:
    tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(content), encoding="utf-8")
        os.replace(tmp, cache)  # a reader sees the old cache or the new one, whole
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def _stamp(p: Path) -> tuple[int, int, int, int]:
    st = p.stat()
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


@lru_cache(maxsize=4096)
def _file_digest(path: str, size: int, mtime_ns: int, ctime_ns: int, inode: int) -> str:  # a changed file: read again
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def array_digest(*parts) -> str:
    """SHA-256 of arrays (or of a table's columns {name: values}), for data made in memory."""
    h = hashlib.sha256()
    for part in parts:
        items = sorted(part.items()) if isinstance(part, dict) else [("", part)]
        for name, arr in items:
            arr = np.asarray(arr)
            h.update(f"{name}:{arr.dtype}:{arr.shape}".encode())
            h.update("\0".join(map(str, arr.ravel())).encode() if arr.dtype == object else arr.tobytes())
    return h.hexdigest()


def dataset_inputs(ds_cfg: dict, splits, digest: str | None) -> list[dict]:
    """One MLflow dataset input per split (contexts train / validation / test): name, source, digest of the split's
    content (the data's digest and the split's rows), row count and, for tables, the columns and their types."""
    meta = splits.meta
    p = data_path(ds_cfg)
    if digest is None:
        digest = array_digest(*(_content(getattr(splits, s)) for s, _ in CONTEXTS),
                              *(getattr(splits, s).y for s, _ in CONTEXTS if hasattr(getattr(splits, s), "x")))
    name = p.name if p is not None else meta.name
    # MLflow's LocalArtifactDatasetSource ("local") and CodeDatasetSource ("code") JSON
    source = {"uri": p.resolve().as_uri()} if p is not None else {"tags": {"extf.dataset": meta.name}}
    columns = None
    if "table" in meta.extra:
        columns = [(c["name"], "double" if c["kind"] == "numeric" else "string") for c in meta.extra["table"]["columns"]]
    elif meta.extra.get("feature_names"):
        columns = [(str(n), "float") for n in meta.extra["feature_names"]]
    out = []
    for attr, context in CONTEXTS:
        split = getattr(splits, attr)
        split_digest = hashlib.sha256(digest.encode() + context.encode()
                                      + np.asarray(split.index, dtype="int64").tobytes()).hexdigest()[:12]
        out.append({"name": name, "digest": split_digest, "source": source, "context": context, "rows": len(split),
                    "data_digest": digest, "columns": columns, "shape": list(meta.input_shape)})
    return out


def _content(split):
    """What the digest covers of a split made in memory: its inputs (and, beside them, its labels); of a project's
    tf.data split: what it yields and how many (reading its data for a digest would be a pass of its own)."""
    if hasattr(split, "x"):
        return split.x
    return np.asarray([repr(split.data.element_spec), str(len(split))], dtype=object)
