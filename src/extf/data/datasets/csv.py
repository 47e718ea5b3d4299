"""Your own table: a CSV (delimited text with a header row) or a Parquet file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from extf.config.constraints import NON_NEGATIVE_INT, OneOf
from extf.config.schema import DatasetConf
from extf.data.arrays import infer_task, split_arrays
from extf.data.splits import Splits


@dataclass
class Conf(DatasetConf):
    path: str  # a CSV (delimited text with a header row) or a .parquet file
    target: str
    features: list[str] | None  # null: every column but the target
    task: str  # auto | binary | multiclass | regression
    delimiter: str
    standardize: bool
    drop: list[str]  # columns to leave out
    categorical: list[str] | None  # columns that are categories even if they hold numbers (text always is)
    na_values: list[str]  # more cell values that mean "missing" (besides NA, empty...)
    max_categories: int  # a category column with more distinct values is an error: drop or hash it
    hash_buckets: dict[str, int] | None  # column: buckets, for very many categories
    constraints: ClassVar = {"task": OneOf({"auto", "binary", "multiclass", "regression"}), "max_categories": NON_NEGATIVE_INT}


def load(cfg: dict, seed: int) -> Splits:
    from extf.data.tables import load_csv

    x, y, meta = load_csv(cfg, seed, infer_task)
    return split_arrays(x, y, meta, cfg, seed)
