"""What every exporter shares: resolving a model from a name, a module or a checkpoint, and
building example inputs of the right shapes.

A lowres-har task checkpoint (``.ckpt``) carries the model's registry name, its architecture
options, the number of classes and the class names in ``hyper_parameters``; it is read with
``weights_only=True`` like every checkpoint in the library.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from lowres_har.registry import create_model, list_models, model_card

__all__ = ["LoadedModel", "example_inputs", "input_shapes", "load_model", "real_inputs"]


@dataclass
class LoadedModel:
    """A model ready for export, with what is known about it.

    Attributes:
        model: the network in eval mode on the CPU.
        name: registry name (``None`` for a plain module not built by the registry).
        model_kwargs: architecture options it was built with.
        num_classes: classifier outputs.
        class_names: one name per class (from the checkpoint; ``class_{i}`` otherwise).
        input_keys: the model's ``input_keys``, in ``forward`` order.
        source: the checkpoint file it came from, if any.
        hparams: the task's ``hyper_parameters`` from a checkpoint (empty otherwise).
        extra: other lowres-har entries stored in the checkpoint (e.g. the inference data
            pipeline under ``"pipeline"``), empty when absent.
    """

    model: nn.Module
    name: str | None
    model_kwargs: dict[str, Any]
    num_classes: int
    class_names: list[str]
    input_keys: tuple[str, ...]
    source: str | None = None
    hparams: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def _num_classes(model: nn.Module) -> int:
    value = getattr(model, "num_classes", None)
    if isinstance(value, int):
        return value
    fc = getattr(model, "fc", None)
    if isinstance(fc, nn.Linear):
        return int(fc.out_features)
    raise ValueError(f"cannot tell the number of classes of {type(model).__name__}")


def _from_checkpoint(path: Path, overrides: Mapping[str, Any]) -> LoadedModel:
    from lowres_har.weights import load_state_dict_into, read_state_dict

    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # pickle errors come in many types
        raise ValueError(
            f"{path}: cannot be read with weights_only=True ({type(err).__name__}: {err})"
        ) from err
    hp = dict(ckpt.get("hyper_parameters") or {}) if isinstance(ckpt, Mapping) else {}
    name = hp.get("model")
    if not isinstance(name, str):
        raise ValueError(
            f"{path}: not a lowres-har task checkpoint (no 'model' in hyper_parameters); pass "
            "a registered model name and the weights file instead (create_model(name, "
            "pretrained=...))"
        )
    kwargs = {**dict(hp.get("model_kwargs") or {}), **overrides}
    num_classes = int(hp.get("num_classes") or 0) or None
    model = create_model(name, num_classes=num_classes, **kwargs)
    state = read_state_dict(path)
    report = load_state_dict_into(model, state, classifier=(), source=str(path))
    if getattr(report, "missing", None):
        raise ValueError(f"{path}: checkpoint lacks weights for {list(report.missing)[:5]}")
    names = hp.get("class_names")
    n = _num_classes(model)
    return LoadedModel(
        model=model.eval(),
        name=name,
        model_kwargs=kwargs,
        num_classes=n,
        class_names=list(names) if names else [f"class_{i}" for i in range(n)],
        input_keys=tuple(model.input_keys),  # type: ignore[arg-type]
        source=str(path),
        hparams=hp,
        extra=dict(ckpt.get("lowres_har") or {}),
    )


def load_model(
    model_or_checkpoint: nn.Module | str | Path | LoadedModel, **model_kwargs: Any
) -> LoadedModel:
    """Resolve what the user passed to an exporter.

    Args:
        model_or_checkpoint: a module with ``input_keys``; a registered model name (built with
            random weights, e.g. to check an architecture exports); or a lowres-har task
            checkpoint ``.ckpt`` (read with ``weights_only=True``).
        **model_kwargs: architecture options for a name, or overrides of the checkpoint's.

    Returns:
        A :class:`LoadedModel` in eval mode.

    Raises:
        FileNotFoundError: a path that does not exist.
        ValueError: a file that is not a task checkpoint, or a module without ``input_keys``.
    """
    if isinstance(model_or_checkpoint, LoadedModel):
        model_or_checkpoint.model.eval()
        return model_or_checkpoint
    if isinstance(model_or_checkpoint, nn.Module):
        model = model_or_checkpoint
        keys = getattr(model, "input_keys", None)
        if not keys:
            raise ValueError(f"{type(model).__name__} has no input_keys; lowres-har models do")
        n = _num_classes(model)
        return LoadedModel(
            model=model.eval(),
            name=None,
            model_kwargs={},
            num_classes=n,
            class_names=[f"class_{i}" for i in range(n)],
            input_keys=tuple(keys),
        )
    text = str(model_or_checkpoint)
    if isinstance(model_or_checkpoint, str) and text in list_models():
        model = create_model(text, **model_kwargs)
        n = _num_classes(model)
        return LoadedModel(
            model=model.eval(),
            name=text,
            model_kwargs=dict(model_kwargs),
            num_classes=n,
            class_names=[f"class_{i}" for i in range(n)],
            input_keys=tuple(model.input_keys),  # type: ignore[arg-type]
        )
    path = Path(text).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"{text!r} is neither a registered model ({', '.join(list_models())}) nor a file"
        )
    return _from_checkpoint(path, model_kwargs)


def _pipeline_shape(pipeline: Any) -> tuple[int | None, tuple[int, int] | None]:
    """``(T, (H, W))`` of the ``video`` input in a stored evaluation pipeline (``None`` parts when
    absent): ``num_frames`` and the view's ``upsample_to`` (else ``size``)."""
    if not isinstance(pipeline, Mapping):
        return None, None
    t = pipeline.get("num_frames")
    view = (pipeline.get("views") or {}).get("video")
    hw = None
    if isinstance(view, Mapping):
        out = view.get("upsample_to") or view.get("size")
        if out and len(out) == 2:
            hw = (int(out[0]), int(out[1]))
    return (int(t) if t else None), hw


def input_shapes(
    loaded: LoadedModel,
    *,
    num_frames: int | None = None,
    size: tuple[int, int] | None = None,
) -> dict[str, tuple[int, int, int, int]]:
    """``{input key: (C, T, H, W)}`` for one clip.

    Defaults come from the model (its ``clip_shape`` when it has one, e.g. MSN), then from the
    evaluation pipeline a task checkpoint stores (``num_frames`` and the ``video`` view's network
    size: what the model was trained on), then from its model card.
    """
    model = loaded.model
    card = model_card(loaded.name) if loaded.name else None
    clip = getattr(model, "clip_shape", None)
    trained_t, trained_hw = _pipeline_shape(loaded.extra.get("pipeline"))
    out: dict[str, tuple[int, int, int, int]] = {}
    for key in loaded.input_keys:
        spec = card.inputs.get(key) if card else None
        t = (
            num_frames
            or (clip[0] if clip else None)
            or trained_t
            or (spec.frames if spec else None)
            or 16
        )
        hw = (
            size
            or (tuple(clip[1:]) if clip else None)
            or trained_hw
            or (spec.size if spec else (32, 32))
        )
        channels = spec.channels if spec else {"video": 3, "flow": 2, "mask": 1}.get(key, 3)
        out[key] = (int(channels), int(t), int(hw[0]), int(hw[1]))
    return out


def example_inputs(
    loaded: LoadedModel,
    *,
    batch: int = 1,
    seed: int = 0,
    num_frames: int | None = None,
    size: tuple[int, int] | None = None,
) -> tuple[Tensor, ...]:
    """Random normal inputs ``(batch, C, T, H, W)``, one per input key, in ``forward`` order."""
    gen = torch.Generator().manual_seed(seed)
    shapes = input_shapes(loaded, num_frames=num_frames, size=size)
    return tuple(torch.randn((batch, *shapes[k]), generator=gen) for k in loaded.input_keys)


def real_inputs(
    loaded: LoadedModel,
    path: str | Path,
    *,
    num_frames: int | None = None,
    size: tuple[int, int] | None = None,
    elr_size: tuple[int, int] | None = (12, 16),
    start: int = 0,
    flow_method: str = "tvl1",
    mean: tuple[float, float, float] = (0.43216, 0.394666, 0.37645),
    std: tuple[float, float, float] = (0.22803, 0.22145, 0.216989),
) -> tuple[Tensor, ...]:
    """Inputs ``(1, C, T, H, W)`` built from a real video, one per input key, in ``forward`` order.

    The first ``T`` frames from ``start`` are degraded as an eLR camera would deliver them
    (area-downsampled to ``elr_size``, then bilinearly upsampled to the model's ``(H, W)``;
    ``elr_size=None`` resizes straight to ``(H, W)``). ``video`` is normalised with ``mean`` /
    ``std`` (Kinetics by default); ``flow`` is :func:`~lowres_har.transforms.flow.optical_flow`
    (in ``[-1, 1]``) and ``mask`` :func:`~lowres_har.transforms.mask.slack_mask` of those frames.
    Short videos loop.
    """
    import cv2
    import numpy as np

    from lowres_har.data.io import read_video
    from lowres_har.transforms.flow import optical_flow
    from lowres_har.transforms.mask import slack_mask
    from lowres_har.transforms.resolution import Degrade

    shapes = input_shapes(loaded, num_frames=num_frames, size=size)
    _, t, h, w = next(iter(shapes.values()))
    frames, _ = read_video(path, start=start, num_frames=t, allow_partial=True)
    if len(frames) == 0:
        raise ValueError(f"{path}: no frames decoded from frame {start}")
    frames = frames[np.arange(t) % len(frames)]
    small = Degrade(elr_size if elr_size is not None else (h, w))(frames)
    clip = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_LINEAR) for f in small]).astype(
        np.uint8
    )
    out: list[Tensor] = []
    for key in loaded.input_keys:
        if key == "video":
            x = (clip.astype(np.float32) / 255.0 - np.asarray(mean, np.float32)) / np.asarray(
                std, np.float32
            )
            arr = x.transpose(3, 0, 1, 2)
        elif key == "flow":
            arr = optical_flow(clip, flow_method).transpose(3, 0, 1, 2)
        elif key == "mask":
            arr = np.asarray(slack_mask(clip))[None]
        else:
            raise ValueError(f"real_inputs cannot build input {key!r} (video, flow, mask only)")
        out.append(torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))[None])
    return tuple(out)
