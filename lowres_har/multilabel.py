"""Multi-label evaluation as the TinyAction challenge scores it (TinyVIRAT-v2).

Decisions, class-averaged metrics, decision-threshold tuning, horizontal-flip test-time
augmentation and the challenge's ``answer.txt``. Pure functions on tensors; the training task
(:class:`~lowres_har.tasks.VideoClassificationTask`) and the prediction writer
(:class:`~lowres_har.callbacks.TinyActionAnswerWriter`) use them.

Definitions (TinyAction Challenge 2021, Tirupattur et al., arXiv:2107.11494: submissions are
one-hot vectors per test clip, scored with class-wise precision, recall and F1, ranked by "the
F1-score averaged over each class"; the thesis behind the TinyVIRAT recipes, §3.5 and §4.1.3):

* **decision**: class ``c`` is predicted present in a video iff its probability is *strictly
  greater* than the class's threshold, ``p[n, c] > t[c]`` (the thesis' positive-negative
  threshold, §3.5; the challenge's baseline writes ``answer.txt`` the same way). ``t`` is one
  value for every class (global) or one per class.
* **per class** ``c``, over the ``N`` videos: ``TP_c``, ``FP_c``, ``FN_c``;
  ``P_c = TP_c / (TP_c + FP_c)``, ``R_c = TP_c / (TP_c + FN_c)``,
  ``F1_c = 2 TP_c / (2 TP_c + FP_c + FN_c)`` (the harmonic mean of ``P_c`` and ``R_c``). A zero
  denominator gives 0: a class never predicted has ``P_c = 0``, a class without positives has
  ``R_c = 0`` and ``F1_c = 0`` (whatever is predicted).
* **reported**: the plain mean over all ``C`` classes of ``P_c``, ``R_c`` and ``F1_c`` (macro
  averages; classes without positives count, with 0). This is scikit-learn's
  ``precision_recall_fscore_support(y_true, y_pred, average="macro", zero_division=0)`` and
  torchmetrics' ``Multilabel{F1Score,Precision,Recall}(average="macro")``. The macro F1 is the
  mean of the per-class F1 values, not the harmonic mean of macro precision and macro recall.

Threshold tuning (:func:`tune_thresholds`) searches a grid (default 0.05, 0.10, ..., 0.95,
:data:`DEFAULT_GRID`) for the value(s) maximising the macro F1 on validation videos: one value
for all classes (``"global"``) or, because the macro F1 is a mean of independent per-class terms,
the best value of each class separately (``"per_class"``). A grid rather than every distinct
probability keeps the chosen values away from the exact scores of individual validation videos.

``answer.txt`` (:func:`answer_lines`): one line per test video, ``"<id:05d> b0 b1 ... b{C-1}"``
(the clip id zero-padded to five digits, then the ``C`` binary decisions in class-index order,
single spaces), sorted by id, ``\\n`` after every line.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "DEFAULT_GRID",
    "TTA_REDUCTIONS",
    "TUNE_MODES",
    "aggregate_by_video",
    "answer_lines",
    "as_thresholds",
    "binarize",
    "class_counts",
    "combine_tta",
    "hflip_inputs",
    "macro_prf",
    "per_class_prf",
    "tune_thresholds",
    "write_answer",
]

#: Thresholds :func:`tune_thresholds` tries by default: 0.05, 0.10, ..., 0.95.
DEFAULT_GRID: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(1, 20))
#: Modes of :func:`tune_thresholds` (``"none"``: keep the fixed threshold).
TUNE_MODES: tuple[str, ...] = ("none", "global", "per_class")
#: How :func:`combine_tta` merges the original and the flipped clip's probabilities.
TTA_REDUCTIONS: tuple[str, ...] = ("max", "mean")

#: Grid thresholds evaluated at once by :func:`tune_thresholds` (bounds the (G, N, C) mask).
_GRID_CHUNK = 32


def _check_probs(probs: Tensor, what: str = "probabilities") -> Tensor:
    if not isinstance(probs, Tensor) or probs.ndim != 2:
        shape = tuple(probs.shape) if isinstance(probs, Tensor) else type(probs).__name__
        raise ValueError(f"{what} must be a (N, C) tensor, got {shape}")
    if not torch.isfinite(probs).all():
        raise ValueError(f"{what} contain NaN or infinite values")
    return probs


def _check_target(target: Tensor, probs: Tensor) -> Tensor:
    if target.shape != probs.shape:
        raise ValueError(
            f"target shape {tuple(target.shape)} does not match probabilities "
            f"{tuple(probs.shape)} (multi-hot (N, C) expected)"
        )
    if not ((target == 0) | (target == 1)).all():
        raise ValueError("target must be multi-hot: every entry 0 or 1")
    return target.to(device=probs.device).bool()


def as_thresholds(threshold: float | Sequence[float] | Tensor, num_classes: int) -> Tensor:
    """Decision thresholds as a float64 tensor ``(C,)``.

    Args:
        threshold: one value for every class, or ``C`` values (a sequence or a ``()``/``(C,)``
            tensor), each in ``[0, 1]`` (probability units).
        num_classes: ``C``.

    Raises:
        ValueError: a wrong number of values, or a value outside ``[0, 1]`` (or NaN).
    """
    t = torch.as_tensor(threshold, dtype=torch.float64).detach().cpu()
    if t.ndim == 0:
        t = t.expand(num_classes).clone()
    if t.ndim != 1 or t.numel() != num_classes:
        raise ValueError(f"expected 1 or {num_classes} thresholds, got shape {tuple(t.shape)}")
    if not ((t >= 0) & (t <= 1)).all():
        raise ValueError(f"thresholds must lie in [0, 1], got {t.tolist()}")
    return t


def binarize(probs: Tensor, threshold: float | Sequence[float] | Tensor) -> Tensor:
    """Decisions ``probs > threshold`` (strictly greater, see the module docstring).

    Args:
        probs: ``(N, C)`` probabilities.
        threshold: one value or ``C`` values (per class).

    Returns:
        ``(N, C)`` bool.
    """
    probs = _check_probs(probs)
    t = as_thresholds(threshold, probs.shape[1]).to(device=probs.device, dtype=torch.float64)
    return probs.double() > t


def class_counts(preds: Tensor, target: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """True positives, false positives and false negatives per class.

    Args:
        preds: bool decisions ``(..., N, C)`` (leading dimensions, e.g. one per candidate
            threshold, are kept).
        target: multi-hot ``(N, C)`` (bool or 0/1).

    Returns:
        ``(TP, FP, FN)``, each int64 ``(..., C)``.
    """
    t = target.bool().to(preds.device)
    p = preds.bool()
    tp = (p & t).sum(-2)
    fp = (p & ~t).sum(-2)
    fn = (~p & t).sum(-2)
    return tp, fp, fn


def _ratio(num: Tensor, den: Tensor) -> Tensor:
    """``num / den`` in float64, 0 where ``den == 0``."""
    num, den = num.double(), den.double()
    return torch.where(den > 0, num / den.clamp_min(1), torch.zeros_like(num))


def per_class_prf(
    probs: Tensor, target: Tensor, threshold: float | Sequence[float] | Tensor
) -> dict[str, Tensor]:
    """Per-class precision, recall and F1 at the decision threshold(s).

    Args:
        probs: ``(N, C)`` probabilities of ``N`` videos.
        target: ``(N, C)`` multi-hot labels.
        threshold: one value or ``C`` values.

    Returns:
        ``{"precision", "recall", "f1"}``, each float64 ``(C,)``, with the zero-denominator
        rule of the module docstring.
    """
    probs = _check_probs(probs)
    target = _check_target(target, probs)
    tp, fp, fn = class_counts(binarize(probs, threshold), target)
    return {
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
    }


def macro_prf(
    probs: Tensor, target: Tensor, threshold: float | Sequence[float] | Tensor
) -> dict[str, float]:
    """The challenge's class-averaged F1, precision and recall.

    Args:
        probs: ``(N, C)`` video probabilities.
        target: ``(N, C)`` multi-hot labels.
        threshold: one value or ``C`` values.

    Returns:
        ``{"f1", "precision", "recall"}``: means over all ``C`` classes of
        :func:`per_class_prf` (fractions in ``[0, 1]``).
    """
    scores = per_class_prf(probs, target, threshold)
    return {k: float(scores[k].mean()) for k in ("f1", "precision", "recall")}


def tune_thresholds(
    probs: Tensor,
    target: Tensor,
    *,
    mode: str = "global",
    grid: Sequence[float] | None = None,
    default: float = 0.5,
) -> Tensor:
    """Decision thresholds maximising the macro F1 of ``probs`` against ``target``.

    ``"global"`` picks the grid value with the best macro F1 for all classes; ``"per_class"``
    picks, for each class, the grid value with the best ``F1_c`` (which maximises the macro F1
    over per-class thresholds, since it is a mean of independent terms). Among equally good
    values the one closest to ``default`` wins, then the smaller one: a class without positives
    (``F1_c = 0`` everywhere) keeps ``default``.

    Args:
        probs: ``(N, C)`` validation video probabilities (after clip aggregation and TTA).
        target: ``(N, C)`` multi-hot labels.
        mode: ``"global"`` or ``"per_class"``.
        grid: candidate thresholds in ``[0, 1]`` (default :data:`DEFAULT_GRID`).
        default: the fixed threshold used to break ties.

    Returns:
        float32 ``(C,)`` thresholds on ``probs``' device (all equal for ``"global"``).

    Raises:
        ValueError: an unknown mode, an empty grid or one with values outside ``[0, 1]``, or
            malformed inputs.
    """
    if mode not in ("global", "per_class"):
        raise ValueError(f"mode must be 'global' or 'per_class', got {mode!r}")
    probs = _check_probs(probs)
    target = _check_target(target, probs)
    values = sorted({float(v) for v in (DEFAULT_GRID if grid is None else grid)})
    if not values or values[0] < 0 or values[-1] > 1:
        raise ValueError(f"threshold grid must be non-empty values in [0, 1], got {grid}")
    g = torch.tensor(values, dtype=torch.float64, device=probs.device)
    p = probs.double()
    f1_rows = []
    for start in range(0, len(values), _GRID_CHUNK):
        chunk = g[start : start + _GRID_CHUNK]
        preds = p.unsqueeze(0) > chunk.view(-1, 1, 1)  # (G', N, C)
        tp, fp, fn = class_counts(preds, target)
        f1_rows.append(_ratio(2 * tp, 2 * tp + fp + fn))  # (G', C)
    f1 = torch.cat(f1_rows)  # (G, C)
    score = f1 if mode == "per_class" else f1.mean(1, keepdim=True).expand_as(f1)
    best = score.max(0, keepdim=True).values
    tied = score >= best - 1e-12
    distance = torch.round((g - float(default)).abs() * 1e9).view(-1, 1).expand_as(score)
    distance = torch.where(tied, distance, torch.full_like(distance, float("inf")))
    choice = distance.argmin(0)  # first minimum: the smaller threshold on equal distances
    return g[choice].float()


def hflip_inputs(inputs: Sequence[Tensor], keys: Sequence[str]) -> list[Tensor]:
    """Horizontally flipped copies of a model's inputs (test-time augmentation).

    Every tensor is mirrored along its last dimension (width ``W``): ``video`` ``(B, 3, T, H,
    W)``, ``mask`` ``(B, 1, T, H, W)``, ``sg3i`` ``(B, 3, H, W)``. Optical flow (keys starting
    with ``flow``, ``(B, 2, T, H, W)``, channel 0 the horizontal displacement) also has its
    horizontal component negated, as the training flip does. Per-channel normalisation commutes
    with the mirror, so normalised inputs flip exactly.

    Args:
        inputs: the tensors of ``keys``, in order.
        keys: the model's ``input_keys``.

    Returns:
        The flipped tensors (new tensors; the inputs are untouched).
    """
    if len(inputs) != len(keys):
        raise ValueError(f"{len(inputs)} inputs for {len(keys)} keys {list(keys)}")
    out: list[Tensor] = []
    for key, x in zip(keys, inputs, strict=True):
        f = x.flip(-1)
        if key.startswith("flow"):
            if f.ndim < 2 or f.shape[1] != 2:
                raise ValueError(f"flow input {key!r} must be (B, 2, ...), got {tuple(f.shape)}")
            f = torch.cat([-f[:, :1], f[:, 1:]], dim=1)
        out.append(f)
    return out


def combine_tta(probs: Tensor, flipped: Tensor, reduce: str = "max") -> Tensor:
    """Merge the probabilities of a clip and of its mirror image.

    Args:
        probs: ``(B, C)`` probabilities of the original clips.
        flipped: ``(B, C)`` probabilities of the flipped clips.
        reduce: ``"max"`` (per class, the thesis' rule §3.4.1; for sigmoid outputs it equals
            the sigmoid of the larger logit) or ``"mean"``.

    Returns:
        ``(B, C)`` combined probabilities.
    """
    if probs.shape != flipped.shape:
        raise ValueError(f"shapes differ: {tuple(probs.shape)} vs {tuple(flipped.shape)}")
    if reduce == "max":
        return torch.maximum(probs, flipped)
    if reduce == "mean":
        return (probs + flipped) / 2
    raise ValueError(f"reduce must be one of {TTA_REDUCTIONS}, got {reduce!r}")


def aggregate_by_video(
    probs: Tensor, video_index: Tensor, reduce: str = "max"
) -> tuple[Tensor, Tensor]:
    """Merge the clips of each video.

    Args:
        probs: ``(M, C)`` clip probabilities.
        video_index: ``(M,)`` integer video of each clip.
        reduce: ``"max"`` (per class over the video's clips, the thesis' K-clip rule) or
            ``"mean"``.

    Returns:
        ``(videos (V,) int64 ascending, video_probs (V, C))``.
    """
    if probs.ndim != 2 or video_index.shape != probs.shape[:1]:
        raise ValueError(
            f"expected probs (M, C) and video_index (M,), got {tuple(probs.shape)} and "
            f"{tuple(video_index.shape)}"
        )
    if reduce not in ("max", "mean"):
        raise ValueError(f"reduce must be 'max' or 'mean', got {reduce!r}")
    videos, inverse = torch.unique(video_index.long(), return_inverse=True)
    out = probs.new_zeros((videos.numel(), probs.shape[1]))
    if reduce == "mean":
        out.index_add_(0, inverse, probs)
        counts = torch.bincount(inverse, minlength=videos.numel()).clamp_min(1)
        return videos, out / counts.unsqueeze(1).to(out.dtype)
    rows = inverse.unsqueeze(1).expand_as(probs)
    return videos, out.scatter_reduce(0, rows, probs, "amax", include_self=False)


def _numeric_id(clip_id: str | int) -> int:
    text = str(clip_id).strip()
    if not text.isdigit():
        raise ValueError(f"answer.txt needs numeric clip ids (e.g. '00042'), got {clip_id!r}")
    return int(text)


def answer_lines(ids: Sequence[str | int], decisions: Tensor | np.ndarray) -> list[str]:
    """The lines of the challenge's ``answer.txt``.

    Args:
        ids: clip id of each row (``"00042"`` or ``42``).
        decisions: ``(V, C)`` binary decisions (bool or 0/1) in class-index order.

    Returns:
        ``"<id:05d> b0 ... b{C-1}"`` per video (no newline), sorted by numeric id.

    Raises:
        ValueError: lengths differ, an id is not a non-negative integer, an id repeats, or a
            decision is not 0/1.
    """
    d = decisions.detach().cpu().numpy() if isinstance(decisions, Tensor) else np.asarray(decisions)
    if d.ndim != 2 or d.shape[0] != len(ids):
        raise ValueError(f"decisions must be ({len(ids)}, C) for {len(ids)} ids, got {d.shape}")
    if not np.isin(d, (0, 1)).all():
        raise ValueError("decisions must be binary (0/1)")
    numbers = [_numeric_id(i) for i in ids]
    seen: set[int] = set()
    for n in numbers:
        if n in seen:
            raise ValueError(f"clip id {n:05d} appears more than once")
        seen.add(n)
    rows = d.astype(np.int64)
    order = sorted(range(len(numbers)), key=numbers.__getitem__)
    return [f"{numbers[i]:05d} " + " ".join(str(int(b)) for b in rows[i]) for i in order]


def write_answer(
    path: str | Path, ids: Sequence[str | int], decisions: Tensor | np.ndarray
) -> Path:
    """Write ``answer.txt`` (:func:`answer_lines`, a newline after every line).

    Args:
        path: the output file (parent folders created).
        ids: clip id of each row of ``decisions``.
        decisions: ``(V, C)`` binary decisions, e.g. ``binarize(video_probs, thresholds)``.

    Returns:
        ``path``.
    """
    lines = answer_lines(ids, decisions)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(line + "\n" for line in lines))
    return out


def thresholds_for_json(thresholds: Any) -> float | list[float]:
    """One float when every class shares the threshold, else the per-class list (rounded to
    6 decimals), for JSON outputs."""
    values = [round(float(v), 6) for v in np.asarray(thresholds, dtype=np.float64).ravel()]
    if values and all(v == values[0] for v in values):
        return values[0]
    return values
