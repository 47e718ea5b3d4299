"""Plots saved as PNG artifacts (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path


def learning_curves(history: dict, path: Path, objective: str | None = None, stop_epoch: int | None = None) -> Path:
    """Train vs validation loss (and the first metric) per epoch; the last trained epoch is marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [k for k in history if not k.startswith("val_") and k not in ("learning_rate", "lr")]
    metrics = ["loss"] + [m for m in metrics if m != "loss"][:1]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 4), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        epochs = range(1, len(history[m]) + 1)
        ax.plot(epochs, history[m], label=f"train {m}")
        if f"val_{m}" in history:
            ax.plot(epochs, history[f"val_{m}"], label=f"validation {m}")
        if stop_epoch is not None:
            ax.axvline(stop_epoch + 1, color="grey", linestyle="--", linewidth=1, label="last epoch")
        ax.set_xlabel("epoch")
        ax.set_ylabel(m)
        ax.set_title(m)
        ax.legend()
    fig.suptitle(f"Learning curves (objective: {objective})" if objective else "Learning curves")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
