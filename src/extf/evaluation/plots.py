"""Plots saved as PNG artifacts (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path


def learning_curves(history: dict, path: Path, objective: str | None = None,
                    best_epoch: int | None = None) -> Path:
    """Train vs validation loss (and the first metric) per epoch; the best epoch (0-based) is marked: the one early
    stopping with restore_best_weights keeps, training stopped `patience` epochs later."""
    plt = _pyplot()

    metrics = [k for k in history if not k.startswith("val_") and k not in ("learning_rate", "lr")]
    metrics = ["loss"] + [m for m in metrics if m != "loss"][:1]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 4), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        epochs = range(1, len(history[m]) + 1)
        ax.plot(epochs, history[m], label=f"train {m}")
        if f"val_{m}" in history:
            ax.plot(epochs, history[f"val_{m}"], label=f"validation {m}")
        if best_epoch is not None:
            ax.axvline(best_epoch + 1, color="grey", linestyle="--", linewidth=1,
                       label=f"best {objective or 'epoch'} (epoch {best_epoch + 1})")
        ax.set_xlabel("epoch")
        ax.set_ylabel(m)
        ax.set_title(m)
        ax.legend()
    fig.suptitle(f"Learning curves (objective: {objective})" if objective else "Learning curves")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def roc_plot(y_true, y_prob, path: Path, class_names=()) -> Path:
    """ROC curve with its AUC: one curve for a binary score, one-vs-rest curves for (n, k) probabilities."""
    plt = _pyplot()

    from extf.evaluation.metrics import auc_score, roc_curve_points

    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, positive, score in _one_vs_rest(y_true, y_prob, class_names):
        if 0 < positive.sum() < positive.size:  # ROC is undefined with a single class present
            fpr, tpr, _ = roc_curve_points(positive, score)
            ax.plot(fpr, tpr, label=f"{name} (AUC = {auc_score(positive, score):.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="chance")
    ax.set_xlabel("False positive rate (1 - specificity)")
    ax.set_ylabel("True positive rate (sensitivity)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title("Receiver operating characteristic")
    ax.legend(loc="lower right", fontsize="small")
    return _save(fig, path)


def pr_plot(y_true, y_prob, path: Path, class_names=()) -> Path:
    """Precision-recall curve with its average precision: binary, or one-vs-rest per class."""
    plt = _pyplot()

    from extf.evaluation.metrics import average_precision, pr_curve_points

    fig, ax = plt.subplots(figsize=(5.5, 5))
    curves = _one_vs_rest(y_true, y_prob, class_names)
    for name, positive, score in curves:
        if positive.any():  # no positive: precision-recall is undefined
            recall, precision, _ = pr_curve_points(positive, score)
            ap = average_precision(positive, score)
            ax.step(recall, precision, where="post", label=f"{name} (AP = {ap:.3f})")
    if len(curves) == 1:  # a random scorer's precision is the positive rate
        ax.axhline(curves[0][1].mean(), color="grey", linestyle="--", linewidth=1, label="chance")
    ax.set_xlabel("Recall")
    ax.set_ylabel("Precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title("Precision-recall")
    ax.legend(loc="lower left", fontsize="small")
    return _save(fig, path)


def confusion_matrix_plot(cm, class_names, path: Path) -> Path:
    """Confusion matrix (rows true, columns predicted) with the count in each cell."""
    plt = _pyplot()
    import numpy as np

    cm = np.asarray(cm)
    k = cm.shape[0]
    names = [str(i) for i in range(k)]
    if class_names is not None and len(class_names) == k:
        names = list(class_names)
    size = max(4.5, 0.6 * k + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(cm, cmap="Blues")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    dark = cm.max() / 2 if cm.size else 0
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", fontsize="small",
                    color="white" if cm[i, j] > dark else "black")
    ax.set_xticks(range(k), names, rotation=45 if k > 4 else 0, ha="right" if k > 4 else "center")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix")
    return _save(fig, path)


def predicted_vs_actual_plot(y_true, y_pred, path: Path) -> Path:
    """Predicted against actual values with the y = x line; sequences are flattened to their values."""
    plt = _pyplot()
    import numpy as np

    y_true = np.asarray(y_true, dtype=float).reshape(-1)
    y_pred = np.asarray(y_pred, dtype=float).reshape(-1)
    if y_true.size > 20_000:  # a readable scatter does not need every point of a long sequence set
        keep = np.random.default_rng(0).choice(y_true.size, 20_000, replace=False)
        y_true, y_pred = y_true[keep], y_pred[keep]
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.scatter(y_true, y_pred, s=8, alpha=0.5)
    if y_true.size:
        lo = float(min(y_true.min(), y_pred.min()))
        hi = float(max(y_true.max(), y_pred.max()))
        ax.plot([lo, hi], [lo, hi], color="grey", linestyle="--", linewidth=1, label="y = x")
        ax.legend(loc="upper left")
    ax.set_xlabel("actual")
    ax.set_ylabel("predicted")
    ax.set_title("Predicted vs actual")
    return _save(fig, path)


def pareto_plot(points, x_name: str, y_name: str, path: Path, title: str = "Pareto front") -> Path:
    """Trials as points (x, y, feasible, on_front, selected): the front joined in order of x, trials that miss a
    constraint hollow, the selected one starred."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 5))
    rest = [p for p in points if not p[3]]
    for feasible, style in ((True, {"color": "tab:blue"}), (False, {"facecolors": "none", "edgecolors": "grey"})):
        chosen = [p for p in rest if p[2] == feasible]
        if chosen:
            ax.scatter([p[0] for p in chosen], [p[1] for p in chosen], s=24, alpha=0.7,
                       label="trial" if feasible else "misses a constraint", **style)
    front = sorted((p for p in points if p[3]), key=lambda p: (p[0], p[1]))
    if front:
        ax.plot([p[0] for p in front], [p[1] for p in front], "o-", color="tab:orange", label="Pareto front")
    for p in points:
        if p[4]:
            ax.scatter([p[0]], [p[1]], marker="*", s=260, color="tab:red", zorder=5, label="tested (tuner.select)")
    if x_name == "params" or (points and min(p[0] for p in points) > 0 and
                              max(p[0] for p in points) > 100 * min(p[0] for p in points)):
        ax.set_xscale("log")
    ax.set_xlabel(x_name)
    ax.set_ylabel(y_name)
    ax.set_title(title, fontsize=10)
    ax.legend(loc="best", fontsize=8)
    return _save(fig, path)


def segmentation_overlay_plot(images, masks_true, masks_pred, path: Path, n: int = 4) -> Path:
    """The first `n` samples as rows of image / true mask / predicted mask (labels or (..., k) scores)."""
    plt = _pyplot()
    import numpy as np

    rows = max(1, min(n, len(images)))
    masks_true = [_label_map(m) for m in masks_true[:rows]]
    masks_pred = [_label_map(m) for m in masks_pred[:rows]]
    # One colour scale for both columns so that a class has the same colour in truth and prediction.
    vmax = max([1, *(int(m.max()) for m in masks_true + masks_pred)])
    fig, axes = plt.subplots(rows, 3, figsize=(9, 3 * rows), squeeze=False)
    for r in range(rows):
        image = _displayable(np.asarray(images[r], dtype=float))
        axes[r, 0].imshow(image, cmap="gray" if image.ndim == 2 else None)
        axes[r, 1].imshow(masks_true[r], cmap="tab20", vmin=0, vmax=vmax, interpolation="nearest")
        axes[r, 2].imshow(masks_pred[r], cmap="tab20", vmin=0, vmax=vmax, interpolation="nearest")
        for ax, title in zip(axes[r], ("image", "true mask", "predicted mask")):
            ax.set_title(title if r == 0 else "")
            ax.axis("off")
    fig.suptitle("Segmentation: image / true mask / predicted mask")
    return _save(fig, path)


def reconstruction_plot(originals, reconstructions, path: Path, n: int = 8) -> Path:
    """The first `n` images (top row) above their reconstructions (bottom row), on one grey scale per column."""
    plt = _pyplot()
    import numpy as np

    cols = max(1, min(n, len(originals)))
    fig, axes = plt.subplots(2, cols, figsize=(1.6 * cols + 1, 3.6), squeeze=False)
    for c in range(cols):
        pair = [np.asarray(originals[c], dtype=float), np.asarray(reconstructions[c], dtype=float)]
        # one range per original/reconstruction pair, so a washed-out reconstruction looks washed out
        lo, hi = min(float(p.min()) for p in pair), max(float(p.max()) for p in pair)
        for r, image in enumerate(pair):
            image = image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image
            if image.ndim == 3:  # colour: imshow needs [0, 1]
                image = (image - lo) / (hi - lo) if hi > lo else np.zeros_like(image)
            axes[r, c].imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=lo, vmax=hi)
            axes[r, c].axis("off")
        axes[0, c].set_title(str(c), fontsize="small")
    axes[0, 0].text(-0.15, 0.5, "original", transform=axes[0, 0].transAxes, rotation=90, ha="right", va="center")
    axes[1, 0].text(-0.15, 0.5, "reconstruction", transform=axes[1, 0].transAxes, rotation=90, ha="right",
                    va="center")
    fig.suptitle("Originals and reconstructions")
    return _save(fig, path)


def _one_vs_rest(y_true, y_prob, class_names) -> list:
    """(label, positives, score) per curve: one for a binary score vector, one per class for (n, k) scores."""
    import numpy as np

    y_true = np.asarray(y_true).reshape(-1).astype(int)
    y_prob = np.asarray(y_prob, dtype=float)
    if y_prob.ndim == 1 or y_prob.shape[1] == 1:
        name = class_names[1] if class_names is not None and len(class_names) == 2 else "positive class"
        return [(str(name), y_true == 1, y_prob.reshape(-1))]
    k = y_prob.shape[1]
    names = [str(i) for i in range(k)]
    if class_names is not None and len(class_names) == k:
        names = list(class_names)
    return [(str(names[i]), y_true == i, y_prob[:, i]) for i in range(k)]


def _label_map(mask):
    import numpy as np

    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[-1] > 1:  # per-pixel class scores
        return np.argmax(mask, axis=-1)
    return mask.reshape(mask.shape[:2]) if mask.ndim == 3 else mask


def _displayable(image):
    import numpy as np

    if image.ndim == 3 and image.shape[0] in (1, 3) and image.shape[-1] not in (1, 3):  # channels_first
        image = np.moveaxis(image, 0, -1)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    lo, hi = float(image.min()), float(image.max())
    # imshow clips RGB floats to [0, 1]; rescale so standardised or 0-255 images stay visible.
    return (image - lo) / (hi - lo) if hi > lo else np.zeros_like(image)


def _pyplot():
    """pyplot on the Agg backend: files only, no display needed (CI, servers)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
