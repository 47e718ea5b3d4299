"""P10: a table as users have it, `extf train dataset=csv` (category columns, missing cells, a string target:
encoded and imputed by the model's own layers) for 3 epochs, divided pair by pair by a plain Keras script doing the
same work with `keras.utils.FeatureSpace` in its tf.data pipeline (bench/plain_featurespace.py: the same split,
imputation with training means + missing-indicators, one-hot categories, standardized numbers, the same MLP,
optimizer, batch size and epochs, one test evaluation). Goal: wall <= 1.15.

Workload: a generated CSV of 200,000 rows, 5 category columns (3 to 40 values) and 20 numeric columns with 5 % of
their cells missing, a 3-class string target that depends on both (--quick: 20,000 rows, a smoke test only).
Batch size 256 on both sides; extf with callbacks=none (every epoch trains) and its usual tracking.
"""

from __future__ import annotations

import atexit
import shutil
import sys
import tempfile
from pathlib import Path

from common import PYTHON, Figure, command_side, extf_side, script_main, warm_up

HERE = Path(__file__).resolve().parent
PLAIN = HERE / "plain_featurespace.py"
EPOCHS, BATCH = 3, 256


def write_table(path: Path, rows: int, seed: int = 0) -> None:
    """5 category columns, 20 numeric columns (5 % missing), a string target depending on both."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    data, score = {}, np.zeros(rows)
    for i, n_values in enumerate((3, 5, 8, 20, 40)):
        codes = rng.integers(0, n_values, rows)
        data[f"cat_{i}"] = np.array([f"v{k}" for k in range(n_values)], dtype=object)[codes]
        score += np.sin(codes * (i + 1.0))
    for i in range(20):
        values = rng.normal(size=rows)
        score += values * (0.5 if i < 5 else 0.05)
        values[rng.random(rows) < 0.05] = np.nan
        data[f"num_{i}"] = values.round(4)
    data["label"] = np.select([score < -0.7, score < 0.7], ["low", "mid"], "high")
    pd.DataFrame(data).to_csv(path, index=False)


def figures(quick: bool = False) -> list[Figure]:
    rows = 20_000 if quick else 200_000
    folder = Path(tempfile.mkdtemp(prefix="extf-bench-p10-"))
    atexit.register(shutil.rmtree, folder, True)
    csv = folder / "table.csv"
    workload = f"{rows:,} rows x (5 categories + 20 numbers, 5 % missing), 3 classes, {EPOCHS} epochs, batch {BATCH}"

    def setup() -> None:
        write_table(csv, rows)
        warm_up()

    extf = ["train", "dataset=csv", f"dataset.path={csv}", "dataset.target=label", "model=mlp", "callbacks=none",
            f"trainer.epochs={EPOCHS}", f"trainer.batch_size={BATCH}", "evaluation.plots=false", "seed=42"]
    plain = [PYTHON, str(PLAIN), "--csv", str(csv), "--target", "label", "--epochs", str(EPOCHS), "--batch-size",
             str(BATCH), "--seed", "42"]
    return [Figure("P10", "extf train dataset=csv / plain Keras FeatureSpace script, wall time", workload, "<= 1.15",
                   a=extf_side(extf), b=command_side(plain), setup=setup)]


def main() -> int:
    return script_main(figures, __doc__)


if __name__ == "__main__":
    sys.exit(main())
