"""scikit-learn's embedded tables (iris, wine, breast_cancer), z-scored with training-split statistics."""

from __future__ import annotations

from dataclasses import dataclass

from extf.config.schema import DatasetConf
from extf.data.arrays import split_arrays
from extf.data.splits import Meta, Splits


@dataclass
class TableConf(DatasetConf):
    standardize: bool  # z-score features with statistics of the training split only


def sklearn_table(loader_name: str, task: str):
    """A loader of one of scikit-learn's embedded tables (no network)."""

    def load(cfg: dict, seed: int) -> Splits:
        import sklearn.datasets

        bunch = getattr(sklearn.datasets, loader_name)()
        x = bunch.data.astype("float32")
        y = bunch.target.astype("int64")
        names = tuple(str(n) for n in bunch.target_names)
        meta = Meta(cfg["name"], task, "tabular", (x.shape[1],), names,
                    extra={"feature_names": [str(f) for f in bunch.feature_names]})
        return split_arrays(x, y, meta, cfg, seed)

    return load
