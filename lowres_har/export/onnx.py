"""ONNX export with an onnxruntime parity check, and a small onnxruntime runner.

:func:`to_onnx` turns a registered model name, a ``torch.nn.Module`` or a lowres-har task
checkpoint into one self-contained ``.onnx`` file:

- exported with PyTorch's ``torch.export``-based exporter (``dynamo=True``, onnxscript); when that
  fails for a model, the TorchScript exporter is tried and the report says which one was used;
- inputs named after the model's ``input_keys`` (e.g. ``video``, ``flow``, ``mask``), each
  ``(batch, C, T, H, W)`` float32 with a dynamic ``batch`` axis; one output ``logits``
  ``(batch, num_classes)``;
- ``onnx.checker.check_model(..., full_check=True)`` (structure and shape inference);
- parity: onnxruntime (``CPUExecutionProvider``) against PyTorch on random clips at batch 1 and 3
  and, when a video is given, on a real clip degraded the way an eLR camera delivers it
  (:func:`lowres_har.export.common.real_inputs`); the maximum absolute logit difference of each is
  reported and, with ``check=True``, must stay within ``atol``;
- what a runtime needs to use the file is stored in the model's ``metadata_props`` (all values
  are strings; JSON where marked):

  ========================  ==================================================================
  key                       value
  ========================  ==================================================================
  ``model``                 registry name (class name for a plain module)
  ``class_names``           JSON list, one name per logit
  ``num_classes``           integer
  ``input_names``           JSON list, the graph inputs in ``forward`` order
  ``input_shapes``          JSON ``{input: [C, T, H, W]}`` the file was exported and checked at
  ``dynamic_batch``         ``"true"`` / ``"false"``
  ``opset``                 default-domain ONNX opset
  ``exporter``              ``"dynamo"`` or ``"torchscript"``
  ``lowres_har_version``    the library version that wrote the file
  ``model_kwargs``          JSON architecture options (non-JSON values as strings)
  ``source``                checkpoint file the weights came from (absent otherwise)
  ``pipeline``              JSON inference data pipeline from the checkpoint (when present)
  ========================  ==================================================================

:class:`OnnxRunner` wraps an ``onnxruntime.InferenceSession`` as ``runner(*clips) -> logits``
and exposes that metadata.

onnx, onnxscript and onnxruntime are optional: ``pip install "lowres-har[onnx]"``.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import json
import logging
import math
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from lowres_har._version import __version__
from lowres_har.export.common import (
    LoadedModel,
    example_inputs,
    input_shapes,
    load_model,
    real_inputs,
)

__all__ = ["EXPORTERS", "OnnxParityError", "OnnxReport", "OnnxRunner", "to_onnx"]

log = logging.getLogger("lowres_har")

#: accepted values of ``to_onnx(..., exporter=)``.
EXPORTERS: tuple[str, ...] = ("auto", "dynamo", "torchscript")

_OUTPUT = "logits"
_BATCH = "batch"
_EXTRA_HINT = 'pip install "lowres-har[onnx]"'


class OnnxParityError(RuntimeError):
    """onnxruntime's logits differ from PyTorch's by more than the tolerance."""


def _require(module: str, what: str) -> ModuleType:
    """Import an optional dependency, or raise an ImportError naming the extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(
            f"{what} needs the '{module}' package, which is not installed: {_EXTRA_HINT}"
        ) from err


@dataclass
class OnnxReport:
    """What :func:`to_onnx` wrote and how closely it matches PyTorch.

    Attributes:
        path: the ``.onnx`` file.
        model: registry name of the exported model (class name for a plain module).
        opset: default-domain ONNX opset of the file.
        exporter: ``"dynamo"`` (``torch.export`` + onnxscript) or ``"torchscript"``.
        input_names: graph inputs, the model's ``input_keys`` in ``forward`` order.
        input_shapes: ``{input: (C, T, H, W)}`` of one clip, as exported and checked.
        output_names: graph outputs (``("logits",)``).
        dynamic_batch: whether the first axis of every input and of the output is symbolic.
        max_abs_diff_random: max ``|onnxruntime - torch|`` over the logits of random normal clips
            (batch 1 and 3 with a dynamic batch, batch 1 otherwise).
        max_abs_diff_real: the same on a clip of ``real_video`` (``None`` without a video).
        atol: tolerance the differences were held to.
        export_seconds: wall-clock time of the export itself (not the checks), in seconds.
        file_bytes: size of the file in bytes.
        real_video: the video the real clip came from, if any.
        fallback_reason: why the dynamo exporter was not used (``None`` when it was).
    """

    path: Path
    model: str
    opset: int
    exporter: str
    input_names: tuple[str, ...]
    input_shapes: dict[str, tuple[int, int, int, int]]
    output_names: tuple[str, ...]
    dynamic_batch: bool
    max_abs_diff_random: float
    max_abs_diff_real: float | None
    atol: float
    export_seconds: float
    file_bytes: int
    real_video: str | None = None
    fallback_reason: str | None = None

    @property
    def passed(self) -> bool:
        """Whether every measured difference is within ``atol``."""
        diffs = [self.max_abs_diff_random, self.max_abs_diff_real]
        return all(d <= self.atol for d in diffs if d is not None)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (paths as strings, tuples as lists)."""
        out = asdict(self)
        out["path"] = str(self.path)
        out["input_names"] = list(self.input_names)
        out["output_names"] = list(self.output_names)
        out["input_shapes"] = {k: list(v) for k, v in self.input_shapes.items()}
        out["passed"] = self.passed
        return out

    def summary(self) -> str:
        """One line: file, exporter, opset, size and the parity figures."""
        real = "" if self.max_abs_diff_real is None else f", real {self.max_abs_diff_real:.2e}"
        return (
            f"{self.model} -> {self.path} ({self.exporter}, opset {self.opset}, "
            f"{self.file_bytes / 1e6:.2f} MB, {self.export_seconds:.1f} s): max |onnx - torch| "
            f"random {self.max_abs_diff_random:.2e}{real} (atol {self.atol:.0e}, "
            f"{'ok' if self.passed else 'FAILED'})"
        )


def _dynamic_shapes(model: nn.Module, num_inputs: int) -> tuple[Any, ...]:
    """``dynamic_shapes`` for ``torch.export`` marking axis 0 of every input as ``batch``.

    The structure follows ``forward``'s signature: one entry per named positional parameter
    and one tuple for ``*tensors`` (MSN's ``forward(*tensors)``).
    """
    batch = torch.export.Dim(_BATCH, min=1)
    out: list[Any] = []
    left = num_inputs
    for param in inspect.signature(model.forward).parameters.values():
        if left == 0:
            break
        if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            out.append({0: batch})
            left -= 1
        elif param.kind is param.VAR_POSITIONAL:
            out.append(tuple({0: batch} for _ in range(left)))
            left = 0
    if left:
        raise ValueError(
            f"{type(model).__name__}.forward takes fewer positional tensors than its "
            f"{num_inputs} input_keys"
        )
    return tuple(out)


def _export_dynamo(
    model: nn.Module,
    args: tuple[Tensor, ...],
    names: Sequence[str],
    opset: int | None,
    dynamic_batch: bool,
) -> Any:
    """``torch.export`` + onnxscript; returns an ``onnx.ModelProto``."""
    with warnings.catch_warnings():
        # every input shares the one ``batch`` Dim; the exporter notes that it keeps one name
        warnings.filterwarnings("ignore", message=r".*axis name: .* will not be used")
        # torch.export's own use of a deprecated pytree API (torch 2.9+), not ours to fix
        warnings.filterwarnings(
            "ignore", message=r".*isinstance\(treespec, LeafSpec\)", category=FutureWarning
        )
        program = torch.onnx.export(
            model,
            args,
            None,
            dynamo=True,
            input_names=list(names),
            output_names=[_OUTPUT],
            opset_version=opset,
            dynamic_shapes=_dynamic_shapes(model, len(args)) if dynamic_batch else None,
            verbose=False,
        )
    if program is None:  # only a file export returns nothing
        raise RuntimeError("torch.onnx.export returned no program")
    return program.model_proto


def _export_torchscript(
    model: nn.Module,
    args: tuple[Tensor, ...],
    names: Sequence[str],
    opset: int | None,
    dynamic_batch: bool,
) -> Any:
    """The TorchScript (tracing) exporter; returns an ``onnx.ModelProto``."""
    onnx = _require("onnx", "ONNX export")
    axes = {k: {0: _BATCH} for k in [*names, _OUTPUT]} if dynamic_batch else None
    kwargs: dict[str, Any] = {} if opset is None else {"opset_version": opset}
    with tempfile.TemporaryDirectory(prefix="lowres_har_onnx_") as tmp:
        file = Path(tmp) / "model.onnx"
        torch.onnx.export(
            model,
            args,
            str(file),
            dynamo=False,
            input_names=list(names),
            output_names=[_OUTPUT],
            dynamic_axes=axes,
            **kwargs,
        )
        return onnx.load(str(file))


def _opset_of(proto: Any) -> int:
    for entry in proto.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    raise ValueError("the exported graph imports no default-domain ONNX opset")


def _json(value: Any) -> str:
    return json.dumps(value, default=str, sort_keys=True)


def _metadata(
    loaded: LoadedModel,
    name: str,
    shapes: Mapping[str, tuple[int, int, int, int]],
    opset: int,
    exporter: str,
    dynamic_batch: bool,
) -> dict[str, str]:
    meta = {
        "model": name,
        "class_names": json.dumps(list(loaded.class_names)),
        "num_classes": str(int(loaded.num_classes)),
        "input_names": json.dumps(list(loaded.input_keys)),
        "input_shapes": json.dumps({k: list(v) for k, v in shapes.items()}),
        "dynamic_batch": "true" if dynamic_batch else "false",
        "opset": str(opset),
        "exporter": exporter,
        "lowres_har_version": __version__,
        "model_kwargs": _json(loaded.model_kwargs),
    }
    if loaded.source:
        meta["source"] = loaded.source
    if "pipeline" in loaded.extra:
        meta["pipeline"] = _json(loaded.extra["pipeline"])
    return meta


def _set_metadata(proto: Any, meta: Mapping[str, str]) -> None:
    """Write ``meta`` into ``proto.metadata_props``, replacing entries of the same keys."""
    keep = [(p.key, p.value) for p in proto.metadata_props if p.key not in meta]
    del proto.metadata_props[:]
    for key, value in [*keep, *meta.items()]:
        entry = proto.metadata_props.add()
        entry.key = key
        entry.value = value


@contextlib.contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    """Run the block with ``threads`` torch intra-op threads, then restore the previous count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _max_abs_diff(model: nn.Module, runner: OnnxRunner, inputs: Sequence[Tensor]) -> float:
    """``max |runner(*inputs) - model(*inputs)|`` over all logits; ``inf`` on NaN.

    PyTorch runs single-threaded, like the runner :func:`to_onnx` builds: the check clips are
    tiny, and a thread pool only adds synchronisation cost (many times the work on a busy
    machine).
    """
    with _torch_threads(1), torch.inference_mode():
        expected = model(*inputs).detach().cpu().numpy()
    got = runner(*inputs)
    if got.shape != expected.shape:
        raise OnnxParityError(
            f"{runner.path}: onnxruntime returned logits of shape {got.shape}, PyTorch "
            f"{expected.shape}"
        )
    diff = np.abs(got.astype(np.float64) - expected.astype(np.float64))
    return math.inf if not np.all(np.isfinite(diff)) else float(diff.max(initial=0.0))


def to_onnx(
    model_or_checkpoint: nn.Module | str | Path | LoadedModel,
    path: str | Path,
    *,
    opset: int | None = None,
    dynamic_batch: bool = True,
    num_frames: int | None = None,
    size: tuple[int, int] | None = None,
    real_video: str | Path | None = None,
    atol: float = 1e-4,
    check: bool = True,
    exporter: str = "auto",
    **model_kwargs: Any,
) -> OnnxReport:
    """Export a model to ONNX and check it against PyTorch under onnxruntime.

    Args:
        model_or_checkpoint: a registered model name (random weights), a module with
            ``input_keys``, a :class:`~lowres_har.export.common.LoadedModel` or a lowres-har task
            checkpoint ``.ckpt`` (see :func:`~lowres_har.export.common.load_model`).
        path: the ``.onnx`` file to write (parent folders are created; weights are stored in the
            file itself).
        opset: default-domain ONNX opset; ``None`` takes the exporter's default.
        dynamic_batch: make the batch axis of the inputs and of ``logits`` symbolic (``batch``);
            otherwise the file takes batch 1 only.
        num_frames: clip length ``T`` to export and check at (default: the model's).
        size: clip ``(H, W)`` in pixels to export and check at (default: the model's).
        real_video: a video file; its first ``T`` frames, degraded to eLR and back to ``(H, W)``,
            make a real clip (and its flow and mask) for a second parity figure.
        atol: largest accepted absolute logit difference between onnxruntime and PyTorch.
        check: raise :class:`OnnxParityError` when a difference exceeds ``atol`` (otherwise the
            report carries the figures and ``passed`` is ``False``).
        exporter: ``"auto"`` (dynamo, then TorchScript if dynamo fails), ``"dynamo"`` or
            ``"torchscript"``.
        **model_kwargs: architecture options for a model name, or overrides of a checkpoint's.

    Returns:
        An :class:`OnnxReport`.

    Raises:
        ImportError: onnx/onnxscript/onnxruntime are missing (``pip install "lowres-har[onnx]"``).
        FileNotFoundError: the model name is unknown and no such file exists, or ``real_video``
            does not exist.
        ValueError: a bad ``exporter``/``atol``, architecture options with an already built
            model, or a file that is not a task checkpoint.
        RuntimeError: every exporter failed (the messages of each are included).
        onnx.checker.ValidationError: the written graph is not valid ONNX.
        OnnxParityError: with ``check``, onnxruntime's logits differ from PyTorch's by more than
            ``atol``.
    """
    if exporter not in EXPORTERS:
        raise ValueError(f"unknown exporter {exporter!r}; choose from {list(EXPORTERS)}")
    if not atol >= 0:
        raise ValueError(f"atol must be >= 0, got {atol}")
    onnx = _require("onnx", "ONNX export")
    if exporter != "torchscript":
        _require("onnxscript", "ONNX export with the dynamo exporter")
    _require("onnxruntime", "the ONNX parity check")
    if real_video is not None and not Path(real_video).expanduser().is_file():
        raise FileNotFoundError(f"real_video {str(real_video)!r}: no such file")

    if model_kwargs and isinstance(model_or_checkpoint, (nn.Module, LoadedModel)):
        raise ValueError(
            f"architecture options {sorted(model_kwargs)} apply to a model name or a checkpoint, "
            f"not to an already built {type(model_or_checkpoint).__name__}"
        )
    loaded = load_model(model_or_checkpoint, **model_kwargs)
    model = loaded.model.eval()
    name = loaded.name or type(model).__name__
    names = tuple(loaded.input_keys)
    shapes = input_shapes(loaded, num_frames=num_frames, size=size)
    # Batch 2 when the batch axis is dynamic: torch.export specialises a size-1 axis to 1.
    args = example_inputs(loaded, batch=2 if dynamic_batch else 1, num_frames=num_frames, size=size)
    out = Path(path).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)

    order = {"auto": ("dynamo", "torchscript"), "dynamo": ("dynamo",)}.get(
        exporter, ("torchscript",)
    )
    failures: list[str] = []
    proto = None
    used = ""
    start = time.perf_counter()
    for candidate in order:
        export = _export_dynamo if candidate == "dynamo" else _export_torchscript
        try:
            proto = export(model, args, names, opset, dynamic_batch)
        except Exception as err:  # exporter errors come in many types
            text = str(err).strip()
            failures.append(
                f"{candidate}: {type(err).__name__}: {text.splitlines()[0] if text else ''}"
            )
            log.warning(
                "ONNX export of %s with the %s exporter failed: %s", name, candidate, failures[-1]
            )
            log.debug("full %s exporter error for %s", candidate, name, exc_info=True)
            continue
        used = candidate
        break
    export_seconds = time.perf_counter() - start
    if proto is None:
        raise RuntimeError(f"ONNX export of {name} failed: " + "; ".join(failures))
    if failures:
        log.warning("%s exported with the %s exporter instead (%s)", name, used, failures[0])

    opset_used = _opset_of(proto)
    _set_metadata(proto, _metadata(loaded, name, shapes, opset_used, used, dynamic_batch))
    proto.doc_string = f"lowres-har {__version__}: {name} ({len(loaded.class_names)} classes)"
    onnx.save_model(proto, str(out))
    try:
        onnx.checker.check_model(str(out), full_check=True)
    except onnx.checker.ValidationError as err:
        raise onnx.checker.ValidationError(
            f"{out}: exported graph of {name} fails onnx.checker: {err}"
        ) from err

    runner = OnnxRunner(out, intra_op_threads=1)  # tiny checks: no thread pool to spin
    if runner.input_names != names or runner.output_names[:1] != (_OUTPUT,):
        raise RuntimeError(
            f"{out}: graph inputs {runner.input_names} / outputs {runner.output_names} do not "
            f"match {name}'s input_keys {names} / ({_OUTPUT!r},)"
        )
    batches = (1, 3) if dynamic_batch else (1,)
    diff_random = max(
        _max_abs_diff(
            model,
            runner,
            example_inputs(loaded, batch=b, seed=1 + i, num_frames=num_frames, size=size),
        )
        for i, b in enumerate(batches)
    )
    diff_real = None
    if real_video is not None:
        clip = real_inputs(loaded, real_video, num_frames=num_frames, size=size)
        diff_real = _max_abs_diff(model, runner, clip)

    report = OnnxReport(
        path=out,
        model=name,
        opset=opset_used,
        exporter=used,
        input_names=names,
        input_shapes=dict(shapes),
        output_names=runner.output_names,
        dynamic_batch=dynamic_batch,
        max_abs_diff_random=diff_random,
        max_abs_diff_real=diff_real,
        atol=float(atol),
        export_seconds=export_seconds,
        file_bytes=out.stat().st_size,
        real_video=None if real_video is None else str(real_video),
        fallback_reason=failures[0] if failures else None,
    )
    log.info("ONNX export: %s", report.summary())
    if check and not report.passed:
        worst = max(d for d in (diff_random, diff_real) if d is not None)
        which = "real" if diff_real is not None and diff_real == worst else "random"
        raise OnnxParityError(
            f"{name}: onnxruntime logits differ from PyTorch by {worst:.3e} on {which} inputs "
            f"(atol {atol:.1e}; random {diff_random:.3e}"
            + ("" if diff_real is None else f", real {diff_real:.3e}")
            + f"); the file was written to {out}"
        )
    return report


class OnnxRunner:
    """A ``.onnx`` classifier under onnxruntime: ``runner(*clips) -> logits``.

    Args:
        path: the ``.onnx`` file (e.g. written by :func:`to_onnx`).
        intra_op_threads: threads onnxruntime may use inside one operator (``None``: its
            default, all cores).
        providers: onnxruntime execution providers, in order of preference.

    Attributes:
        path: the file.
        input_names: graph inputs in ``forward`` order (``input_keys`` for lowres-har files).
        output_names: graph outputs; the first one is returned by ``__call__``.
        metadata: the file's ``metadata_props`` as a ``{key: value}`` dict of strings (see the
            module docs for what :func:`to_onnx` stores).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ImportError: onnxruntime is missing.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        intra_op_threads: int | None = None,
        providers: Sequence[str] = ("CPUExecutionProvider",),
    ) -> None:
        ort = _require("onnxruntime", "OnnxRunner")
        self.path = Path(path).expanduser()
        if not self.path.is_file():
            raise FileNotFoundError(f"ONNX model not found: {self.path}")
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only
        if intra_op_threads is not None:
            if intra_op_threads < 1:
                raise ValueError(f"intra_op_threads must be >= 1, got {intra_op_threads}")
            options.intra_op_num_threads = int(intra_op_threads)
        try:
            self.session = ort.InferenceSession(
                str(self.path), sess_options=options, providers=list(providers)
            )
        except Exception as err:  # onnxruntime raises its own exception types
            raise ValueError(
                f"{self.path}: onnxruntime cannot load it ({type(err).__name__}: {err})"
            ) from err
        self._inputs = self.session.get_inputs()
        self.input_names: tuple[str, ...] = tuple(i.name for i in self._inputs)
        self.output_names: tuple[str, ...] = tuple(o.name for o in self.session.get_outputs())
        self.metadata: dict[str, str] = dict(self.session.get_modelmeta().custom_metadata_map)

    @property
    def class_names(self) -> list[str] | None:
        """Class names stored by :func:`to_onnx` (``None`` for a file without them)."""
        text = self.metadata.get("class_names")
        return None if text is None else [str(c) for c in json.loads(text)]

    @property
    def input_shapes(self) -> dict[str, tuple[int | str | None, ...]]:
        """``{input: shape}`` as declared by the graph (a symbolic axis is its name, e.g.
        ``("batch", 3, 16, 32, 32)``)."""
        return {i.name: tuple(i.shape) for i in self._inputs}

    def __call__(self, *inputs: Tensor | np.ndarray) -> np.ndarray:
        """Logits ``(B, num_classes)`` float32 for one tensor per input, in ``input_names`` order.

        Args:
            *inputs: clips ``(B, C, T, H, W)`` as torch tensors (any device) or numpy arrays;
                converted to contiguous float32.

        Raises:
            ValueError: the wrong number of inputs or a tensor of the wrong rank.
            RuntimeError: onnxruntime rejected the inputs (e.g. a batch of 3 for a file
                exported with a fixed batch of 1).
        """
        if len(inputs) != len(self.input_names):
            raise ValueError(
                f"{self.path.name} takes {len(self.input_names)} inputs "
                f"{list(self.input_names)}, got {len(inputs)}"
            )
        feed: dict[str, np.ndarray] = {}
        for spec, value in zip(self._inputs, inputs, strict=True):
            if isinstance(value, Tensor):
                value = value.detach().cpu().numpy()
            array = np.ascontiguousarray(value, dtype=np.float32)
            if array.ndim != len(spec.shape):
                raise ValueError(
                    f"{self.path.name}: input {spec.name!r} must have {len(spec.shape)} "
                    f"dimensions {tuple(spec.shape)}, got shape {array.shape}"
                )
            feed[spec.name] = array
        try:
            out = self.session.run([self.output_names[0]], feed)[0]
        except Exception as err:  # onnxruntime raises its own exception types
            shapes = {k: v.shape for k, v in feed.items()}
            raise RuntimeError(
                f"{self.path.name}: onnxruntime failed on inputs {shapes} "
                f"({type(err).__name__}: {err})"
            ) from err
        return np.asarray(out)

    def __repr__(self) -> str:
        return f"OnnxRunner({str(self.path)!r}, inputs={list(self.input_names)})"
