"""``lowres-har`` command line: Lightning's fit/validate/test/predict plus library subcommands.

Training subcommands are a thin :class:`LightningCLI`; ``--config NAME`` with a bare name (no
``.yaml`` file of that name here) resolves to the shipped recipe ``lowres_har/configs/NAME.yaml``.

``predict`` has two forms: with ``--config``/``-c`` (or Lightning options only) it is
LightningCLI's predict over a data module; with video paths and ``--ckpt`` or ``--model NAME
--weights PATH`` it is the video predictor of :mod:`lowres_har.predict`
(:func:`~lowres_har.predict.is_video_invocation` decides).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from lightning.pytorch import LightningDataModule, LightningModule
from lightning.pytorch.cli import LightningCLI

import lowres_har  # noqa: I001  (runs the torchvision guard before lightning is imported)

__all__ = ["LowResCLI", "build_datamodule", "main", "resolve_config", "shipped_configs"]

LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")
log = logging.getLogger("lowres_har")


def shipped_configs() -> list[str]:
    """Names of the recipes shipped in ``lowres_har/configs``."""
    folder = resources.files("lowres_har") / "configs"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def resolve_config(value: str) -> str:
    """Map a bare recipe name (``quickstart``) to its shipped YAML; leave real paths alone.

    Raises:
        FileNotFoundError: neither a file nor a shipped recipe of that name exists.
    """
    if Path(value).is_file():
        return value
    name = value[:-5] if value.endswith(".yaml") else value
    candidate = resources.files("lowres_har") / "configs" / f"{name}.yaml"
    if "/" not in name and candidate.is_file():
        return str(candidate)
    raise FileNotFoundError(
        f"config {value!r} is neither a file nor a shipped recipe "
        f"(shipped: {', '.join(shipped_configs())})"
    )


def _resolve_config_args(argv: Sequence[str]) -> list[str]:
    out: list[str] = []
    it = iter(argv)
    for arg in it:
        if arg in ("--config", "-c"):
            out += [arg, resolve_config(next(it, ""))]
        elif arg.startswith("--config="):
            out.append("--config=" + resolve_config(arg.split("=", 1)[1]))
        else:
            out.append(arg)
    return out


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at emit time (robust to redirection and capture)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(self.format(record), file=sys.stderr, flush=True)
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


def _setup_logging() -> None:
    logger = logging.getLogger("lowres_har")
    if not logger.handlers:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("[lowres-har] %(levelname)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


class LowResCLI(LightningCLI):
    """LightningCLI with ``--test_after_fit`` and the data module's ``num_classes`` and
    ``class_names`` linked into the model's arguments."""

    def add_arguments_to_parser(self, parser: Any) -> None:
        parser.add_argument(
            "--test_after_fit",
            type=bool,
            default=False,
            help="after `fit`, test the best checkpoint on the test split and print top-1",
        )
        for key in ("num_classes", "class_names"):
            parser.link_arguments(f"data.{key}", f"model.init_args.{key}", apply_on="instantiate")

    def after_fit(self) -> None:
        if not self.config["fit"].get("test_after_fit"):
            return
        callback = self.trainer.checkpoint_callback
        best = str(getattr(callback, "best_model_path", "")) if callback is not None else ""
        ckpt = "best" if best else None
        results = self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=ckpt)
        if self.trainer.is_global_zero and results:
            _print_summary(results[0], self.datamodule)


def _lightning_cli(argv: list[str], *, from_command_line: bool) -> None:
    args: list[str] | None = argv
    if from_command_line:
        # Put the resolved arguments back into sys.argv and let LightningCLI read them there:
        # Lightning's DDP launcher re-executes sys.argv for the other ranks, so it must hold the
        # full command (a truncated sys.argv leaves rank 0 waiting for ranks that never start).
        sys.argv = [sys.argv[0], *argv]
        args = None
    LowResCLI(
        LightningModule,
        LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        args=args,
        save_config_kwargs={"overwrite": True},
        auto_configure_optimizers=False,
    )


def _print_summary(metrics: Mapping[str, float], datamodule: Any) -> None:
    n = getattr(datamodule, "num_classes", 0)
    top1 = metrics.get("test/video_top1", metrics.get("test/top1"))
    if top1 is None:
        return
    chance = f" (chance {1 / n:.3f}, {top1 * n:.1f}x chance)" if n else ""
    print(f"\nTest top-1 accuracy: {top1:.4f}{chance}", flush=True)


# --------------------------------------------------------------------------- extra subcommands
def _cmd_models(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="lowres-har models", description="List registered models.")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'r*'")
    p.add_argument("--num-classes", type=int, default=None, help="count parameters at this size")
    args = p.parse_args(argv)
    from rich.console import Console
    from rich.table import Table

    table = Table(title="lowres-har models")
    for col in ("name", "params (M)", "inputs (C×T×H×W)", "paper"):
        table.add_column(col)
    for name in lowres_har.list_models(args.pattern):
        card = lowres_har.model_card(name)
        model = lowres_har.create_model(name, num_classes=args.num_classes)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        inputs = ", ".join(f"{k} {'×'.join(map(str, s.shape()))}" for k, s in card.inputs.items())
        paper = ""
        if card.paper:
            first = card.paper.authors.split(",")[0]
            more = " et al." if "," in card.paper.authors else ""
            paper = f"{first}{more} {card.paper.year}"
        table.add_row(name, f"{params:.2f}", inputs, paper)
    Console().print(table)
    return 0


def _cmd_synth(argv: list[str]) -> int:
    from lowres_har.data.datamodules import default_data_home, synth_key

    p = argparse.ArgumentParser(
        prog="lowres-har synth",
        description="Render the SynthActions dataset (cached: a second run reuses it).",
    )
    p.add_argument("--root", type=Path, default=None, help="output folder")
    p.add_argument("--videos-per-class", type=int, default=60)
    p.add_argument("--frames", type=int, default=32, help="frames per video")
    p.add_argument("--size", type=int, default=112, help="frame size in pixels (square)")
    p.add_argument("--fps", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--workers", type=int, default=None, help="render processes (default: all cores)"
    )
    p.add_argument("--overwrite", action="store_true", help="re-render an existing folder")
    args = p.parse_args(argv)
    from lowres_har.data.synth import SYNTH_VERSION, generate_synth_actions

    key = synth_key(
        SYNTH_VERSION, args.seed, args.videos_per_class, args.frames, args.size, args.fps
    )
    root = args.root or default_data_home() / "synth_actions" / key
    out = generate_synth_actions(
        root,
        videos_per_class=args.videos_per_class,
        num_frames=args.frames,
        size=args.size,
        fps=args.fps,
        seed=args.seed,
        workers=args.workers,
        overwrite=args.overwrite,
    )
    print(out)
    return 0


def build_datamodule(config: str, overrides: Sequence[str] = ()) -> LightningDataModule:
    """Instantiate the ``data`` section of a recipe (path or bare name) without the rest.

    Args:
        config: a YAML file or a shipped recipe name.
        overrides: jsonargparse-style ``--data.init_args.KEY=VALUE`` arguments.
    """
    from jsonargparse import ActionConfigFile, ArgumentParser

    parser = ArgumentParser(prog="lowres-har", exit_on_error=False)
    parser.add_argument("--config", action=ActionConfigFile)
    parser.add_subclass_arguments(LightningDataModule, "data", required=True)
    for other in ("model", "trainer", "optimizer", "lr_scheduler", "seed_everything", "ckpt_path"):
        parser.add_argument(f"--{other}", type=Any, default=None)
    parser.add_argument("--test_after_fit", type=Any, default=None)
    cfg = parser.parse_args(["--config", resolve_config(config), *overrides])
    return parser.instantiate_classes(cfg).data  # type: ignore[no-any-return]


def _cmd_preprocess(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="lowres-har preprocess",
        description=(
            "Decode every video of a recipe's data module once and store its views (uint8, "
            "chunked, memory-mappable) for `data.init_args.cache_dir`. Resumable: a rerun skips "
            "finished chunks. Extra --data.init_args.KEY=VALUE arguments override the recipe."
        ),
    )
    p.add_argument("--config", "-c", required=True, help="recipe YAML or shipped name")
    p.add_argument("--out", required=True, type=Path, help="cache folder")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="decode processes")
    p.add_argument("--shard", default="0/1", help="i/n: process every n-th chunk from i")
    p.add_argument("--chunk-size", type=int, default=32, help="videos per chunk file")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args, overrides = p.parse_known_args(argv)
    from lowres_har.data.cache import parse_shard

    try:
        shard = parse_shard(args.shard)
        dm = build_datamodule(args.config, overrides)
    except (ValueError, FileNotFoundError) as err:
        print(f"lowres-har preprocess: {err}", file=sys.stderr)
        return 2
    views = getattr(dm, "views", None)
    if views is None or not hasattr(dm, "all_videos"):
        print(
            f"lowres-har preprocess: {type(dm).__name__} is not a VideoDataModule", file=sys.stderr
        )
        return 2
    try:
        dm.prepare_data()
        dm.all_videos()  # split files and missing videos are reported here, before any work
    except (ValueError, FileNotFoundError) as err:
        print(f"lowres-har preprocess: {err}", file=sys.stderr)
        return 2
    try:
        report = dm.preprocess(  # type: ignore[attr-defined]
            args.out,
            workers=args.workers,
            shard=shard,
            chunk_size=args.chunk_size,
            progress=not args.no_progress,
        )
    except ValueError as err:
        print(f"lowres-har preprocess: {err}", file=sys.stderr)
        return 2
    print(report.summary())
    if report.failures:
        where = (
            args.out / "report.json"
            if report.complete
            else "the chunk files (report.json is written when every shard has finished)"
        )
        print(f"{len(report.failures)} videos failed to decode; see {where}")
    if report.complete:
        print(f"use it with: --data.init_args.cache_dir={args.out}")
    return 0


def _cmd_benchmark_data(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="lowres-har benchmark data",
        description=(
            "Clips/s read from the preprocessing cache vs decoding each sample from its video "
            "file, measured in one run on the same SynthActions files (one process, one torch "
            "thread, training augmentation on)."
        ),
    )
    p.add_argument("--root", default=None, help="SynthActions cache root")
    p.add_argument("--videos-per-class", type=int, default=10)
    p.add_argument("--video-frames", type=int, default=32, help="frames per rendered video")
    p.add_argument("--num-frames", type=int, default=32, help="frames per clip")
    p.add_argument("--size", type=int, nargs=2, default=[12, 16], metavar=("H", "W"))
    p.add_argument("--upsample-to", type=int, nargs=2, default=[32, 32], metavar=("H", "W"))
    p.add_argument("--decode-samples", type=int, default=120)
    p.add_argument("--cache-samples", type=int, default=2000)
    p.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = p.parse_args(argv)
    from rich.console import Console
    from rich.table import Table

    from lowres_har.data.benchmark import benchmark_data

    result = benchmark_data(
        root=args.root,
        videos_per_class=args.videos_per_class,
        video_frames=args.video_frames,
        num_frames=args.num_frames,
        views={"video": {"size": list(args.size), "upsample_to": list(args.upsample_to)}},
        decode_samples=args.decode_samples,
        cache_samples=args.cache_samples,
    )
    table = Table(title=f"data loading, {result.videos} SynthActions videos, {result.view}")
    for col in ("path", "clips/s", "frames/s", "samples"):
        table.add_column(col, justify="right")
    for name, rate, n in (
        ("decode each sample", result.decode_clips_per_s, result.decode_samples),
        ("preprocessing cache", result.cache_clips_per_s, result.cache_samples),
    ):
        table.add_row(name, f"{rate:.1f}", f"{rate * result.num_frames:.0f}", str(n))
    Console().print(table)
    print(
        f"cache speed-up: {result.speedup:.1f}x (cache built at "
        f"{result.preprocess_videos_per_s:.1f} videos/s)"
    )
    if args.json:
        args.json.write_text(json.dumps(result.as_dict(), indent=2) + "\n")
    return 0


def _cmd_benchmark_json(text: str | None, what: str) -> dict[str, Any]:
    """Parse a ``--model-kwargs``-style JSON object (``None`` → ``{}``)."""
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{what} is not valid JSON ({err}): {text!r}") from err
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be a JSON object, got {text!r}")
    return value


def _cmd_benchmark_latency_table(title: str, rows: list[tuple[str, Any]]) -> Any:
    """Rich table of :class:`~lowres_har.export.benchmark.ModelBenchmark` rows (label, result):
    parameters, GFLOPs per clip, and clips/s and frames/s at each batch size."""
    from rich.table import Table

    batches = sorted({lat.batch for _, r in rows for lat in r.latency})
    table = Table(title=title)
    table.add_column("model")
    for col in ("params", "GFLOPs/clip"):
        table.add_column(col, justify="right")
    for b in batches:
        table.add_column(f"clips/s b{b}", justify="right")
        table.add_column(f"frames/s b{b}", justify="right")
    for label, r in rows:
        cells = [label, f"{r.params:,}", f"{r.gflops_per_clip:.3f}"]
        for b in batches:
            lat = next((x for x in r.latency if x.batch == b), None)
            cells += (
                ["-", "-"] if lat is None else [f"{lat.clips_per_s:.1f}", f"{lat.frames_per_s:.0f}"]
            )
        table.add_row(*cells)
    return table


def _cmd_benchmark_model(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="lowres-har benchmark [model]",
        description=(
            "Parameters, FLOPs per clip (FlopCounterMode: 2 FLOPs per multiply-add) and "
            "inference latency/throughput of one registered model on random inputs of its "
            "card's shape, under one or several backends measured side by side in one run "
            "(torch eager, onnxruntime on the exported ONNX, the LiteRT interpreter on the "
            "exported float TFLite; exports are parity-checked)."
        ),
    )
    p.add_argument("--model", required=True, help="registered model name")
    p.add_argument("--model-kwargs", default=None, help="JSON object, e.g. '{\"kernel_size\": 3}'")
    p.add_argument("--num-classes", type=int, default=None)
    p.add_argument(
        "--backend",
        nargs="+",
        default=["torch"],
        metavar="NAME",
        help="backends to compare: torch onnxruntime tflite (default: torch)",
    )
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32])
    p.add_argument("--threads", type=int, default=1, help="CPU threads per runtime (default 1)")
    p.add_argument("--warmup", type=int, default=2, help="untimed passes per batch size")
    p.add_argument("--iters", type=int, default=10, help="timed passes per batch size")
    p.add_argument("--rounds", type=int, default=2, help="blocks the backends take turns in")
    p.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = p.parse_args(argv)
    from rich.console import Console
    from rich.table import Table

    from lowres_har.export.benchmark import benchmark_backends

    try:
        kwargs = _cmd_benchmark_json(args.model_kwargs, "--model-kwargs")
        results = benchmark_backends(
            args.model,
            kwargs,
            args.backend,
            args.batch_sizes,
            warmup=args.warmup,
            iters=args.iters,
            rounds=args.rounds,
            threads=args.threads,
            num_classes=args.num_classes,
        )
    except (ValueError, KeyError, TypeError, ImportError) as err:
        print(f"lowres-har benchmark: {err}", file=sys.stderr)
        return 2
    first = results[0]
    shapes = ", ".join(f"{k} {'×'.join(map(str, v))}" for k, v in first.input_shapes.items())
    label = args.model + (f" {json.dumps(kwargs)}" if kwargs else "")
    table = Table(
        title=(
            f"{label}: {first.params:,} parameters, {first.gflops_per_clip:.3f} GFLOPs per "
            f"clip ({shapes}), {args.threads} thread(s) per runtime, measured side by side"
        )
    )
    for col in ("backend", "batch", "p50 ms", "p90 ms", "clips/s", "frames/s", "× first"):
        table.add_column(col, justify="right")
    for r in results:
        for lat in r.latency:
            base = first.at_batch(lat.batch).clips_per_s
            table.add_row(
                r.backend,
                str(lat.batch),
                f"{lat.p50_ms:.2f}",
                f"{lat.p90_ms:.2f}",
                f"{lat.clips_per_s:.1f}",
                f"{lat.frames_per_s:.0f}",
                f"{lat.clips_per_s / base:.2f}",
            )
    Console().print(table)
    if args.json:
        payload: dict[str, Any] = {"results": [r.as_dict() for r in results]}
        if len(results) == 1:
            payload = results[0].as_dict()
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


def _cmd_benchmark_msn(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="lowres-har benchmark msn",
        description=(
            "MSN parameters, FLOPs and throughput for each fusion (three streams) and each "
            "stream set (sum fusion), measured side by side: the analogue of the paper's "
            "Table 1. Default input 32 frames of 32×32, batch 1 and 32, one torch thread."
        ),
    )
    p.add_argument("--quick", action="store_true", help="batch 1 and 4, 3 timed passes")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=None)
    p.add_argument("--iters", type=int, default=None, help="timed passes (default 5; quick 3)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--model-kwargs", default=None, help="MSN options for every row (JSON), e.g. kernel_size"
    )
    p.add_argument("--json", type=Path, default=None, help="also write the table here")
    args = p.parse_args(argv)
    from rich.console import Console

    from lowres_har.export.benchmark import msn_table

    sizes = args.batch_sizes or ([1, 4] if args.quick else [1, 32])
    iters = args.iters or (3 if args.quick else 5)
    try:
        base = _cmd_benchmark_json(args.model_kwargs, "--model-kwargs")
        table = msn_table(
            batch_sizes=sizes,
            iters=iters,
            rounds=min(iters, 5),
            threads=args.threads,
            base_kwargs=base,
        )
    except (ValueError, KeyError, TypeError) as err:
        print(f"lowres-har benchmark msn: {err}", file=sys.stderr)
        return 2
    console = Console()
    extra = f", {json.dumps(base)}" if base else ""
    for group, title in (
        ("fusion", "MSN per fusion (three streams)"),
        ("streams", "MSN per stream set (sum)"),
    ):
        rows = [(r.label, r.result) for r in table.group(group)]
        console.print(
            _cmd_benchmark_latency_table(f"{title}{extra}, {args.threads} torch thread(s)", rows)
        )
    if args.json:
        args.json.write_text(json.dumps(table.as_dict(), indent=2) + "\n")
    return 0


def _cmd_benchmark_e2e(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="lowres-har benchmark e2e",
        description=(
            "Frames/s of the predict path on a video file (decode → degrade → flow → mask → "
            "model) measured in one run, in alternating rounds, next to decode-only frames/s "
            "on the same file (the limit) and a reference model (r2plus1d_18 at 112×112)."
        ),
    )
    p.add_argument("video", type=Path, help="video file")
    p.add_argument("--model", default="msn")
    p.add_argument("--model-kwargs", default=None, help="JSON object of model options")
    p.add_argument("--flow-method", default="tvl1", choices=["tvl1", "farneback", "dis"])
    p.add_argument("--elr-size", type=int, nargs=2, default=[12, 16], metavar=("H", "W"))
    p.add_argument(
        "--pipeline",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="decode (and degrade) in a background thread, overlapped with the rest",
    )
    p.add_argument(
        "--split",
        default="decode",
        choices=["decode", "degrade", "features"],
        help="last stage the background thread runs (default: decode)",
    )
    p.add_argument("--threads", type=int, default=1, help="torch/OpenCV threads (default 1)")
    p.add_argument("--decoder-threads", type=int, default=1, help="FFmpeg threads (0: auto)")
    p.add_argument("--batch", type=int, default=8, help="windows per forward pass")
    p.add_argument(
        "--backend",
        default="torch",
        choices=["torch", "onnxruntime"],
        help="what runs the predict path's model (the reference always runs in torch)",
    )
    p.add_argument("--rounds", type=int, default=3, help="timed passes of each path")
    p.add_argument("--reference", default="r2plus1d_18", help="reference model, or 'none'")
    p.add_argument("--reference-kwargs", default=None, help="JSON object of its options")
    p.add_argument("--reference-size", type=int, nargs=2, default=[112, 112], metavar=("H", "W"))
    p.add_argument("--reference-window", type=int, default=16)
    p.add_argument(
        "--reference-frames", type=int, default=None, help="classify only the first N frames"
    )
    p.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = p.parse_args(argv)
    from rich.console import Console
    from rich.table import Table

    from lowres_har.data.io import VideoDecodeError
    from lowres_har.export.benchmark import end_to_end

    reference = None if args.reference.lower() == "none" else args.reference
    try:
        r = end_to_end(
            args.video,
            model=args.model,
            model_kwargs=_cmd_benchmark_json(args.model_kwargs, "--model-kwargs"),
            flow_method=args.flow_method,
            elr_size=args.elr_size,
            batch=args.batch,
            pipeline=args.pipeline,
            split=args.split,
            threads=args.threads,
            decoder_threads=args.decoder_threads,
            rounds=args.rounds,
            reference=reference,
            reference_kwargs=_cmd_benchmark_json(args.reference_kwargs, "--reference-kwargs"),
            reference_size=args.reference_size,
            reference_window=args.reference_window,
            reference_frames=args.reference_frames,
            backend=args.backend,
        )
    except (ValueError, KeyError, TypeError, VideoDecodeError) as err:
        print(f"lowres-har benchmark e2e: {err}", file=sys.stderr)
        return 2
    mode = f"pipeline (split after {r.split})" if r.pipeline else "sequential"
    table = Table(
        title=(
            f"{Path(r.video).name}: {r.video_frames} frames {r.width}×{r.height}, {mode}, "
            f"{r.threads} torch thread(s), {r.rounds} rounds"
        )
    )
    for col in ("path", "frames/s", "vs decode"):
        table.add_column(col, justify="right")
    table.add_row("(a) decode only (read_video)", f"{r.decode_fps:.0f}", "1.00")
    table.add_row(
        "(a') decode only (background decoder)",
        f"{r.stream_decode_fps:.0f}",
        f"{r.stream_decode_fps / r.decode_fps:.2f}",
    )
    kw = f" {json.dumps(r.model_kwargs)}" if r.model_kwargs else ""
    table.add_row(
        f"(b) predict: {r.model}{kw}, {r.flow_method}, {r.gflops_per_window:.2f} GFLOPs/window"
        + ("" if r.backend == "torch" else f", {r.backend}"),
        f"{r.predict_fps:.0f}",
        f"{r.predict_over_decode:.2f}",
    )
    if r.reference_fps is not None:
        size = "×".join(map(str, r.reference_size))
        table.add_row(
            f"(c) {r.reference} at {size}, {r.reference_gflops_per_window:.1f} GFLOPs/window",
            f"{r.reference_fps:.1f}",
            f"{r.reference_fps / r.decode_fps:.3f}",
        )
    console = Console()
    console.print(table)
    stages = Table(title="(b) time per pass by stage")
    for col in ("stage", "ms", "share"):
        stages.add_column(col, justify="right")
    for stage, sec in r.stage_seconds.items():
        stages.add_row(stage, f"{sec * 1000:.1f}", f"{r.stage_share[stage]:.0%}")
    stages.add_row("wall", f"{r.wall_seconds * 1000:.1f}", "")
    console.print(stages)
    vs_ref = (
        f", {r.predict_over_reference:.1f}x the reference"
        if r.predict_over_reference is not None
        else ""
    )
    verdict = "meets" if r.meets(0.5) else "does not meet"
    print(
        f"predict / decode-only: {r.predict_over_decode:.2f} (read_video), "
        f"{r.predict_over_stream_decode:.2f} (background decoder){vs_ref}; "
        f"{verdict} the 50% target"
    )
    if args.json:
        args.json.write_text(json.dumps(r.as_dict(), indent=2) + "\n")
    return 0


def _cmd_benchmark_usage() -> str:
    """Usage text of ``lowres-har benchmark``."""
    return """usage: lowres-har benchmark {data,model,msn,e2e} [options]
  data   clips/s from the preprocessing cache vs decoding (SynthActions)
  model  --model NAME [--backend torch onnxruntime tflite] [--model-kwargs JSON]
         [--batch-sizes 1 32] [--threads N] [--json FILE]   (`model` may be left out)
  msn    MSN params, FLOPs, throughput per fusion and stream set [--quick] [--json FILE]
  e2e    VIDEO: predict path frames/s vs decode-only and r2plus1d_18 [--flow-method M]
         [--pipeline/--no-pipeline] [--threads N] [--model-kwargs JSON] [--json FILE]
`lowres-har benchmark SUB --help` lists every option."""


def _cmd_benchmark(argv: list[str]) -> int:
    commands: dict[str, Callable[[list[str]], int]] = {
        "data": _cmd_benchmark_data,
        "model": _cmd_benchmark_model,
        "msn": _cmd_benchmark_msn,
        "e2e": _cmd_benchmark_e2e,
    }
    if argv[:1] and argv[0] in commands:
        return commands[argv[0]](argv[1:])
    if argv[:1] and (argv[0] == "--model" or argv[0].startswith("--model=")):
        return _cmd_benchmark_model(argv)
    if argv[:1] in (["-h"], ["--help"]):
        print(_cmd_benchmark_usage())
        return 0
    if argv:
        print(f"lowres-har benchmark: unknown benchmark {argv[0]!r}", file=sys.stderr)
    print(_cmd_benchmark_usage(), file=sys.stderr)
    return 2


def _cmd_export(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="lowres-har export",
        description=(
            "Export a trained model (task checkpoint) or a registered architecture to ONNX, "
            "TFLite or a full-integer streaming Edge-TPU TFLite, and check the artefact against "
            "PyTorch (onnxruntime / LiteRT interpreter). Prints the report; --json saves it."
        ),
    )
    p.add_argument("format", choices=("onnx", "tflite", "edgetpu"))
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--ckpt", type=Path, help="a lowres-har task checkpoint (.ckpt)")
    src.add_argument("--model", help="a registered model name (random weights)")
    p.add_argument("--model-kwargs", default=None, help="JSON object of architecture options")
    p.add_argument("--output", "-o", type=Path, required=True, help="file to write")
    p.add_argument("--num-frames", type=int, default=None, help="clip length baked in")
    p.add_argument("--size", type=int, nargs=2, default=None, metavar=("H", "W"))
    p.add_argument("--real-video", type=Path, default=None, help="also check on this video")
    p.add_argument("--opset", type=int, default=None, help="onnx: opset (default: exporter's)")
    p.add_argument("--static-batch", action="store_true", help="onnx: fixed batch axis")
    p.add_argument("--quantize", choices=("dynamic",), default=None, help="tflite: int8 weights")
    p.add_argument(
        "--data",
        default=None,
        help="edgetpu: recipe (YAML or shipped name) whose data section gives the calibration "
        "clips (its val split), e.g. msn_synth",
    )
    p.add_argument(
        "--data-override",
        action="append",
        default=[],
        metavar="ARG",
        help="edgetpu: override for the data section, e.g. --data.init_args.batch_size=4",
    )
    p.add_argument("--calibration-clips", type=int, default=64, help="edgetpu: clips")
    p.add_argument(
        "--classifier",
        choices=("tpu", "cpu", "cpu_mlp"),
        default=None,
        help="edgetpu: where the classifier runs: in the int8 graph (tpu, default), its final "
        "Linear on the host (cpu), or the whole fully connected head on the host (cpu_mlp)",
    )
    p.add_argument(
        "--no-equalize",
        action="store_true",
        help="edgetpu: skip the activation-range equalisation folded into the weights before "
        "quantization (MSN; see the deployment guide)",
    )
    p.add_argument("--no-check", action="store_true", help="write without failing on parity")
    p.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = p.parse_args(argv)
    try:
        kwargs = _cmd_benchmark_json(args.model_kwargs, "--model-kwargs")
        source: Any = str(args.ckpt) if args.ckpt is not None else args.model
        if args.ckpt is not None and not args.ckpt.is_file():
            raise FileNotFoundError(f"checkpoint not found: {args.ckpt}")
        if kwargs:  # build first: options such as MSN's num_frames share an exporter's names
            from lowres_har.export.common import load_model

            source, kwargs = load_model(source, **kwargs), {}
        common: dict[str, Any] = {
            "num_frames": args.num_frames,
            "size": tuple(args.size) if args.size else None,
            "check": not args.no_check,
        }
        if args.format == "onnx":
            from lowres_har.export.onnx import to_onnx

            report: Any = to_onnx(
                source,
                args.output,
                opset=args.opset,
                dynamic_batch=not args.static_batch,
                real_video=args.real_video,
                **common,
                **kwargs,
            )
        elif args.format == "tflite":
            from lowres_har.export.tflite import to_tflite

            report = to_tflite(
                source,
                args.output,
                quantize=args.quantize,
                real_video=args.real_video,
                **common,
                **kwargs,
            )
        else:
            from lowres_har.export.edgetpu import to_edgetpu

            if args.data is None:
                raise ValueError(
                    "edgetpu export needs --data RECIPE for its calibration clips "
                    "(full-integer quantization), e.g. --data msn_synth"
                )
            datamodule = build_datamodule(args.data, args.data_override)
            report = to_edgetpu(
                source,
                args.output,
                datamodule=datamodule,
                num_calibration_clips=args.calibration_clips,
                classifier=args.classifier,
                equalize=not args.no_equalize,
                **common,
                **kwargs,
            )
    except (ValueError, KeyError, TypeError, ImportError, FileNotFoundError) as err:
        print(f"lowres-har export: {err}", file=sys.stderr)
        return 2
    print(report.summary() if hasattr(report, "summary") else report)
    if args.json:
        args.json.write_text(json.dumps(report.as_dict(), indent=2, default=str) + "\n")
    return 0


EXTRA_COMMANDS: dict[str, tuple[Callable[[list[str]], int], str]] = {
    "benchmark": (
        _cmd_benchmark,
        "benchmarks: `benchmark data|model|msn|e2e` (side-by-side speed measurements)",
    ),
    "models": (_cmd_models, "list registered models with parameters and inputs"),
    "synth": (_cmd_synth, "render the built-in SynthActions dataset"),
    "preprocess": (_cmd_preprocess, "decode a recipe's videos once into a fast clip cache"),
    "export": (_cmd_export, "export to ONNX / TFLite / Edge-TPU int8 with parity checks"),
}


def _print_help() -> None:
    print("usage: lowres-har COMMAND [options]\n")
    print("Training and evaluation (LightningCLI; `lowres-har fit --help` for every option):")
    for cmd in LIGHTNING_COMMANDS:
        print(f"  {cmd:<10} {cmd} a model: lowres-har {cmd} --config quickstart")
    print("\nPrediction on video files (`lowres-har predict --help` explains both predict forms):")
    print(
        f"  {'predict':<10} lowres-har predict VIDEO... --ckpt CKPT [--output DIR] [--csv] [--preview]"
    )
    print("\nLibrary commands:")
    for cmd, (_, text) in EXTRA_COMMANDS.items():
        print(f"  {cmd:<10} {text}")
    print(f"\nShipped configs (--config NAME): {', '.join(shipped_configs())}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lowres-har`` console script and ``python -m lowres_har``."""
    args = list(sys.argv[1:] if argv is None else argv)
    _setup_logging()
    if not args or args[0] in ("-h", "--help"):
        _print_help()
        return 0
    if args[0] in ("-V", "--version"):
        print(f"lowres-har {lowres_har.__version__}")
        return 0
    if args[0] in EXTRA_COMMANDS:
        return EXTRA_COMMANDS[args[0]][0](args[1:])
    if args[0] == "predict":
        from lowres_har.predict import command, is_video_invocation

        if is_video_invocation(args[1:]):  # VIDEO... --ckpt/--model; --config goes to Lightning
            return command(args[1:])
    if args[0] not in LIGHTNING_COMMANDS:
        print(f"lowres-har: unknown command {args[0]!r}\n", file=sys.stderr)
        _print_help()
        return 2
    try:
        resolved = _resolve_config_args(args)
    except FileNotFoundError as err:
        print(f"lowres-har: {err}", file=sys.stderr)
        return 2
    _lightning_cli(resolved, from_command_line=argv is None)
    return 0
