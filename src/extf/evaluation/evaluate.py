"""Evaluate a model on one split: Keras' compiled metrics plus the study notes' metrics, and their plots.

Used once on the test split after a study, and by `extf evaluate` on a logged model (same numbers for the same data).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SPLIT_ORDER = ("train", "val", "test")


def evaluate_model(model, splits, split_name: str, meta, threshold: float, batch_size: int,
                   stateful: bool = False) -> tuple[dict[str, float], np.ndarray]:
    """Metrics (no prefix) and the model's outputs on `splits.<split_name>`, from one pass over its inputs."""
    from extf.evaluation.metrics import compute_metrics
    from extf.models.rnn import reset_states

    split = getattr(splits, split_name)
    reset_states(model)
    with split.read_errors():
        if stateful:  # the split continues the sequence: prime the states with the earlier splits' inputs
            for earlier in SPLIT_ORDER[: SPLIT_ORDER.index(split_name)]:
                model.predict(getattr(splits, earlier).dataset(batch_size), verbose=0)
        metrics, outputs, y = evaluate_once(model, split.dataset(batch_size))
    # the notes' metrics take precedence where names overlap (they honour the decision threshold); a reconstruction
    # is judged like a regression of every input value
    task = "regression" if meta.task == "reconstruction" else meta.task
    metrics.update(compute_metrics(task, y, outputs, meta.class_names, threshold))
    return metrics, outputs


def evaluate_once(model, dataset) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """(what `model.evaluate` reports: its compiled loss and metrics, the outputs, the labels) from one pass over
    the (inputs, labels) batches of `dataset`: each batch's step is Keras' own test step (the same loss, from the
    same graph, weighted by the batch size) that also hands back the outputs, so the inputs are read once."""
    import keras
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def step(x, y):
        y_pred = model(x, training=False)
        loss = model.compute_loss(x, y, y_pred, training=False)
        model.compute_metrics(x, y, y_pred)
        return y_pred, loss

    model.reset_metrics()
    loss = keras.metrics.Mean(name="loss")
    outputs, labels = [], []
    for x, y in dataset:
        y_pred, batch_loss = step(x, y)
        loss.update_state(batch_loss, sample_weight=len(y))
        outputs.append(np.asarray(y_pred))
        labels.append(np.asarray(y))
    # the model's own loss tracker saw nothing here; sorted by name as `evaluate(return_dict=True)` gives them
    metrics = {**{k: float(v) for k, v in model.get_metrics_result().items()}, "loss": float(loss.result())}
    return dict(sorted(metrics.items())), np.concatenate(outputs), np.concatenate(labels)


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
