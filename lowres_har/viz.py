"""Plots saved after testing: confusion matrix and per-class accuracy (matplotlib, Agg backend)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

__all__ = ["per_class_accuracy", "plot_confusion_matrix", "plot_per_class_accuracy"]


def per_class_accuracy(confusion: torch.Tensor | np.ndarray) -> np.ndarray:
    """Recall of each class from a confusion matrix ``(C, C)`` (rows: true, columns: predicted).

    Classes with no samples get ``nan``.
    """
    cm = np.asarray(confusion, dtype=np.float64)
    totals = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(cm) / totals, np.nan)


def plot_confusion_matrix(
    confusion: torch.Tensor | np.ndarray, class_names: Sequence[str], path: str | Path
) -> Path:
    """Save a row-normalised confusion matrix ``(C, C)`` (rows: true class) as a PNG."""
    cm = np.asarray(confusion, dtype=np.float64)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    n = len(class_names)
    side = max(4.0, 0.45 * n + 2)
    fig, ax = plt.subplots(figsize=(side, side))
    im = ax.imshow(norm, vmin=0, vmax=1, cmap="Blues")
    ax.set_xticks(range(n), class_names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(n), class_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if n <= 30:
        for i in range(n):
            for j in range(n):
                if cm[i, j] > 0:
                    ax.text(
                        j,
                        i,
                        str(int(cm[i, j])),
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black",
                    )
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_title("Confusion matrix (row-normalised, counts shown)")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_per_class_accuracy(
    confusion: torch.Tensor | np.ndarray, class_names: Sequence[str], path: str | Path
) -> Path:
    """Save a horizontal bar chart of each class's accuracy (recall) as a PNG."""
    acc = per_class_accuracy(confusion)
    n = len(class_names)
    fig, ax = plt.subplots(figsize=(6, max(3.0, 0.3 * n + 1)))
    ax.barh(range(n), np.nan_to_num(acc), color="tab:blue")
    ax.set_yticks(range(n), class_names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("accuracy")
    mean = float(np.nanmean(acc)) if np.isfinite(acc).any() else float("nan")
    ax.axvline(mean, color="tab:red", linestyle="--", label=f"mean {mean:.3f}")
    ax.legend(loc="lower right")
    ax.set_title("Per-class accuracy")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
