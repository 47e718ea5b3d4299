"""`extf predict run_id=ID input=x.csv|x.npy|DIR output=p.csv`: probabilities and class labels for new inputs from a
logged model (a CSV, a .npy array, a folder of images streamed in batches, or a table's raw rows)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from extf.commands import hydra_app
from extf.errors import ConfigError

HELP = "probabilities and labels for new data: extf predict run_id=ID input=x.csv|x.npy|DIR output=p.csv"
HYDRA = True  # takes Hydra's options and config overrides (tab completion offers them)
INTERRUPTED = "interrupted; the MLflow runs were ended as KILLED."


def run(args: list[str]) -> int:
    return hydra_app.run("predict", args, job)


def job(cfg, overrides: list[str], out) -> Path:
    from extf.commands.composed import prepare

    return predict(prepare("predict", cfg), out=out)


def predict(cfg, out=sys.stdout) -> Path:
    """The logged model's predictions for `cfg.input`, written atomically to `cfg.output`."""
    from extf.tracking.logged import fetch

    if not cfg.input or not cfg.output:
        raise ConfigError("extf predict needs input=FILE_OR_FOLDER and output=FILE.csv, e.g. "
                          "`extf predict run_id=<id> input=new.csv output=preds.csv`. "
                          f"Received: input={cfg.input!r}, output={cfg.output!r}")
    logged = fetch(cfg.tracking.tracking_uri, cfg.run_id)
    output = _output_path(cfg, logged.dataset["task"])
    if logged.dataset.get("table"):
        outputs, files = _predict_rows(cfg, logged), None
    else:
        outputs, files = _predict_arrays(cfg, logged)
    _write(output, outputs, logged.dataset, files)
    print(f"wrote {len(outputs)} prediction(s) to {output}", file=out)
    return output


def _output_path(cfg, task: str) -> Path:
    """Where the predictions go, checked (and its folder created) before the model is loaded and run."""
    output = Path(str(cfg.output)).expanduser()
    if task not in ("binary", "multiclass", "regression") and output.suffix.lower() != ".npy":
        raise ConfigError(f"A {task} model predicts an array per sample (a mask or a reconstruction), which goes "
                          f"to a NumPy file: use output=NAME.npy. Received: output={cfg.output!r}")
    if output.is_dir():
        raise ConfigError(f"output={cfg.output!r} is a folder; expected the path of the predictions file in it, "
                          f"e.g. output={output / 'predictions.csv'}. Received: output={cfg.output!r}")
    try:  # a folder that cannot be created fails now, not after predicting
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"Cannot create the folder {str(output.parent)!r} of the predictions file "
                          f"({e.strerror}). Expected output=PATH in a writable folder. "
                          f"Received: output={cfg.output!r}") from None
    return output


def _predict_arrays(cfg, logged):
    """The model's outputs for a CSV, a .npy array or a folder of images, and the image files (None otherwise)."""
    import numpy as np

    from extf.data.inputs import check_input_shape, read_input
    from extf.tracking.logged import load_logged_model

    logged_shape = tuple(logged.dataset.get("input_shape") or ())
    source = Path(str(cfg.input)).expanduser()
    files = None
    if source.is_dir():  # listed and checked before TensorFlow is imported: a bad image is refused now
        from extf.data.images import ImageReader, folder_images

        if logged_shape:
            ImageReader.for_shape(logged_shape)  # a model that takes images at all
        files = folder_images(source)
    elif logged_shape:  # a bad input is refused before TensorFlow is imported to load the model
        x = read_input(str(cfg.input), logged.dataset, logged_shape)
        check_input_shape(logged_shape, x.shape[1:], f"input {source.name}")
    model = load_logged_model(logged, cfg.allow_targets, unsafe=bool(cfg.get("unsafe_load")))
    shape = tuple(model.input_shape[1:])
    if files is not None:  # streamed in batches: converted and resized to the model's input as in training
        from extf.data.images import decode_errors_named

        with decode_errors_named(files):
            return model.predict(ImageReader.for_shape(shape).dataset(files, batch_size=64), verbose=0), files
    if not logged_shape:
        x = read_input(str(cfg.input), logged.dataset, shape)
    check_input_shape(model, x.shape[1:], f"input {source.name}")
    batch = model.input_shape[0]
    n = len(x)
    if batch:  # a stateful model has a fixed batch size: pad the last batch, then drop the padding
        pad = (-n) % batch
        x = np.concatenate([x, np.zeros((pad, *shape), dtype=x.dtype)]) if pad else x
    return model.predict(x, batch_size=batch or 256, verbose=0)[:n], None


def _predict_rows(cfg, logged):
    """A table model's outputs for raw rows (NA cells and unseen categories are the model's to handle)."""
    from extf.data.inputs import read_rows
    from extf.tracking.logged import load_logged_model

    x = read_rows(str(cfg.input), logged.dataset["table"])  # refused before TensorFlow is imported
    model = load_logged_model(logged, cfg.allow_targets, unsafe=bool(cfg.get("unsafe_load")))
    return model.predict(x, batch_size=1024, verbose=0)


def _write(output: Path, outputs, dataset: dict, files: list[Path] | None) -> None:
    """The predictions table (a CSV: probabilities and labels, the image file of each row), or for a mask or a
    reconstruction a .npy array; never a half-written file."""
    import numpy as np
    import pandas as pd

    from extf.data.rows import prediction_table

    tmp = output.with_name(output.name + ".tmp" + output.suffix)
    if dataset["task"] in ("binary", "multiclass", "regression"):
        table = prediction_table(outputs, dataset["task"], dataset.get("class_names"),
                                 float(dataset.get("threshold", 0.5)))
        if files is not None:  # which row is which image
            table = {"file": [p.name for p in files], **table}
        pd.DataFrame(table).to_csv(tmp, index=False)
    else:  # segmentation: the class of each pixel; reconstruction: the reconstructed input
        np.save(tmp, np.argmax(outputs, axis=-1) if dataset["task"] == "segmentation" else outputs)
    os.replace(tmp, output)
