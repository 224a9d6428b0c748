"""``lowres-har`` command line: Lightning's fit/validate/test/predict plus library subcommands.

Training subcommands are a thin :class:`LightningCLI`; ``--config NAME`` with a bare name (no
``.yaml`` file of that name here) resolves to the shipped recipe ``lowres_har/configs/NAME.yaml``.
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
        paper = f"{card.paper.authors.split(',')[0]} et al. {card.paper.year}" if card.paper else ""
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
    from lowres_har.data.cache import build_cache, parse_shard

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
        entries = [(str(e[0]), tuple(e[2]) if len(e) > 2 else None) for e in dm.all_videos()]
    except (ValueError, FileNotFoundError) as err:
        print(f"lowres-har preprocess: {err}", file=sys.stderr)
        return 2
    degrader = dm.degrader()  # type: ignore[attr-defined]
    try:
        report = build_cache(
            entries,  # type: ignore[arg-type]
            degrader,
            degrader.specs(),
            degrader.shapes,
            args.out,
            chunk_size=args.chunk_size,
            workers=args.workers,
            shard=shard,
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


def _cmd_benchmark(argv: list[str]) -> int:
    if argv[:1] == ["data"]:
        return _cmd_benchmark_data(argv[1:])
    print("usage: lowres-har benchmark data [options]  (data-loading benchmark)", file=sys.stderr)
    return 2


EXTRA_COMMANDS: dict[str, tuple[Callable[[list[str]], int], str]] = {
    "benchmark": (_cmd_benchmark, "benchmarks: `benchmark data` (cache vs decode clips/s)"),
    "models": (_cmd_models, "list registered models with parameters and inputs"),
    "synth": (_cmd_synth, "render the built-in SynthActions dataset"),
    "preprocess": (_cmd_preprocess, "decode a recipe's videos once into a fast clip cache"),
}


def _print_help() -> None:
    print("usage: lowres-har COMMAND [options]\n")
    print("Training and evaluation (LightningCLI; `lowres-har fit --help` for every option):")
    for cmd in LIGHTNING_COMMANDS:
        print(f"  {cmd:<10} {cmd} a model: lowres-har {cmd} --config quickstart")
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
