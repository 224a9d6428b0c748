"""Model registry: ``register_model``, ``create_model``, ``list_models``, ``model_card``.

Every architecture file in :mod:`lowres_har.models` registers a builder function together with a
:class:`ModelCard`. ``create_model`` builds the network, optionally loads weights through
:func:`lowres_har.weights.load_pretrained` and returns a plain ``torch.nn.Module`` that has
``input_keys`` and ``reset_classifier``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from torch import nn

__all__ = [
    "InputSpec",
    "ModelCard",
    "Paper",
    "ReportedResult",
    "create_model",
    "list_models",
    "model_card",
    "register_model",
]


@dataclass(frozen=True)
class Paper:
    """Bibliographic reference of the paper a model comes from."""

    title: str
    authors: str
    venue: str
    year: int
    url: str = ""

    def citation(self) -> str:
        """One-line citation: ``Authors. Title. Venue, Year.``"""
        return f"{self.authors}. {self.title}. {self.venue}, {self.year}."


@dataclass(frozen=True)
class InputSpec:
    """Shape of one input tensor (one entry of ``input_keys``), without the batch axis.

    Attributes:
        channels: C (3 for RGB, 2 for optical flow, 1 for masks).
        frames: T, the default clip length (``None`` when any length works).
        size: ``(H, W)`` in pixels the model is documented for (rows × columns).
        description: what the tensor holds and how it is normalised.
    """

    channels: int
    frames: int | None
    size: tuple[int, int]
    description: str = ""

    def shape(self) -> tuple[int, ...]:
        """``(C, T, H, W)`` (or ``(C, H, W)`` when ``frames`` is ``None``)."""
        if self.frames is None:
            return (self.channels, *self.size)
        return (self.channels, self.frames, *self.size)


@dataclass(frozen=True)
class ReportedResult:
    """A number a paper reports (or that we measured), with where it comes from."""

    dataset: str
    metric: str
    value: float
    source: str
    setting: str = ""


@dataclass(frozen=True)
class ModelCard:
    """Everything a user needs to know before using a registered model.

    Attributes:
        name: registry name.
        summary: one sentence.
        paper: the publication the architecture follows (``None`` for pure baselines).
        inputs: one :class:`InputSpec` per entry of ``input_keys``, in order.
        num_classes: default number of classes.
        choices: details the paper leaves open and the value we chose (parameter -> explanation).
        reported_results: numbers reported by the paper (and measured by us).
        pretrained_format: what checkpoints ``pretrained=`` accepts beyond our own.
        classifier: names of the classifier module(s) (e.g. ``("fc",)``): re-initialised when
            the number of classes changes, trainable under ``freeze_backbone``.
        docs: relative path of the model's documentation page.
    """

    name: str
    summary: str
    inputs: dict[str, InputSpec]
    num_classes: int
    paper: Paper | None = None
    choices: dict[str, str] = field(default_factory=dict)
    reported_results: tuple[ReportedResult, ...] = ()
    pretrained_format: str = ""
    classifier: tuple[str, ...] = ("fc",)
    docs: str = ""

    @property
    def input_keys(self) -> tuple[str, ...]:
        """Names of the batch entries ``forward`` takes, in order."""
        return tuple(self.inputs)


@dataclass(frozen=True)
class _Entry:
    builder: Callable[..., nn.Module]
    card: ModelCard


_REGISTRY: dict[str, _Entry] = {}

F = TypeVar("F", bound=Callable[..., nn.Module])


def register_model(card: ModelCard) -> Callable[[F], F]:
    """Decorator that registers a builder ``fn(num_classes=..., **kwargs) -> nn.Module``.

    The built module must expose ``input_keys`` (matching ``card.inputs``) and
    ``reset_classifier(num_classes)``.

    Raises:
        ValueError: the name is already registered.
    """

    def decorator(fn: F) -> F:
        if card.name in _REGISTRY:
            raise ValueError(f"model {card.name!r} is already registered")
        _REGISTRY[card.name] = _Entry(builder=fn, card=card)
        return fn

    return decorator


def _ensure_models_imported() -> None:
    import lowres_har.models  # noqa: F401  (registers every architecture)


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style ``pattern`` (e.g. ``"r*"``), sorted."""
    _ensure_models_imported()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def _entry(name: str) -> _Entry:
    _ensure_models_imported()
    if name not in _REGISTRY:
        close = fnmatch.filter(_REGISTRY, f"*{name}*")
        hint = f" Did you mean one of {close}?" if close else ""
        raise KeyError(f"unknown model {name!r}.{hint} Available: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def model_card(name: str) -> ModelCard:
    """The :class:`ModelCard` of a registered model."""
    return _entry(name).card


def create_model(
    name: str,
    *,
    num_classes: int | None = None,
    pretrained: str | Path | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build a registered model.

    Args:
        name: a name from :func:`list_models`.
        num_classes: classifier outputs. ``None`` takes the checkpoint's number of classes when
            ``pretrained`` is given, else the model card's default.
        pretrained: a Lightning ``.ckpt``, a state dict ``.pt``/``.pth`` or a ``.safetensors``
            file, loaded with ``weights_only=True``. When its classifier has another number of
            classes the classifier is re-initialised and every other weight is loaded; every
            missing, unexpected or re-initialised key is logged.
        **kwargs: architecture options (see the model card).

    Returns:
        The model, in training mode, with ``input_keys`` and ``reset_classifier``.
    """
    entry = _entry(name)
    state = None
    if pretrained is not None:
        from lowres_har.weights import infer_num_classes, read_state_dict

        state = read_state_dict(pretrained)
        if num_classes is None:
            num_classes = infer_num_classes(state, entry.card)
    if num_classes is None:
        num_classes = entry.card.num_classes
    model = entry.builder(num_classes=num_classes, **kwargs)
    for attr in ("input_keys", "reset_classifier"):
        if not hasattr(model, attr):
            raise TypeError(f"model {name!r} does not define {attr!r}")
    if state is not None:
        from lowres_har.weights import load_state_dict_into

        load_state_dict_into(model, state, classifier=entry.card.classifier, source=str(pretrained))
    return model
