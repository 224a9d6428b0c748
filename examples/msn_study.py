"""MSN study on SynthActions eLR: stream ablation and the five fusions, several seeds.

Runs ``lowres-har fit --config msn_synth`` once per (configuration, seed), each in its own
process, and reads the test metrics from the CSV logs. Finished runs are skipped on a rerun, so
the study can be stopped and resumed. At the end it prints the two tables (mean ± std over seeds)
as Markdown and writes them, with every run, to ``<out>/results.json``.

    python examples/msn_study.py --out runs/msn_study --seeds 0 1 2

Each run uses the ``msn_synth`` recipe (CPU-sized MSN, 40 epochs) unless ``--epochs`` says
otherwise (``--set ARG`` passes any other override to every run); the preprocessing cache (flow
and masks) is built by the first run and shared. The 20-epoch study of the MSN card:

    python examples/msn_study.py --out runs/msn_study20 --epochs 20 \
        --set=--model.init_args.warmup_epochs=0 --set=--model.init_args.label_smoothing=0
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

#: Stream ablation with sum fusion, then the fusions with all three streams.
STREAM_SETS = {
    "rgb": ["rgb"],
    "rgb+flow": ["rgb", "flow"],
    "rgb+mask": ["rgb", "mask"],
    "rgb+flow+mask": ["rgb", "flow", "mask"],
}
FUSIONS = ["concat", "sum", "multilayer", "interpolation", "ssma"]
CHANCE = 1 / 12


def configurations() -> dict[str, dict[str, object]]:
    """``{run name: {fusion, streams}}`` — 8 distinct configurations."""
    runs: dict[str, dict[str, object]] = {}
    for name, streams in STREAM_SETS.items():
        runs[f"sum_{name}"] = {"fusion": "sum", "streams": streams}
    for fusion in FUSIONS:
        runs.setdefault(
            f"{fusion}_rgb+flow+mask", {"fusion": fusion, "streams": STREAM_SETS["rgb+flow+mask"]}
        )
    return runs


def _test_metrics(log_dir: Path) -> dict[str, float] | None:
    for metrics in sorted(log_dir.rglob("metrics.csv")):
        rows = list(csv.DictReader(metrics.open()))
        for row in reversed(rows):
            if row.get("test/video_top1"):
                return {k: float(v) for k, v in row.items() if k.startswith("test/") and v}
    return None


def run_one(
    name: str,
    cfg: dict[str, object],
    seed: int,
    out: Path,
    epochs: int | None,
    extra: Sequence[str] = (),
) -> dict:
    run_dir = out / name / f"seed{seed}"
    done = run_dir / "result.json"
    if done.is_file():
        return json.loads(done.read_text())
    args = [
        sys.executable,
        "-m",
        "lowres_har",
        "fit",
        "--config",
        "msn_synth",
        f"--seed_everything={seed}",
        f"--model.init_args.model_kwargs.fusion={cfg['fusion']}",
        f"--model.init_args.model_kwargs.streams={json.dumps(cfg['streams'])}",
        "--trainer.callbacks=[]",
        "--trainer.enable_progress_bar=false",
        f"--trainer.logger.init_args.save_dir={run_dir}",
        "--trainer.logger.init_args.name=log",
    ]
    if epochs is not None:
        args.append(f"--trainer.max_epochs={epochs}")
    args += list(extra)
    start = time.time()
    run_dir.mkdir(parents=True, exist_ok=True)
    with (run_dir.parent / f"seed{seed}.log").open("w") as log:
        proc = subprocess.run(args, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())
    metrics = _test_metrics(run_dir)
    if proc.returncode != 0 or metrics is None:
        raise RuntimeError(f"{name} seed {seed} failed (exit {proc.returncode}); see the log")
    result = {"name": name, "seed": seed, **cfg, "minutes": (time.time() - start) / 60, **metrics}
    done.write_text(json.dumps(result, indent=1))
    return result


def _cell(values: list[float]) -> str:
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * mean:.1f} ± {100 * std:.1f} ({mean / CHANCE:.1f}× chance)"


def tables(results: list[dict]) -> str:
    """Markdown tables of test video top-1 (mean ± std over seeds)."""
    by_name: dict[str, list[float]] = {}
    for r in results:
        by_name.setdefault(r["name"], []).append(r["test/video_top1"])
    lines = ["| streams (sum fusion) | test top-1 % (video) | seeds |", "|---|---|---|"]
    for name in STREAM_SETS:
        vals = by_name.get(f"sum_{name}", [])
        lines.append(f"| {name} | {_cell(vals) if vals else '—'} | {len(vals)} |")
    lines += ["", "| fusion (rgb+flow+mask) | test top-1 % (video) | seeds |", "|---|---|---|"]
    for fusion in FUSIONS:
        vals = by_name.get(f"{fusion}_rgb+flow+mask", [])
        lines.append(f"| {fusion} | {_cell(vals) if vals else '—'} | {len(vals)} |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("runs/msn_study"))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=None, help="override the recipe's 40 epochs")
    p.add_argument("--only", nargs="*", default=None, help="run names to run (default all)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for every fit, e.g. --set=--model.init_args.label_smoothing=0",
    )
    args = p.parse_args()
    results = []
    for seed in args.seeds:  # seed-major: every configuration gets seed 0 first
        for name, cfg in configurations().items():
            if args.only and name not in args.only:
                continue
            r = run_one(name, cfg, seed, args.out, args.epochs, args.set)
            print(
                f"{name} seed {seed}: test video top-1 {100 * r['test/video_top1']:.1f} %",
                flush=True,
            )
            results.append(r)
    text = tables(results)
    (args.out / "results.json").write_text(json.dumps({"runs": results, "tables": text}, indent=1))
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
