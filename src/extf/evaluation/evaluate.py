"""Evaluate a model on one split: Keras' compiled metrics plus the study notes' metrics, and their plots.

Used once on the test split after a study, and by `extf evaluate` on a logged model (same numbers for the same data).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SPLIT_ORDER = ("train", "val", "test")


def evaluate_model(model, splits, split_name: str, meta, threshold: float, batch_size: int,
                   stateful: bool = False) -> tuple[dict[str, float], np.ndarray]:
    """Metrics (no prefix) and the model's outputs on `splits.<split_name>`."""
    from extf.evaluation.metrics import compute_metrics
    from extf.models.rnn import reset_states

    split = getattr(splits, split_name)

    def start_state():
        """Fresh states; a stateful split continues the sequence, so prime it with the earlier splits' inputs."""
        reset_states(model)
        if stateful:
            for earlier in SPLIT_ORDER[: SPLIT_ORDER.index(split_name)]:
                model.predict(getattr(splits, earlier).x, batch_size=batch_size, verbose=0)

    if split.streams:  # read from the files in their order, so the outputs line up with the labels
        from extf.data.images import decode_errors_named

        with decode_errors_named(split.files):
            outputs = model.predict(split.dataset(batch_size), verbose=0)
            keras_metrics = model.evaluate(split.dataset(batch_size), verbose=0, return_dict=True)
    else:
        start_state()
        outputs = model.predict(split.x, batch_size=batch_size, verbose=0)
        start_state()  # evaluate() must start from the same state predict() did
        keras_metrics = model.evaluate(split.x, split.y, batch_size=batch_size, verbose=0, return_dict=True)
    metrics = {k: float(v) for k, v in keras_metrics.items()}
    # the notes' metrics take precedence where names overlap (they honour the decision threshold); a reconstruction
    # is judged like a regression of every input value
    task = "regression" if meta.task == "reconstruction" else meta.task
    metrics.update(compute_metrics(task, split.y, outputs, meta.class_names, threshold))
    return metrics, outputs


def write_plots(meta, y_true, outputs, directory: Path, threshold: float = 0.5, x=None) -> list[Path]:
    """ROC, PR and confusion matrix for classification; predicted vs actual for regression; images with their
    true and predicted masks for segmentation (needs the inputs `x`); originals and reconstructions of images, or
    predicted vs actual values of other inputs, for reconstruction."""
    from extf.evaluation import plots
    from extf.evaluation.metrics import confusion

    directory.mkdir(parents=True, exist_ok=True)
    written = []
    if meta.task in ("binary", "multiclass"):
        names = list(meta.class_names)
        written.append(plots.roc_plot(y_true, outputs, directory / "roc.png", names))
        written.append(plots.pr_plot(y_true, outputs, directory / "pr.png", names))
        if meta.task == "binary":
            predicted = (np.ravel(outputs) >= threshold).astype(int)
        else:
            predicted = np.argmax(outputs, axis=-1)
        cm = confusion(y_true, predicted, max(meta.n_classes, 2))
        written.append(plots.confusion_matrix_plot(cm, names, directory / "confusion_matrix.png"))
    elif meta.task == "regression":
        written.append(plots.predicted_vs_actual_plot(y_true, np.ravel(outputs), directory / "predicted_vs_actual.png"))
    elif meta.task == "segmentation" and x is not None:
        written.append(plots.segmentation_overlay_plot(x, y_true, np.argmax(outputs, axis=-1),
                                                       directory / "segmentation_overlay.png"))
    elif meta.task == "reconstruction":
        if meta.modality == "image" and len(meta.input_shape) == 3:
            written.append(plots.reconstruction_plot(y_true, outputs, directory / "reconstructions.png"))
        written.append(plots.predicted_vs_actual_plot(y_true, outputs, directory / "predicted_vs_actual.png"))
    return written
