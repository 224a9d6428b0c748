"""Safe checkpoint reading and tolerant loading into a model.

Checkpoints are untrusted input: everything is read with ``torch.load(..., weights_only=True)`` or
``safetensors``, never by unpickling arbitrary objects.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from lowres_har.registry import ModelCard

__all__ = [
    "LoadReport",
    "infer_num_classes",
    "load_pretrained",
    "load_state_dict_into",
    "read_state_dict",
]

log = logging.getLogger("lowres_har")

_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model_state", "model", "module", "net")


def _is_state_dict(obj: Any) -> bool:
    return (
        isinstance(obj, Mapping)
        and len(obj) > 0
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    )


def _strip(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def read_state_dict(path: str | Path, *, prefix: str | None = None) -> dict[str, torch.Tensor]:
    """Read a state dict from a checkpoint file without executing any pickled code.

    Accepted files:

    * ``.safetensors``;
    * a Lightning ``.ckpt`` of a lowres-har task: its ``state_dict`` with the task's ``model.``
      prefix removed (other entries of the task, e.g. a teacher, are dropped and logged);
    * a ``.pt``/``.pth``/``.bin`` file holding a state dict, or a dict that wraps one under
      ``state_dict``/``model``/``model_state_dict``/... (``module.`` prefixes from
      ``DataParallel`` are removed).

    Args:
        path: the checkpoint file.
        prefix: keep only keys starting with this prefix and remove it (e.g. ``"student."``).
            ``None`` auto-detects ``model.`` (lowres-har tasks) and ``module.``.

    Returns:
        ``{parameter name: tensor}``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file holds no state dict, or ``prefix`` matches no key.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state: Any = load_file(str(path))
    else:
        try:
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as err:  # pickle errors come in many types
            raise ValueError(
                f"{path}: cannot be read with weights_only=True ({type(err).__name__}: {err}). "
                "lowres-har never unpickles arbitrary objects; re-save the checkpoint as a plain "
                "state dict or .safetensors."
            ) from err
        state = obj
        if not _is_state_dict(state) and isinstance(obj, Mapping):
            for key in _WRAPPER_KEYS:
                if _is_state_dict(obj.get(key)):
                    state = obj[key]
                    break
        if not _is_state_dict(state):
            keys = list(obj)[:8] if isinstance(obj, Mapping) else type(obj).__name__
            raise ValueError(f"{path}: no state dict found (top-level entries: {keys})")
    state = dict(state)
    if prefix is not None:
        stripped = _strip(state, prefix)
        if not stripped:
            raise ValueError(f"{path}: no key starts with prefix {prefix!r}")
        dropped = len(state) - len(stripped)
        if dropped:
            log.info("%s: ignored %d entries outside prefix %r", path, dropped, prefix)
        return stripped
    for auto in ("model.", "module."):
        if any(k.startswith(auto) for k in state):
            stripped = _strip(state, auto)
            others = sorted(k for k in state if not k.startswith(auto))
            if others:
                log.info(
                    "%s: ignored %d entries outside %r (e.g. %s)",
                    path,
                    len(others),
                    auto,
                    ", ".join(others[:3]),
                )
            return stripped
    return state


def infer_num_classes(state: Mapping[str, torch.Tensor], card: ModelCard) -> int | None:
    """Number of classes of a checkpoint, read from its classifier's weight (``None`` if absent)."""
    for name in card.classifier:
        weight = state.get(f"{name}.weight")
        if weight is not None and weight.ndim >= 1:
            return int(weight.shape[0])
    return None


@dataclass
class LoadReport:
    """What happened when weights were loaded into a model.

    Attributes:
        loaded: keys copied from the checkpoint.
        missing: model keys the checkpoint lacks (left at their initial values).
        unexpected: checkpoint keys the model does not have (ignored).
        reinitialized: classifier keys whose shape differs (num_classes changed), left freshly
            initialised.
    """

    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    reinitialized: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """Human-readable multi-line summary naming every key that was not loaded."""
        lines = [f"loaded {len(self.loaded)} tensors"]
        for label, keys in (
            ("re-initialised (classifier shape changed)", self.reinitialized),
            ("missing from checkpoint (kept initial values)", self.missing),
            ("unexpected in checkpoint (ignored)", self.unexpected),
        ):
            if keys:
                lines.append(f"{label}: {', '.join(keys)}")
        return "; ".join(lines)


def _under(key: str, names: Iterable[str]) -> bool:
    return any(key == n or key.startswith(n + ".") for n in names)


def _nothing_matches(
    source: str, state: Mapping[str, torch.Tensor], own: Mapping[str, torch.Tensor]
) -> str:
    """The error for a state dict none of whose keys the model has."""
    theirs, ours = sorted(state)[:4], sorted(own)[:4]
    message = (
        f"{source}: none of its {len(state)} tensors matches a parameter of the model "
        f"(checkpoint keys {theirs}..., model keys {ours}...); is it the right architecture?"
    )
    if "conv1.weight" in state and "bn1.weight" in state:
        message += (
            " It looks like a 3D-ResNets-PyTorch checkpoint: convert it first with "
            "lowres_har.models.resnet3d.convert_3d_resnets_checkpoint(src, dst) (or build the "
            "model with load_3d_resnets_checkpoint(path, ...)); for the multi-scale / FPN "
            "models load the converted weights into their backbones with "
            "lowres_har.models.resnet3d.load_backbone_weights(model, state)."
        )
    return message


def load_state_dict_into(
    model: nn.Module,
    state: Mapping[str, torch.Tensor],
    *,
    classifier: Iterable[str] = ("fc",),
    source: str = "checkpoint",
) -> LoadReport:
    """Load ``state`` into ``model``, tolerating a classifier with another number of classes.

    Shape mismatches under a ``classifier`` module are re-initialised (reported); a mismatch
    anywhere else is an error, because silently skipping backbone weights would hide a wrong
    checkpoint. Missing and unexpected keys are logged as warnings, naming every key.

    Args:
        model: the network.
        state: ``{name: tensor}``.
        classifier: names of classifier modules (the model card's ``classifier``).
        source: name used in messages (usually the file path).

    Returns:
        A :class:`LoadReport`.

    Raises:
        ValueError: a non-classifier tensor has a different shape, or no tensor of a non-empty
            ``state`` matches the model (the message names 3D-ResNets-PyTorch checkpoints and
            their converter when the keys look like one).
    """
    classifier = tuple(classifier)
    own = model.state_dict()
    report = LoadReport()
    usable: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key not in own:
            report.unexpected.append(key)
        elif own[key].shape != value.shape:
            if _under(key, classifier):
                report.reinitialized.append(key)
            else:
                raise ValueError(
                    f"{source}: tensor {key!r} has shape {tuple(value.shape)} in the checkpoint "
                    f"but {tuple(own[key].shape)} in the model; is it the right architecture?"
                )
        else:
            usable[key] = value
    if state and not usable and not report.reinitialized:
        raise ValueError(_nothing_matches(source, state, own))
    model.load_state_dict(usable, strict=False)
    report.loaded = sorted(usable)
    report.missing = sorted(k for k in own if k not in state)
    if report.reinitialized:
        log.warning(
            "%s: re-initialised classifier keys: %s", source, ", ".join(report.reinitialized)
        )
    if report.missing:
        log.warning("%s: missing keys (kept initial values): %s", source, ", ".join(report.missing))
    if report.unexpected:
        log.warning("%s: unexpected keys (ignored): %s", source, ", ".join(report.unexpected))
    log.info("%s: %s", source, report.summary())
    return report


def load_pretrained(
    model: nn.Module,
    path: str | Path,
    *,
    classifier: Iterable[str] = ("fc",),
    prefix: str | None = None,
) -> LoadReport:
    """Read ``path`` with :func:`read_state_dict` and load it with :func:`load_state_dict_into`."""
    state = read_state_dict(path, prefix=prefix)
    return load_state_dict_into(model, state, classifier=classifier, source=str(path))
