"""scikit-learn's embedded wine dataset (multiclass); features z-scored with training-split statistics."""

from __future__ import annotations

from extf.data.datasets._sklearn import TableConf as Conf
from extf.data.datasets._sklearn import sklearn_table

__all__ = ["Conf", "load"]

load = sklearn_table("load_wine", "multiclass")
