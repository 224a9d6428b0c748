"""Model benchmarks behind ``lowres-har benchmark model|msn|e2e``.

- :func:`count_params` and :func:`count_flops` (``torch.utils.flop_counter.FlopCounterMode``:
  one multiply-add counts as **2 FLOPs**; only matrix products and convolutions are counted, not
  BatchNorm, activations, pooling or element-wise sums, which are a rounding error next to them);
- :func:`measure_latency`: p50/p90 milliseconds per batch and clips/s, frames/s, through a small
  backend abstraction (:data:`BACKENDS`: a factory that turns a model and a fixed batch into a
  callable running one forward pass): ``"torch"`` (eager, ``inference_mode``),
  ``"onnxruntime"`` and ``"tflite"`` (the exported artefacts, parity-checked at export);
- :func:`benchmark_backends`: one model under several backends, side by side in one run;
- :func:`benchmark_model` and :func:`msn_table` (the analogue of the MSN paper's Table 1:
  parameters, FLOPs and throughput per fusion and per stream set);
- :func:`end_to_end`: the MSN predict path from a video file (decode → degrade → flow → mask →
  MSN) in frames/s, measured in the same run as decode-only frames/s on that file (the limit)
  and as ``r2plus1d_18`` at 112×112 (the heavy approach the paper compares against).

Like :mod:`lowres_har.data.benchmark`, everything that is compared is measured side by side in
one run: the contenders take turns in alternating rounds so they see the same machine load, with
the same torch/OpenCV thread setting (one thread unless asked otherwise). Report ratios; the
absolute numbers depend on the machine and on whatever else runs on it.
"""

from __future__ import annotations

import contextlib
import os
import platform
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from lowres_har.data.io import VideoDecodeError, read_video
from lowres_har.models.msn import FUSIONS
from lowres_har.registry import create_model, model_card
from lowres_har.transforms import (
    Degrade,
    Normalize,
    ToTensor,
    optical_flow,
    resize_clip,
    slack_mask,
)

__all__ = [
    "BACKENDS",
    "E2E_BACKENDS",
    "E2E_STAGES",
    "MSN_STREAM_SETS",
    "PIPELINE_SPLITS",
    "BatchRunner",
    "EndToEnd",
    "Latency",
    "MSNTable",
    "ModelBenchmark",
    "TableRow",
    "benchmark_backends",
    "benchmark_model",
    "count_flops",
    "count_params",
    "end_to_end",
    "environment",
    "input_shapes",
    "measure_latency",
    "msn_table",
    "num_threads",
    "onnxruntime_backend",
    "tflite_backend",
    "torch_backend",
]

#: Stream sets of :func:`msn_table` (``sum`` fusion), the paper's ablation rows plus all three.
MSN_STREAM_SETS: tuple[tuple[str, ...], ...] = (
    ("rgb",),
    ("rgb", "flow"),
    ("rgb", "mask"),
    ("flow", "mask"),
    ("rgb", "flow", "mask"),
)

#: Stages of the end-to-end predict path, in order (keys of :attr:`EndToEnd.stage_seconds`).
E2E_STAGES: tuple[str, ...] = ("decode", "degrade", "flow", "mask", "normalise", "model")
#: What can run the model of :func:`end_to_end`'s predict path.
E2E_BACKENDS: tuple[str, ...] = ("torch", "onnxruntime")

BatchRunner = Callable[[], object]
"""Runs one forward pass over a fixed batch and returns when its result is ready."""

BackendFactory = Callable[..., BatchRunner]
"""``factory(model, inputs, *, threads, workdir)`` builds a :data:`BatchRunner` from a model and
its input batch (one tensor per input key). ``threads`` is the CPU thread budget the runtime may
use; ``workdir`` an existing folder for exported artefacts that lives as long as the runner."""


def torch_backend(
    model: nn.Module, inputs: Sequence[Tensor], *, threads: int = 1, workdir: Path | None = None
) -> BatchRunner:
    """Eager PyTorch: ``model.eval()``, then each call runs ``model(*inputs)`` under
    ``torch.inference_mode`` on the inputs' device (threads are set by :func:`num_threads`)."""
    del threads, workdir
    model.eval()
    batch = tuple(inputs)

    def run() -> Tensor:
        with torch.inference_mode():
            return model(*batch)

    return run


def _shape_args(inputs: Sequence[Tensor]) -> dict[str, Any]:
    x = inputs[0]
    if x.dim() != 5:
        raise ValueError(f"export backends take clips (B, C, T, H, W), got {tuple(x.shape)}")
    return {"num_frames": int(x.shape[2]), "size": (int(x.shape[3]), int(x.shape[4]))}


def _workdir(workdir: Path | None) -> Path:
    if workdir is None:
        raise ValueError("export backends need a workdir for their artefact")
    return Path(workdir)


def onnxruntime_backend(
    model: nn.Module, inputs: Sequence[Tensor], *, threads: int = 1, workdir: Path | None = None
) -> BatchRunner:
    """ONNX Runtime (CPU provider, ``threads`` intra-op threads) on the model exported by
    :func:`~lowres_har.export.onnx.to_onnx` (dynamic batch; parity is checked at export)."""
    from lowres_har.export.onnx import OnnxRunner, to_onnx

    folder = _workdir(workdir)
    path = folder / f"model_{len(list(folder.iterdir()))}.onnx"
    to_onnx(model, path, **_shape_args(inputs))
    runner = OnnxRunner(path, intra_op_threads=threads)
    arrays = [x.detach().cpu().numpy().astype(np.float32) for x in inputs]
    return lambda: runner(*arrays)


def tflite_backend(
    model: nn.Module, inputs: Sequence[Tensor], *, threads: int = 1, workdir: Path | None = None
) -> BatchRunner:
    """The LiteRT (TFLite) interpreter with ``threads`` threads on a float32 ``.tflite`` from
    :func:`~lowres_har.export.tflite.to_tflite`, converted for this batch size (TFLite files
    have a fixed batch; parity is checked at export)."""
    from lowres_har.export.tflite import TFLiteRunner, to_tflite

    folder = _workdir(workdir)
    path = folder / f"model_{len(list(folder.iterdir()))}.tflite"
    to_tflite(model, path, batch=int(inputs[0].shape[0]), **_shape_args(inputs))
    runner = TFLiteRunner(path, num_threads=threads)
    arrays = [x.detach().cpu().numpy().astype(np.float32) for x in inputs]
    return lambda: runner(*arrays)


#: Backend name → factory (see :data:`BackendFactory`).
BACKENDS: dict[str, BackendFactory] = {
    "torch": torch_backend,
    "onnxruntime": onnxruntime_backend,
    "tflite": tflite_backend,
}


def _backend(name: str) -> BackendFactory:
    if name not in BACKENDS:
        raise ValueError(f"unknown benchmark backend {name!r}; available: {sorted(BACKENDS)}")
    return BACKENDS[name]


def environment() -> dict[str, Any]:
    """Where a benchmark ran: CPU count, processor, torch version and platform."""
    return {
        "cpus": os.cpu_count() or 0,
        "processor": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "platform": platform.platform(terse=True),
    }


@contextlib.contextmanager
def num_threads(threads: int) -> Iterator[None]:
    """Run the block with ``threads`` torch intra-op threads and OpenCV threads; restore after.

    FFmpeg's own decoder threads (PyAV ``thread_type="AUTO"``, as :func:`read_video` uses) are
    not affected.
    """
    if int(threads) < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    prev_torch, prev_cv = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(int(threads))
    cv2.setNumThreads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(prev_torch)
        cv2.setNumThreads(prev_cv)


# --------------------------------------------------------------------------- counting
def count_params(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameter elements of ``model`` (buffers such as BatchNorm statistics excluded)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_flops(model: nn.Module, inputs: Sequence[Tensor]) -> int:
    """FLOPs of one forward pass ``model(*inputs)`` (for the whole batch the inputs hold).

    Counted by ``torch.utils.flop_counter.FlopCounterMode``, which counts one multiply-add as
    2 FLOPs (so a ``Conv3d`` with ``C_in·k³`` weights per output element costs
    ``2 · C_in · k³`` FLOPs per output element, bias excluded) and counts only matrix products
    and convolutions. The model runs once in eval mode without gradients (its training flag is
    restored).

    Args:
        model: any module.
        inputs: the positional inputs, e.g. ``[(B, 3, T, H, W), ...]``.

    Returns:
        Total FLOPs (int); divide by the batch size for FLOPs per clip.
    """
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), counter:
            model(*inputs)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


# --------------------------------------------------------------------------- latency
@dataclass
class Latency:
    """Timing of one batch size.

    Attributes:
        batch: clips per forward pass.
        frames_per_clip: ``T`` of each clip (1 for image models).
        iters: timed forward passes.
        p50_ms: median milliseconds per batch.
        p90_ms: 90th percentile milliseconds per batch.
        mean_ms: mean milliseconds per batch.
        clips_per_s: ``batch / p50`` (the median, robust to hiccups of a shared machine).
        frames_per_s: ``clips_per_s * frames_per_clip``.
    """

    batch: int
    frames_per_clip: int
    iters: int
    p50_ms: float
    p90_ms: float
    mean_ms: float
    clips_per_s: float
    frames_per_s: float

    @classmethod
    def from_seconds(cls, seconds: Sequence[float], batch: int, frames_per_clip: int) -> Latency:
        """Summarise per-batch wall times (seconds) of ``batch`` clips of ``frames_per_clip``."""
        if not seconds:
            raise ValueError("no timings to summarise")
        ms = np.asarray(seconds, dtype=np.float64) * 1000.0
        p50 = float(np.percentile(ms, 50))
        clips = batch / (p50 / 1000.0)
        return cls(
            batch=int(batch),
            frames_per_clip=int(frames_per_clip),
            iters=len(ms),
            p50_ms=p50,
            p90_ms=float(np.percentile(ms, 90)),
            mean_ms=float(ms.mean()),
            clips_per_s=clips,
            frames_per_s=clips * frames_per_clip,
        )


def _check_counts(warmup: int, iters: int, rounds: int) -> None:
    if warmup < 0 or iters < 1 or rounds < 1:
        raise ValueError(
            f"need warmup >= 0, iters >= 1 and rounds >= 1, got {warmup}, {iters}, {rounds}"
        )


def _sample(
    runners: Sequence[BatchRunner], *, warmup: int, iters: int, rounds: int
) -> list[list[float]]:
    """Seconds of each call of each runner: ``warmup`` untimed calls each, then ``iters`` timed
    calls each, split into ``rounds`` blocks taken in turn (runner 0, 1, ..., 0, 1, ...) so
    that all runners see the same machine load."""
    _check_counts(warmup, iters, rounds)
    for run in runners:
        for _ in range(warmup):
            run()
    rounds = min(rounds, iters)
    times: list[list[float]] = [[] for _ in runners]
    for r in range(rounds):
        n = iters * (r + 1) // rounds - iters * r // rounds
        for k, run in enumerate(runners):
            for _ in range(n):
                start = time.perf_counter()
                run()
                times[k].append(time.perf_counter() - start)
    return times


def _frames_of(x: Tensor) -> int:
    return int(x.shape[2]) if x.dim() == 5 else 1


def measure_latency(
    model: nn.Module,
    inputs: Sequence[Tensor],
    *,
    warmup: int = 2,
    iters: int = 10,
    threads: int = 1,
    backend: str = "torch",
    frames_per_clip: int | None = None,
) -> Latency:
    """Time ``model(*inputs)`` on one fixed batch.

    Args:
        model: the network (put in eval mode by the backend).
        inputs: one tensor per input key, batch first: ``(B, C, T, H, W)`` clips (or
            ``(B, C, H, W)`` images).
        warmup: untimed passes first (allocations, kernel selection).
        iters: timed passes.
        threads: torch and OpenCV threads during the measurement.
        backend: a key of :data:`BACKENDS`.
        frames_per_clip: ``T`` for frames/s (default: ``inputs[0].shape[2]`` for 5-D inputs,
            else 1).

    Returns:
        :class:`Latency`: p50/p90/mean ms per batch, clips/s and frames/s (from the median).
    """
    if not inputs:
        raise ValueError("measure_latency needs at least one input tensor")
    with tempfile.TemporaryDirectory(prefix="lowres_har_bench_") as tmp, num_threads(threads):
        run = _backend(backend)(model, inputs, threads=threads, workdir=Path(tmp))
        (seconds,) = _sample([run], warmup=warmup, iters=iters, rounds=1)
    frames = _frames_of(inputs[0]) if frames_per_clip is None else int(frames_per_clip)
    return Latency.from_seconds(seconds, int(inputs[0].shape[0]), frames)


# --------------------------------------------------------------------------- model benchmarks
def input_shapes(
    name: str, model: nn.Module, model_kwargs: Mapping[str, Any] | None = None
) -> dict[str, tuple[int, ...]]:
    """Per-clip input shapes ``{key: (C, T, H, W)}`` (``(C, H, W)`` for image inputs) of a
    registered model, in ``model.input_keys`` order.

    Taken from the model card's :class:`~lowres_har.registry.InputSpec`, with ``num_frames`` and
    ``input_size`` ``(H, W)`` from ``model_kwargs`` overriding ``T`` and ``(H, W)`` (the MSN
    arguments).
    """
    kwargs = dict(model_kwargs or {})
    card = model_card(name)
    keys = tuple(getattr(model, "input_keys", card.input_keys))
    out: dict[str, tuple[int, ...]] = {}
    for key in keys:
        spec = card.inputs.get(key)
        if spec is None:
            raise ValueError(
                f"model {name!r} takes input {key!r}, which its model card does not describe "
                f"(card inputs: {list(card.inputs)})"
            )
        frames = kwargs.get("num_frames", spec.frames)
        size = tuple(int(s) for s in kwargs.get("input_size", spec.size))
        if len(size) != 2:
            raise ValueError(f"input_size must be (H, W), got {kwargs.get('input_size')!r}")
        out[key] = (spec.channels, *(() if frames is None else (int(frames),)), *size)
    return out


def _random_inputs(shapes: Mapping[str, Sequence[int]], batch: int, seed: int) -> list[Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn((batch, *shape), generator=gen) for shape in shapes.values()]


@dataclass
class ModelBenchmark:
    """Size, cost and speed of one model configuration (JSON-able: :meth:`as_dict`).

    Attributes:
        model: registry name.
        model_kwargs: architecture options passed to ``create_model``.
        backend: the :data:`BACKENDS` key that ran it.
        threads: torch/OpenCV threads.
        input_shapes: per input key, the per-clip shape ``[C, T, H, W]``.
        frames_per_clip: ``T``.
        params: parameter count.
        flops_per_clip: FLOPs of one clip (2 per multiply-add, see :func:`count_flops`).
        latency: one :class:`Latency` per batch size.
        environment: :func:`environment` of the run.
    """

    model: str
    model_kwargs: dict[str, Any]
    backend: str
    threads: int
    input_shapes: dict[str, list[int]]
    frames_per_clip: int
    params: int
    flops_per_clip: int
    latency: list[Latency]
    environment: dict[str, Any] = field(default_factory=dict)

    @property
    def gflops_per_clip(self) -> float:
        """``flops_per_clip / 1e9``."""
        return self.flops_per_clip / 1e9

    def at_batch(self, batch: int) -> Latency:
        """The :class:`Latency` measured at ``batch``."""
        for lat in self.latency:
            if lat.batch == batch:
                return lat
        raise KeyError(f"batch {batch} not measured (have {[x.batch for x in self.latency]})")

    def as_dict(self) -> dict[str, Any]:
        """JSON-able dict (lists and plain numbers)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelBenchmark:
        """Inverse of :meth:`as_dict`."""
        d = dict(data)
        d["latency"] = [Latency(**x) for x in d["latency"]]
        return cls(**d)


def _build(
    name: str, kwargs: Mapping[str, Any], num_classes: int | None
) -> tuple[nn.Module, dict[str, tuple[int, ...]]]:
    model = create_model(name, num_classes=num_classes, **dict(kwargs)).eval()
    return model, input_shapes(name, model, kwargs)


def _measure_configs(
    configs: Sequence[tuple[str, Mapping[str, Any]]],
    batch_sizes: Sequence[int],
    *,
    warmup: int,
    iters: int,
    rounds: int,
    threads: int,
    backend: str | Sequence[str],
    num_classes: int | None,
    seed: int,
) -> list[ModelBenchmark]:
    """Measure several configurations side by side (interleaved rounds, per batch size).

    ``backend`` is one backend for all configurations or one per configuration; equal
    ``(name, kwargs)`` configurations share one model (the same weights under every backend).
    """
    if not configs:
        raise ValueError("nothing to benchmark")
    backends = [backend] * len(configs) if isinstance(backend, str) else list(backend)
    if len(backends) != len(configs):
        raise ValueError(f"{len(backends)} backends for {len(configs)} configurations")
    factories = [_backend(b) for b in backends]
    sizes = [int(b) for b in batch_sizes]
    if not sizes or min(sizes) < 1:
        raise ValueError(f"batch_sizes must be positive ints, got {list(batch_sizes)}")
    _check_counts(warmup, iters, rounds)
    env = environment()
    results: list[ModelBenchmark] = []
    with num_threads(threads), tempfile.TemporaryDirectory(prefix="lowres_har_bench_") as tmp:
        shared: dict[str, tuple[nn.Module, dict[str, tuple[int, ...]]]] = {}
        built = []
        for name, kwargs in configs:
            key = f"{name} {sorted(dict(kwargs).items())!r}"
            if key not in shared:
                shared[key] = _build(name, kwargs, num_classes)
            built.append(shared[key])
        timings: list[list[Latency]] = [[] for _ in configs]
        for batch in sizes:
            batches = [_random_inputs(shapes, batch, seed) for _, shapes in built]
            runners = []
            for k, ((model, _), x, factory) in enumerate(
                zip(built, batches, factories, strict=True)
            ):
                work = Path(tmp) / f"{k}_b{batch}"
                work.mkdir()
                runners.append(factory(model, x, threads=threads, workdir=work))
            seconds = _sample(runners, warmup=warmup, iters=iters, rounds=rounds)
            for k, (s, (_, shapes)) in enumerate(zip(seconds, built, strict=True)):
                first = next(iter(shapes.values()))
                frames = first[1] if len(first) == 4 else 1
                timings[k].append(Latency.from_seconds(s, batch, frames))
            del batches, runners
        for (name, kwargs), (model, shapes), lat, bk in zip(
            configs, built, timings, backends, strict=True
        ):
            one = _random_inputs(shapes, 1, seed)
            first = next(iter(shapes.values()))
            results.append(
                ModelBenchmark(
                    model=name,
                    model_kwargs=dict(kwargs),
                    backend=bk,
                    threads=int(threads),
                    input_shapes={k: list(v) for k, v in shapes.items()},
                    frames_per_clip=first[1] if len(first) == 4 else 1,
                    params=count_params(model),
                    flops_per_clip=count_flops(model, one),
                    latency=lat,
                    environment=env,
                )
            )
    return results


def benchmark_backends(
    name: str,
    model_kwargs: Mapping[str, Any] | None = None,
    backends: Sequence[str] = ("torch", "onnxruntime", "tflite"),
    batch_sizes: Sequence[int] = (1, 8),
    *,
    warmup: int = 2,
    iters: int = 10,
    rounds: int = 2,
    threads: int = 1,
    num_classes: int | None = None,
    seed: int = 0,
) -> list[ModelBenchmark]:
    """One registered model under several backends, measured side by side in one run.

    The same network (same weights) is exported once per backend (ONNX: one file with a dynamic
    batch; TFLite: one file per batch size) with the exporters' parity checks; then, per batch
    size, the backends take turns in ``rounds`` blocks on the same random inputs with the same
    thread budget. Compare the rows with each other, not with other runs.

    Args:
        name: a registered model.
        model_kwargs: architecture options for ``create_model``.
        backends: keys of :data:`BACKENDS`, in table order.
        batch_sizes: clips per forward pass.
        warmup: untimed passes per backend and batch size.
        iters: timed passes per backend and batch size.
        rounds: blocks the timed passes are split into.
        threads: CPU threads for every runtime (torch, onnxruntime intra-op, LiteRT).
        num_classes: classifier size (default: the model card's).
        seed: seed of the random inputs.

    Returns:
        One :class:`ModelBenchmark` per backend, in ``backends`` order.
    """
    names = list(dict.fromkeys(backends))
    if not names:
        raise ValueError("no backends to benchmark")
    for b in names:
        _backend(b)
    kwargs = dict(model_kwargs or {})
    return _measure_configs(
        [(name, kwargs)] * len(names),
        batch_sizes,
        warmup=warmup,
        iters=iters,
        rounds=rounds,
        threads=threads,
        backend=names,
        num_classes=num_classes,
        seed=seed,
    )


def benchmark_model(
    name: str,
    model_kwargs: Mapping[str, Any] | None = None,
    batch_sizes: Sequence[int] = (1, 32),
    *,
    warmup: int = 2,
    iters: int = 10,
    rounds: int = 2,
    threads: int = 1,
    backend: str = "torch",
    num_classes: int | None = None,
    seed: int = 0,
) -> ModelBenchmark:
    """Parameters, FLOPs per clip and throughput at each batch size of one registered model.

    Inputs are random normal tensors of the shapes :func:`input_shapes` gives (the model card's,
    with ``num_frames`` / ``input_size`` from ``model_kwargs``).

    Args:
        name: a registered model (``lowres_har.list_models()``).
        model_kwargs: architecture options for ``create_model``.
        batch_sizes: clips per forward pass to time.
        warmup: untimed passes per batch size.
        iters: timed passes per batch size.
        rounds: blocks the timed passes are split into (several configurations take turns).
        threads: torch/OpenCV threads.
        backend: a key of :data:`BACKENDS`.
        num_classes: classifier size (default: the model card's).
        seed: seed of the random inputs.
    """
    (result,) = _measure_configs(
        [(name, dict(model_kwargs or {}))],
        batch_sizes,
        warmup=warmup,
        iters=iters,
        rounds=rounds,
        threads=threads,
        backend=backend,
        num_classes=num_classes,
        seed=seed,
    )
    return result


@dataclass
class TableRow:
    """One row of :class:`MSNTable`: ``group`` is ``"fusion"`` (all three streams, one row per
    fusion) or ``"streams"`` (``sum`` fusion, one row per stream set); ``label`` names the
    fusion or the streams (``"rgb+flow"``)."""

    group: str
    label: str
    result: ModelBenchmark


@dataclass
class MSNTable:
    """Parameters, FLOPs and throughput of MSN per fusion and per stream set (Table 1 analogue).

    The configuration with all three streams and ``sum`` fusion appears in both groups (measured
    once).
    """

    rows: list[TableRow]

    def group(self, name: str) -> list[TableRow]:
        """The rows of one group (``"fusion"`` or ``"streams"``)."""
        return [r for r in self.rows if r.group == name]

    def as_dict(self) -> dict[str, Any]:
        """JSON-able dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MSNTable:
        """Inverse of :meth:`as_dict`."""
        return cls(
            rows=[
                TableRow(r["group"], r["label"], ModelBenchmark.from_dict(r["result"]))
                for r in data["rows"]
            ]
        )


def msn_table(
    *,
    batch_sizes: Sequence[int] = (1, 32),
    warmup: int = 1,
    iters: int = 5,
    rounds: int = 5,
    threads: int = 1,
    base_kwargs: Mapping[str, Any] | None = None,
    fusions: Sequence[str] = FUSIONS,
    stream_sets: Sequence[Sequence[str]] = MSN_STREAM_SETS,
    num_classes: int | None = None,
    seed: int = 0,
) -> MSNTable:
    """MSN parameters, FLOPs and throughput for each fusion (three streams) and each stream set
    (``sum`` fusion), all measured side by side in one run.

    The default input is the paper's: 32 frames of 32×32 per stream, 51 classes.

    Args:
        batch_sizes: clips per forward pass to time.
        warmup: untimed passes per configuration and batch size.
        iters: timed passes per configuration and batch size.
        rounds: the configurations take turns in this many blocks.
        threads: torch threads.
        base_kwargs: MSN options applied to every configuration (e.g. ``{"kernel_size": 3}``,
            or a small ``num_frames``/``input_size`` for a quick look).
        fusions: the fusion rows.
        stream_sets: the stream-set rows.
        num_classes: classifier size (default 51).
        seed: seed of the random inputs.
    """
    base = dict(base_kwargs or {})
    for key in ("fusion", "streams"):
        if key in base:
            raise ValueError(f"base_kwargs must not set {key!r}: the table varies it")
    plan: list[tuple[str, str, dict[str, Any]]] = []
    for fusion in fusions:
        plan.append(("fusion", fusion, {**base, "fusion": fusion}))
    for streams in stream_sets:
        plan.append(
            ("streams", "+".join(streams), {**base, "fusion": "sum", "streams": list(streams)})
        )

    def ident(kwargs: Mapping[str, Any]) -> str:
        streams = kwargs.get("streams", ("rgb", "flow", "mask"))
        canon = {**kwargs, "streams": sorted(streams)}
        return repr(sorted(canon.items()))

    unique: dict[str, dict[str, Any]] = {}
    for _, _, kwargs in plan:
        unique.setdefault(ident(kwargs), kwargs)
    measured = _measure_configs(
        [("msn", kw) for kw in unique.values()],
        batch_sizes,
        warmup=warmup,
        iters=iters,
        rounds=rounds,
        threads=threads,
        backend="torch",
        num_classes=num_classes,
        seed=seed,
    )
    by_key = dict(zip(unique, measured, strict=True))
    return MSNTable(rows=[TableRow(g, label, by_key[ident(kw)]) for g, label, kw in plan])


# --------------------------------------------------------------------------- end to end
@dataclass
class EndToEnd:
    """Result of :func:`end_to_end` (rates in frames per second of video; JSON-able).

    Attributes:
        video: the file.
        video_frames: frames in the file (decoded).
        height: frame height in pixels.
        width: frame width in pixels.
        model: the predict path's model and ``model_kwargs`` its options.
        model_kwargs: see ``model``.
        flow_method: optical flow estimator.
        pipeline: decoding ran in a background thread, overlapped with the rest.
        split: with ``pipeline``, the last stage the background thread ran (``""`` without).
        threads: torch/OpenCV threads of every path.
        decoder_threads: FFmpeg threads of the background decoder (pipeline and (a')).
        batch: windows per forward pass.
        window: frames per model clip (non-overlapping windows).
        frames_classified: frames inside complete windows per pass (a shorter tail is dropped and
            not counted, so ``predict_fps`` is conservative).
        rounds: timed passes of each path (taken in turn).
        decode_fps: (a) ``read_video`` of every frame, frames decoded per second.
        stream_decode_fps: (a') the same file through the background decoder the pipeline
            uses, decode only (it skips ``read_video``'s timestamp bookkeeping, so it can be
            faster: the pipeline's own limit).
        predict_fps: (b) the predict path, frames classified per second of wall time.
        reference: (c) the reference model (``None``: not measured).
        reference_kwargs: its options.
        reference_size: its input ``(H, W)``.
        reference_window: its clip length.
        reference_frames: frames it classified per pass.
        reference_fps: (c) frames classified per second.
        stage_seconds: seconds per pass of each stage of (b) (:data:`E2E_STAGES`). With
            ``pipeline`` the decode stage overlaps the others, so they add up to more than the
            wall time.
        stage_share: each stage's share of the summed stage time of (b).
        wall_seconds: seconds per pass of (b).
        predict_over_decode: ``predict_fps / decode_fps``, the issue's ratio.
        predict_over_stream_decode: ``predict_fps / stream_decode_fps``.
        predict_over_reference: ``predict_fps / reference_fps`` (``None`` without reference).
        params: parameters of the predict model.
        gflops_per_window: its GFLOPs per window (2 per multiply-add).
        reference_gflops_per_window: the reference's GFLOPs per window.
        round_seconds: per path (``decode``, ``stream_decode``, ``predict``, ``reference``),
            the seconds of each timed pass, to show the spread.
        environment: :func:`environment` of the run.
        backend: what ran the predict path's model: ``"torch"`` (eager) or ``"onnxruntime"``.
    """

    video: str
    video_frames: int
    height: int
    width: int
    model: str
    model_kwargs: dict[str, Any]
    flow_method: str
    pipeline: bool
    split: str
    threads: int
    decoder_threads: int
    batch: int
    window: int
    frames_classified: int
    rounds: int
    decode_fps: float
    stream_decode_fps: float
    predict_fps: float
    reference: str | None
    reference_kwargs: dict[str, Any]
    reference_size: list[int]
    reference_window: int
    reference_frames: int
    reference_fps: float | None
    stage_seconds: dict[str, float]
    stage_share: dict[str, float]
    wall_seconds: float
    predict_over_decode: float
    predict_over_stream_decode: float
    predict_over_reference: float | None
    params: int
    gflops_per_window: float
    reference_gflops_per_window: float | None
    round_seconds: dict[str, list[float]]
    environment: dict[str, Any] = field(default_factory=dict)
    backend: str = "torch"

    @property
    def ratio(self) -> float:
        """The stricter of ``predict_over_decode`` and ``predict_over_stream_decode``: the
        predict rate over the faster of the two decode-only rates."""
        return min(self.predict_over_decode, self.predict_over_stream_decode)

    def meets(self, target: float = 0.5) -> bool:
        """``ratio >= target`` (the issue's acceptance: 50 % of decode-only throughput)."""
        return self.ratio >= target

    def as_dict(self) -> dict[str, Any]:
        """JSON-able dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EndToEnd:
        """Inverse of :meth:`as_dict`."""
        return cls(**dict(data))


def _windows(n: int, window: int) -> int:
    return n // window


class _WindowDecoder(threading.Thread):
    """Background decoder: puts windows of ``path`` on a bounded queue as they are decoded, then
    ``None``; a frame tail shorter than ``window`` is dropped.

    Each window is the uint8 RGB ``(window, H, W, 3)`` of ``window`` consecutive frames, passed
    through ``transform`` (in this thread) when one is given. The decoding work is
    :func:`~lowres_har.data.io.read_video`'s (PyAV decoding of the first video stream, RGB24
    conversion with one swscale thread, display rotation applied) without its timestamp
    bookkeeping, with ``codec_threads`` FFmpeg decoder threads (1: none, the default; 0: FFmpeg
    picks, as ``read_video`` does). ``seconds`` is the time spent decoding, not in ``transform``
    nor waiting for room on the queue. PyAV, OpenCV and torch release the GIL, so the consumer
    runs while this thread works.
    """

    def __init__(
        self,
        path: Path,
        window: int,
        transform: Callable[[np.ndarray], Any] | None = None,
        codec_threads: int = 1,
        maxsize: int = 4,
    ) -> None:
        super().__init__(daemon=True, name="lowres-har-decode")
        self.path = path
        self.window = window
        self.transform = transform
        self.codec_threads = codec_threads
        self.queue: queue.Queue[Any] = queue.Queue(maxsize)
        self.seconds = 0.0
        self.frames = 0
        self.error: BaseException | None = None
        self.stopped = threading.Event()

    def _put(self, item: Any) -> None:
        while not self.stopped.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _decode(self) -> None:
        start = time.perf_counter()
        try:
            container = av.open(str(self.path))
        except (av.FFmpegError, OSError) as err:
            raise VideoDecodeError(f"{self.path}: cannot open container ({err})") from err
        try:
            if not container.streams.video:
                raise VideoDecodeError(f"{self.path}: no video stream")
            stream = container.streams.video[0]
            if self.codec_threads == 1:
                stream.thread_type = "NONE"
            else:
                stream.thread_type = "AUTO"
                stream.thread_count = self.codec_threads  # 0: FFmpeg picks
            buf: list[np.ndarray] = []
            for frame in container.decode(stream):
                img = frame.to_ndarray(format="rgb24", threads=1)
                k = round(frame.rotation / 90) % 4
                buf.append(np.rot90(img, k) if k else img)
                self.frames += 1
                if len(buf) < self.window:
                    continue
                clip = np.stack(buf)
                buf = []
                self.seconds += time.perf_counter() - start
                self._put(clip if self.transform is None else self.transform(clip))
                if self.stopped.is_set():
                    return
                start = time.perf_counter()
        except av.FFmpegError as err:
            raise VideoDecodeError(
                f"{self.path}: decoding failed after {self.frames} frames ({err})"
            ) from err
        finally:
            container.close()
        self.seconds += time.perf_counter() - start

    def run(self) -> None:
        try:
            self._decode()
        except BaseException as err:  # handed to the consumer, re-raised there
            self.error = err
        finally:
            self._put(None)

    def __iter__(self) -> Iterator[Any]:
        """Start the thread and yield its windows; re-raise its error at the end."""
        self.start()
        try:
            while True:
                clip = self.queue.get()
                if clip is None:
                    break
                yield clip
        finally:
            self.stopped.set()
            self.join()
        if self.error is not None:
            raise self.error


#: Values of :func:`end_to_end`'s ``split``: the last stage the background thread runs.
PIPELINE_SPLITS: tuple[str, ...] = ("decode", "degrade", "features")


@dataclass
class _Window:
    """One window after the per-window preprocessing: ``up`` uint8 ``(T, H, W, 3)`` (eLR
    upsampled to the input size), ``flow`` float32 ``(T, H, W, 2)``, ``mask`` float32
    ``(T, H, W)`` (``None`` when the model does not take that stream)."""

    up: np.ndarray
    flow: np.ndarray | None
    mask: np.ndarray | None


class _Predictor:
    """The MSN predict path after decoding, per window: :meth:`degrade` (degrade → upsample),
    :meth:`features` (flow, mask), :meth:`add` (normalise; the model runs on batches of
    ``batch`` windows). Every stage adds its time to ``seconds`` (keys :data:`E2E_STAGES`);
    with a pipeline the stages run in two threads, each stage in one of them."""

    def __init__(
        self,
        model: Callable[..., Tensor],
        keys: Sequence[str],
        elr_size: tuple[int, int],
        input_size: tuple[int, int],
        flow_method: str,
        batch: int,
    ) -> None:
        unknown = [k for k in keys if k not in ("video", "flow", "mask")]
        if unknown:
            raise ValueError(
                f"the predict path builds video/flow/mask inputs; the model also takes {unknown}"
            )
        self.model = model
        self.keys = tuple(keys)
        self.degrader = Degrade(elr_size)
        self.input_size = input_size
        self.flow_method = flow_method
        self.batch = batch
        self.to_tensor = ToTensor()
        self.normalize = Normalize()
        self.seconds = dict.fromkeys(E2E_STAGES, 0.0)
        self.pending: list[list[Tensor]] = []
        self.logits: list[Tensor] = []

    def degrade(self, clip: np.ndarray) -> np.ndarray:
        """uint8 ``(T, H, W, 3)`` → the eLR clip upsampled to the input size, uint8
        ``(T, *input_size, 3)``."""
        start = time.perf_counter()
        out = resize_clip(self.degrader(clip), self.input_size, "bilinear")
        self.seconds["degrade"] += time.perf_counter() - start
        return out

    def features(self, up: np.ndarray) -> _Window:
        """Optical flow and slack mask of an upsampled window (only the streams the model
        takes)."""
        flow = mask = None
        if "flow" in self.keys:
            start = time.perf_counter()
            flow = optical_flow(up, self.flow_method)
            self.seconds["flow"] += time.perf_counter() - start
        if "mask" in self.keys:
            start = time.perf_counter()
            mask = slack_mask(up)
            self.seconds["mask"] += time.perf_counter() - start
        return _Window(up, flow, mask)

    def add(self, item: _Window) -> None:
        """Normalise one window and queue it for the model; runs the model once ``batch``
        windows are pending."""
        start = time.perf_counter()
        tensors: dict[str, Tensor] = {}
        if "video" in self.keys:
            tensors["video"] = self.normalize(self.to_tensor(item.up))  # (3, T, H, W)
        if item.flow is not None:
            tensors["flow"] = torch.from_numpy(item.flow).permute(3, 0, 1, 2)  # (2, T, H, W)
        if item.mask is not None:
            tensors["mask"] = torch.from_numpy(item.mask).unsqueeze(0)  # (1, T, H, W)
        self.pending.append([tensors[k] for k in self.keys])
        self.seconds["normalise"] += time.perf_counter() - start
        if len(self.pending) >= self.batch:
            self.flush()

    def flush(self) -> None:
        """Run the model on the windows still pending."""
        if not self.pending:
            return
        start = time.perf_counter()
        inputs = [torch.stack([w[i] for w in self.pending]) for i in range(len(self.keys))]
        with torch.inference_mode():
            self.logits.append(self.model(*inputs))
        self.pending = []
        self.seconds["model"] += time.perf_counter() - start


def _onnxruntime_model(
    net: nn.Module, shapes: Mapping[str, Sequence[int]], threads: int
) -> Callable[..., Tensor]:
    """``net`` exported by :func:`~lowres_har.export.onnx.to_onnx` (dynamic batch, parity
    checked at export) and wrapped as ``f(*clips) -> logits`` on an onnxruntime CPU session with
    ``threads`` intra-op threads. The session holds the graph in memory, so the file is removed."""
    from lowres_har.export.onnx import OnnxRunner, to_onnx

    first = next(iter(shapes.values()))
    with tempfile.TemporaryDirectory(prefix="lowres_har_e2e_") as tmp:
        path = Path(tmp) / "model.onnx"
        to_onnx(net, path, num_frames=int(first[1]), size=(int(first[2]), int(first[3])))
        runner = OnnxRunner(path, intra_op_threads=threads)

    def run(*clips: Tensor) -> Tensor:
        return torch.from_numpy(runner(*clips))

    return run


def _predict_pass(
    path: Path,
    model: Callable[..., Tensor],
    keys: Sequence[str],
    *,
    window: int,
    elr_size: tuple[int, int],
    input_size: tuple[int, int],
    flow_method: str,
    batch: int,
    pipeline: bool,
    split: str = "decode",
    decoder_threads: int = 1,
) -> tuple[float, dict[str, float], Tensor]:
    """One pass of the predict path over ``path``: ``(wall seconds, stage seconds, logits
    (windows, num_classes))``.

    With ``pipeline`` a background thread decodes and runs the stages up to ``split``
    (``"decode"``, ``"degrade"``: decode and degrade, the stages that touch full-resolution
    frames; ``"features"``: also flow and mask) while this thread runs the rest on the windows
    it hands over. Without it, :func:`read_video` decodes the whole file first and everything
    runs in this thread. All give the same logits.
    """
    if split not in PIPELINE_SPLITS:
        raise ValueError(f"split must be one of {PIPELINE_SPLITS}, got {split!r}")
    pred = _Predictor(model, keys, elr_size, input_size, flow_method, batch)
    start = time.perf_counter()
    if pipeline:

        def full(clip: np.ndarray) -> _Window:
            return pred.features(pred.degrade(clip))

        producer: dict[str, Callable[[np.ndarray], Any] | None] = {
            "decode": None,
            "degrade": pred.degrade,
            "features": full,
        }
        consumer: dict[str, Callable[[Any], _Window]] = {
            "decode": full,
            "degrade": pred.features,
            "features": lambda item: item,
        }
        decoder = _WindowDecoder(
            path, window, transform=producer[split], codec_threads=decoder_threads
        )
        for item in decoder:
            pred.add(consumer[split](item))
        pred.seconds["decode"] = decoder.seconds
    else:
        frames, _ = read_video(path)
        pred.seconds["decode"] = time.perf_counter() - start
        for i in range(_windows(len(frames), window)):
            pred.add(pred.features(pred.degrade(frames[i * window : (i + 1) * window])))
    pred.flush()
    wall = time.perf_counter() - start
    if not pred.logits:
        raise ValueError(f"{path}: shorter than one {window}-frame window")
    return wall, pred.seconds, torch.cat(pred.logits)


def _stream_decode_pass(path: Path, window: int, decoder_threads: int) -> tuple[float, int]:
    """Decode-only through the pipeline's background decoder: ``(seconds, frames decoded)``."""
    start = time.perf_counter()
    decoder = _WindowDecoder(path, window, codec_threads=decoder_threads)
    for _ in decoder:
        pass
    return time.perf_counter() - start, decoder.frames


def _reference_pass(
    path: Path,
    model: nn.Module,
    *,
    size: tuple[int, int],
    window: int,
    batch: int,
    max_frames: int | None,
) -> tuple[float, int, Tensor]:
    """decode → resize to ``size`` → normalise → ``model`` over ``window``-frame windows:
    ``(seconds, frames classified, logits)``."""
    to_tensor, normalize = ToTensor(), Normalize()
    start = time.perf_counter()
    frames, _ = read_video(path, num_frames=max_frames)
    n = _windows(len(frames), window)
    if n == 0:
        raise ValueError(f"{path}: shorter than one {window}-frame reference window")
    clips = resize_clip(frames[: n * window], size, "bilinear")
    x = normalize(to_tensor(clips))  # (3, n * window, H, W)
    x = x.reshape(3, n, window, *size).permute(1, 0, 2, 3, 4)
    logits = []
    with torch.inference_mode():
        for i in range(0, n, batch):
            logits.append(model(x[i : i + batch].contiguous()))
    return time.perf_counter() - start, n * window, torch.cat(logits)


def _check_finite(logits: Tensor, what: str) -> None:
    if not torch.isfinite(logits).all():
        raise RuntimeError(f"{what} produced non-finite logits")


def end_to_end(
    video_path: str | Path,
    *,
    model: str = "msn",
    model_kwargs: Mapping[str, Any] | None = None,
    flow_method: str = "tvl1",
    elr_size: Sequence[int] = (12, 16),
    batch: int = 8,
    pipeline: bool = True,
    split: str = "decode",
    threads: int = 1,
    decoder_threads: int = 1,
    rounds: int = 3,
    reference: str | None = "r2plus1d_18",
    reference_kwargs: Mapping[str, Any] | None = None,
    reference_size: Sequence[int] = (112, 112),
    reference_window: int = 16,
    reference_frames: int | None = None,
    num_classes: int | None = None,
    backend: str = "torch",
) -> EndToEnd:
    """Frames/s of the MSN predict path on a video file, side by side with its limits.

    In one run, on the same file, with the same torch/OpenCV ``threads``, three paths take turns
    for ``rounds`` rounds after one untimed warm-up pass each:

    (a) decode only: :func:`~lowres_har.data.io.read_video` of every frame (uint8 RGB), and
        (a') the same through the pipeline's background decoder (same PyAV decoding and RGB
        conversion, without ``read_video``'s timestamp bookkeeping; ``decoder_threads``);
    (b) the predict path: decode → :class:`~lowres_har.transforms.Degrade` to ``elr_size``
        (centre crop to its aspect, area averaging) → bilinear upsampling to the model's input
        size (32×32 for MSN) → :func:`~lowres_har.transforms.optical_flow` (``flow_method``) and
        :func:`~lowres_har.transforms.slack_mask` per window (only the streams the model takes)
        → normalisation (Kinetics mean/std for RGB; flow and mask are already in [-1, 1]) →
        the model over non-overlapping windows of ``T`` frames (the model's clip length:
        ``num_frames``, 32 for MSN), ``batch`` windows per forward pass. With ``pipeline``
        decoding runs in a background thread and each window is processed as soon as it is
        decoded; without it the whole file is decoded first (``read_video``);
    (c) the reference: decode (the first ``reference_frames``, default all) → resize to
        ``reference_size`` → normalise → ``reference`` (default ``r2plus1d_18``) over
        ``reference_window``-frame windows, ``batch`` per pass.

    Frames in a tail shorter than one window are decoded but not counted. The acceptance
    ratio :attr:`EndToEnd.ratio` divides (b) by the faster of (a) and (a').

    Args:
        video_path: the video file.
        model: registered model of the predict path (its inputs must be among video, flow,
            mask).
        model_kwargs: its options (e.g. ``{"kernel_size": 3, "widths": [16, 32, 64]}``).
        flow_method: ``"tvl1"`` (the paper's), ``"farneback"`` or ``"dis"``.
        elr_size: ``(H, W)`` the camera records (12×16, the paper's "16×12").
        batch: windows per forward pass (both models).
        pipeline: overlap decoding with the rest in a background thread.
        split: with ``pipeline``, the last stage the background thread runs: ``"decode"``
            (default: it only decodes, so its load is exactly the decode-only path's),
            ``"degrade"`` (also the degradation, the other stage on full-resolution frames) or
            ``"features"`` (also flow and mask); this thread runs the rest.
        threads: torch and OpenCV threads (``read_video`` lets FFmpeg pick its own decoder
            threads).
        decoder_threads: FFmpeg threads of the background decoder (``pipeline`` and the
            decode-only pass through it): 1 (default) keeps decoding on one core, next to the
            ``threads`` of the rest; 0 lets FFmpeg pick.
        rounds: timed passes of each path.
        reference: registered model of path (c), or ``None`` to skip it.
        reference_kwargs: its options.
        reference_size: its input ``(H, W)``.
        reference_window: its clip length in frames.
        reference_frames: decode and classify only this many first frames in (c) (``None``:
            all; the reference is model-bound, so a prefix gives the same frames/s sooner).
        num_classes: classifier size of both models (default: their cards').
        backend: what runs the predict path's model: ``"torch"`` (eager, the default) or
            ``"onnxruntime"`` (the model exported by :func:`~lowres_har.export.onnx.to_onnx`,
            ``threads`` intra-op threads; 2–3× faster than eager torch for small MSNs at batch
            1–8 on CPU). The reference always runs in eager torch.

    Returns:
        :class:`EndToEnd` with the three rates, the ratios (b)/(a) and (b)/(c) and the share of
        each stage of (b).

    Raises:
        VideoDecodeError: the file cannot be decoded.
        ValueError: the file is shorter than one window, or an invalid setting.
    """
    path = Path(video_path)
    kwargs = dict(model_kwargs or {})
    ref_kwargs = dict(reference_kwargs or {})
    if backend not in E2E_BACKENDS:
        raise ValueError(f"backend must be one of {E2E_BACKENDS}, got {backend!r}")
    if batch < 1 or rounds < 1 or reference_window < 1:
        raise ValueError(
            f"batch, rounds and reference_window must be >= 1, got {batch}, {rounds}, "
            f"{reference_window}"
        )
    elr = (int(elr_size[0]), int(elr_size[1]))
    ref_size = (int(reference_size[0]), int(reference_size[1]))
    with num_threads(threads):
        net, shapes = _build(model, kwargs, num_classes)
        first = next(iter(shapes.values()))
        if len(first) != 4:
            raise ValueError(f"end_to_end needs a clip model, {model!r} takes {shapes}")
        run_net: Callable[..., Tensor] = net
        if backend == "onnxruntime":
            run_net = _onnxruntime_model(net, shapes, threads)
        window, input_size = first[1], (first[2], first[3])
        keys = tuple(shapes)
        ref_net = None
        if reference is not None:
            ref_net = create_model(reference, num_classes=num_classes, **ref_kwargs).eval()

        def decode() -> tuple[float, np.ndarray]:
            start = time.perf_counter()
            frames, _ = read_video(path)
            return time.perf_counter() - start, frames

        def predict() -> tuple[float, dict[str, float], Tensor]:
            return _predict_pass(
                path,
                run_net,
                keys,
                window=window,
                elr_size=elr,
                input_size=input_size,
                flow_method=flow_method,
                batch=batch,
                pipeline=pipeline,
                split=split,
                decoder_threads=decoder_threads,
            )

        def refer() -> tuple[float, int, Tensor]:
            assert ref_net is not None
            return _reference_pass(
                path,
                ref_net,
                size=ref_size,
                window=reference_window,
                batch=batch,
                max_frames=reference_frames,
            )

        # warm-up pass of each path: validates the file, selects kernels, checks the outputs
        _, frames = decode()
        n_frames, height, width = len(frames), int(frames.shape[1]), int(frames.shape[2])
        del frames
        if n_frames < window:
            raise ValueError(
                f"{path}: {n_frames} frames, shorter than one {window}-frame window of {model!r}"
            )
        _, _, logits = predict()
        _check_finite(logits, f"{model} on {path}")
        if len(logits) != _windows(n_frames, window):
            raise RuntimeError(
                f"{path}: the predict path classified {len(logits)} windows, expected "
                f"{_windows(n_frames, window)} ({n_frames} frames decoded by read_video)"
            )
        streamed = _stream_decode_pass(path, window, decoder_threads)[1]
        if streamed != n_frames:
            raise RuntimeError(
                f"{path}: the background decoder produced {streamed} frames, read_video {n_frames}"
            )
        ref_frames = 0
        if ref_net is not None:
            _, ref_frames, ref_logits = refer()
            _check_finite(ref_logits, f"{reference} on {path}")

        times: dict[str, list[float]] = {
            "decode": [],
            "stream_decode": [],
            "predict": [],
            "reference": [],
        }
        stages = dict.fromkeys(E2E_STAGES, 0.0)
        for _ in range(rounds):
            times["decode"].append(decode()[0])
            times["stream_decode"].append(_stream_decode_pass(path, window, decoder_threads)[0])
            wall, seconds, _ = predict()
            times["predict"].append(wall)
            for stage, dt in seconds.items():
                stages[stage] += dt
            if ref_net is not None:
                times["reference"].append(refer()[0])

    classified = _windows(n_frames, window) * window
    decode_fps = n_frames * rounds / sum(times["decode"])
    stream_fps = n_frames * rounds / sum(times["stream_decode"])
    predict_fps = classified * rounds / sum(times["predict"])
    reference_fps = ref_frames * rounds / sum(times["reference"]) if ref_net is not None else None
    total = sum(stages.values())
    one = _random_inputs(shapes, 1, 0)
    ref_gflops = None
    if ref_net is not None:
        x = torch.zeros(1, 3, reference_window, *ref_size)
        ref_gflops = count_flops(ref_net, [x]) / 1e9
    return EndToEnd(
        video=str(path),
        video_frames=n_frames,
        height=height,
        width=width,
        model=model,
        model_kwargs=kwargs,
        flow_method=flow_method,
        pipeline=bool(pipeline),
        split=split if pipeline else "",
        threads=int(threads),
        decoder_threads=int(decoder_threads),
        batch=int(batch),
        window=int(window),
        frames_classified=classified,
        rounds=int(rounds),
        decode_fps=decode_fps,
        stream_decode_fps=stream_fps,
        predict_fps=predict_fps,
        reference=reference,
        reference_kwargs=ref_kwargs,
        reference_size=list(ref_size),
        reference_window=int(reference_window),
        reference_frames=ref_frames,
        reference_fps=reference_fps,
        stage_seconds={k: v / rounds for k, v in stages.items()},
        stage_share={k: v / total for k, v in stages.items()},
        wall_seconds=sum(times["predict"]) / rounds,
        predict_over_decode=predict_fps / decode_fps,
        predict_over_stream_decode=predict_fps / stream_fps,
        predict_over_reference=None if reference_fps is None else predict_fps / reference_fps,
        params=count_params(net),
        gflops_per_window=count_flops(net, one) / 1e9,
        reference_gflops_per_window=ref_gflops,
        round_seconds=times,
        environment=environment(),
        backend=backend,
    )
