"""Which data a study saw: content digests, and the per-split description logged as MLflow dataset inputs.

A file dataset (dataset.path: a CSV, Parquet, NPZ or text file, or a folder of images) is identified by the SHA-256
of its content, so a study on a changed file is a new study (`extf.tuning.study.study_identity`). An embedded dataset
is made by extf's code from its config, so the config identifies it; its digest is that of the loaded arrays.
"""

from __future__ import annotations

import hashlib
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


def data_digest(ds_cfg) -> str | None:
    """SHA-256 of the dataset's file (or of every file under its folder, with their relative paths); None for a
    dataset without a path."""
    p = data_path(ds_cfg)
    if p is None:
        return None
    if p.is_file():
        return _file_digest(str(p.resolve()), *_stamp(p))
    h = hashlib.sha256()
    for f in sorted(q for q in p.rglob("*") if q.is_file()):
        h.update(str(f.relative_to(p)).encode() + b"\0" + _file_digest(str(f.resolve()), *_stamp(f)).encode())
    return h.hexdigest()


def _stamp(p: Path) -> tuple[int, int]:
    st = p.stat()
    return st.st_size, st.st_mtime_ns


@lru_cache(maxsize=4096)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:  # size and mtime: a changed file is read again
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
