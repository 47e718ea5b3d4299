"""`extf evaluate` and `extf predict`: judge data with a logged model (the notes' inference segment).

`evaluate` recomputes the test metrics of a logged study (the logged numbers for the same data); `predict` writes
probabilities and class labels for new inputs (CSV, .npy or a folder of images, streamed in batches).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from extf.config.validate import allowed_prefixes
from extf.data.rows import prediction_table
from extf.errors import ConfigError, DataError


def evaluate(cfg: DictConfig, dataset_overridden: bool, out=sys.stdout) -> dict[str, float]:
    from extf.data import load_dataset
    from extf.evaluation.evaluate import evaluate_model
    from extf.models import prepare_splits
    from extf.tracking.logged import fetch

    logged = fetch(cfg.tracking.tracking_uri, cfg.run_id)
    study_cfg = logged.config
    ds_cfg = cfg.dataset if dataset_overridden else study_cfg.dataset
    # the allow_targets of this project's extf.yaml, not the logged ones: a stored config cannot widen them
    splits = prepare_splits(study_cfg.model, load_dataset(ds_cfg, study_cfg.seed, cfg.allow_targets), cfg.allow_targets)
    if logged.dataset.get("input_shape"):  # before TensorFlow is imported to load the model
        check_input_shape(logged.dataset["input_shape"], splits.meta.input_shape, f"dataset '{splits.meta.name}'")
    model = load_logged_model(logged, cfg)
    if "table" not in logged.dataset:  # a table model takes a dict of columns
        check_input_shape(model, splits.meta.input_shape, f"dataset '{splits.meta.name}'")
    threshold = cfg.evaluation.threshold if cfg.evaluation.threshold != 0.5 else logged.dataset.get("threshold", 0.5)
    stateful = bool(study_cfg.model.get("stateful"))
    metrics, _ = evaluate_model(model, splits, "test", splits.meta, threshold, study_cfg.trainer.batch_size,
                                stateful=stateful)
    metrics = {f"test_{k}": v for k, v in metrics.items()}
    print(f"run {logged.run_id}: model on the test split of dataset '{splits.meta.name}' "
          f"({len(splits.test)} samples)", file=out)
    width = max(len(k) for k in metrics)
    for key, value in metrics.items():
        logged_value = logged.metrics.get(key)
        note = ""
        if logged_value is not None and not dataset_overridden:
            note = "  (= logged)" if abs(logged_value - value) <= 1e-6 * max(1.0, abs(value)) else \
                f"  (logged {logged_value:.6g})"
        print(f"  {key.ljust(width)}  {value:.6g}{note}", file=out)
    return metrics


def load_logged_model(logged, cfg: DictConfig):
    """The study's .keras model, with safe_mode unless the user set unsafe_load=true. A model built by the
    project's own function: its module is imported first (when this project's allow_targets allow it), so the
    custom layers it registers with keras.saving.register_keras_serializable load."""
    from extf.console import import_tensorflow
    from extf.models.io import load_model

    import_tensorflow()
    target = logged.config.model.get("_target_") if "model" in logged.config else None
    if target and str(target).startswith(allowed_prefixes(cfg.allow_targets)):
        from extf.config.instantiate import resolve

        resolve(str(target), "model._target_ (of the logged study)", tuple(cfg.allow_targets))
    return load_model(logged.model_path, unsafe=bool(cfg.get("unsafe_load")), source=f"run {logged.run_id}")


def check_input_shape(model, data_shape, what: str) -> None:
    """`model`: a Keras model, or the input shape per sample logged with its study (checked before loading it)."""
    expected = tuple(model) if isinstance(model, (tuple, list)) else tuple(model.input_shape[1:])
    if tuple(data_shape) != expected:
        same_size = len(expected) > 1 and int(np.prod(expected)) == int(np.prod(data_shape))
        hint = (f" A CSV row is one flat sample: for this model save the samples as a .npy array of shape "
                f"(N, {', '.join(map(str, expected))}) (numpy.save, after x.reshape(-1, "
                f"{', '.join(map(str, expected))})) or pass a folder of images." if same_size else
                " Use data with the model's shape (e.g. the same features, in the same order, as in training).")
        raise DataError(f"The model takes inputs of shape {expected} per sample, but {what} has shape "
                        f"{tuple(data_shape)}.{hint} Received: input shape {tuple(data_shape)}")


def read_input(path_text: str, logged_dataset: dict, model_shape: tuple) -> np.ndarray:
    """A CSV (header row) or a .npy array as the float32 array the model takes (a folder of images streams:
    `folder_input`)."""
    path = Path(path_text).expanduser()
    if not path.exists():
        raise DataError(f"Prediction input not found: expected a .csv file, a .npy file or a folder of images. "
                        f"Received: input={path_text!r}")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            x = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise DataError(f"Could not read {path.name} as a NumPy .npy array ({e}). Save it with numpy.save. "
                            f"Received: input={path_text!r}") from None
    elif suffix == ".csv":
        import pandas as pd

        try:
            df = pd.read_csv(path)
        except Exception as e:  # pandas raises many types for unreadable files
            raise DataError(f"Could not read {path.name} as CSV ({e}). Expected a header row and one row per "
                            f"sample. Received: input={path_text!r}") from None
        names = logged_dataset.get("feature_names")
        if names and all(n in df.columns for n in names):
            df = df[names]  # the training columns, in the training order
        non_numeric = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
        if non_numeric:
            raise DataError(f"Column(s) {non_numeric} of {path.name} are not numeric; the model takes numbers. "
                            f"Drop them or pass only the feature columns. Received: columns {list(df.columns)}")
        x = df.to_numpy(dtype="float32")
    else:
        raise DataError(f"Unsupported prediction input {path.name}: expected .csv, .npy or a folder of images. "
                        f"Received: input={path_text!r}")
    x = np.asarray(x, dtype="float32")
    if x.ndim == len(model_shape) and tuple(x.shape) == tuple(model_shape):
        x = x[np.newaxis]  # a single sample
    if x.ndim == len(model_shape) and len(model_shape) == 3 and model_shape[-1] == 1:
        x = x[..., np.newaxis]  # (n, h, w) grayscale images
    if not np.isfinite(x).all():
        raise DataError(f"{path.name} has NaN or infinite values; the model needs finite numbers. "
                        f"Received: {int((~np.isfinite(x)).sum())} bad value(s)")
    return x


def predict(cfg: DictConfig, out=sys.stdout) -> Path:
    import pandas as pd

    from extf.tracking.logged import fetch

    if not cfg.input or not cfg.output:
        raise ConfigError("extf predict needs input=FILE_OR_FOLDER and output=FILE.csv, e.g. "
                          "`extf predict run_id=<id> input=new.csv output=preds.csv`. "
                          f"Received: input={cfg.input!r}, output={cfg.output!r}")
    logged = fetch(cfg.tracking.tracking_uri, cfg.run_id)
    per_sample = logged.dataset["task"] in ("binary", "multiclass", "regression")
    output = Path(str(cfg.output)).expanduser()
    if not per_sample and output.suffix.lower() != ".npy":
        raise ConfigError(f"A {logged.dataset['task']} model predicts an array per sample (a mask or a "
                          f"reconstruction), which goes to a NumPy file: use output=NAME.npy. "
                          f"Received: output={cfg.output!r}")
    if output.is_dir():
        raise ConfigError(f"output={cfg.output!r} is a folder; expected the path of the predictions file in it, "
                          f"e.g. output={output / 'predictions.csv'}. Received: output={cfg.output!r}")
    try:  # before the model is loaded and run: a folder that cannot be created fails now, not after predicting
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"Cannot create the folder {str(output.parent)!r} of the predictions file "
                          f"({e.strerror}). Expected output=PATH in a writable folder. "
                          f"Received: output={cfg.output!r}") from None
    if logged.dataset.get("table"):
        return _predict_rows(cfg, logged, output, out)
    logged_shape = tuple(logged.dataset.get("input_shape") or ())
    source = Path(str(cfg.input)).expanduser()
    folder = source.is_dir()
    if folder:  # listed and checked before TensorFlow is imported: a bad image is refused now
        from extf.data.images import ImageReader, folder_images

        if logged_shape:
            ImageReader.for_shape(logged_shape)  # a model that takes images at all
        files = folder_images(source)
    elif logged_shape:  # a bad input is refused before TensorFlow is imported to load the model
        x = read_input(str(cfg.input), logged.dataset, logged_shape)
        check_input_shape(logged_shape, x.shape[1:], f"input {source.name}")
    model = load_logged_model(logged, cfg)
    shape = tuple(model.input_shape[1:])
    if folder:  # streamed in batches: converted and resized to the model's input as in training
        from extf.data.images import decode_errors_named

        n = len(files)
        with decode_errors_named(files):
            probs = model.predict(ImageReader.for_shape(shape).dataset(files, batch_size=64), verbose=0)
    else:
        if not logged_shape:
            x = read_input(str(cfg.input), logged.dataset, shape)
        check_input_shape(model, x.shape[1:], f"input {source.name}")
        batch = model.input_shape[0]
        n = len(x)
        if batch:  # a stateful model has a fixed batch size: pad the last batch, then drop the padding
            pad = (-n) % batch
            x = np.concatenate([x, np.zeros((pad, *shape), dtype=x.dtype)]) if pad else x
        probs = model.predict(x, batch_size=batch or 256, verbose=0)[:n]
    tmp = output.with_name(output.name + ".tmp" + output.suffix)
    if per_sample:
        table = prediction_table(probs, logged.dataset["task"], logged.dataset.get("class_names"),
                                 float(logged.dataset.get("threshold", 0.5)))
        if folder:  # which row is which image
            table = {"file": [p.name for p in files], **table}
        pd.DataFrame(table).to_csv(tmp, index=False)
    else:  # segmentation: the class of each pixel; reconstruction: the reconstructed input
        np.save(tmp, np.argmax(probs, axis=-1) if logged.dataset["task"] == "segmentation" else probs)
    os.replace(tmp, output)  # never a half-written predictions file
    print(f"wrote {n} prediction(s) to {output}", file=out)
    return output


def read_rows(path_text: str, table: dict) -> dict[str, np.ndarray]:
    """A table's raw rows (CSV or Parquet) as the columns its model takes; a column missing or unknown is refused."""
    import pandas as pd

    from extf.data.rows import RowsError, model_inputs
    from extf.data.tables import PARQUET_SUFFIXES

    path = Path(path_text).expanduser()
    if not path.is_file():
        raise DataError(f"Prediction input not found: expected a .csv or .parquet file of rows with the columns "
                        f"{[c['name'] for c in table['columns']]}. Received: input={path_text!r}")
    parquet = path.suffix.lower() in PARQUET_SUFFIXES
    if not parquet and path.suffix.lower() not in (".csv", ".txt"):
        raise DataError(f"This model takes table rows: expected a .csv or .parquet file with a header row and the "
                        f"columns {[c['name'] for c in table['columns']]}. Received: input={path_text!r}")
    try:
        df = pd.read_parquet(path) if parquet else pd.read_csv(path)
    except Exception as e:  # pandas raises many types for unreadable files
        raise DataError(f"Could not read {path.name} as {'Parquet' if parquet else 'CSV'} ({e}). Expected a header "
                        f"row and one row per sample. Received: input={path_text!r}") from None
    try:
        return model_inputs(df, table, path.name)
    except RowsError as e:
        raise DataError(str(e)) from None


def _predict_rows(cfg: DictConfig, logged, output: Path, out) -> Path:
    """`extf predict` with a table model: raw rows in (NA cells and unseen categories are the model's to handle),
    the predictions table out, written atomically."""
    import pandas as pd

    table = logged.dataset["table"]
    x = read_rows(str(cfg.input), table)  # refused before TensorFlow is imported to load the model
    model = load_logged_model(logged, cfg)
    outputs = model.predict(x, batch_size=1024, verbose=0)
    predictions = prediction_table(outputs, logged.dataset["task"], logged.dataset.get("class_names"),
                                   float(logged.dataset.get("threshold", 0.5)))
    tmp = output.with_name(output.name + ".tmp" + output.suffix)
    pd.DataFrame(predictions).to_csv(tmp, index=False)
    os.replace(tmp, output)  # never a half-written predictions file
    print(f"wrote {len(outputs)} prediction(s) to {output}", file=out)
    return output
