"""The real CLI on tiny generated data (torchgeo style): every tests/conf/*.yaml with fast_dev_run,
shipped recipes by bare name, fine-tuning from a checkpoint, and CPU DDP."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from lowres_har.cli import main, resolve_config, shipped_configs

CONF = Path(__file__).parent / "conf"
TINY_DATA = [
    "--data.init_args.videos_per_class=3",
    "--data.init_args.video_frames=8",
    "--data.init_args.video_size=32",
    "--data.init_args.workers=0",
    "--data.init_args.num_workers=0",
    "--data.init_args.num_frames=4",
]


@pytest.mark.parametrize("config", sorted(CONF.glob("*.yaml")), ids=lambda p: p.stem)
@pytest.mark.usefixtures("tiny_synth")
def test_conf_fast_dev_run(config: Path, tmp_path: Path) -> None:
    assert (
        main(
            [
                "fit",
                "--config",
                str(config),
                "--trainer.fast_dev_run=1",
                f"--trainer.default_root_dir={tmp_path}",
            ]
        )
        == 0
    )


@pytest.mark.parametrize("name", shipped_configs())
def test_shipped_configs_parse(name: str) -> None:
    cfg = yaml.safe_load(Path(resolve_config(name)).read_text())
    assert "model" in cfg and "data" in cfg and "trainer" in cfg


@pytest.mark.usefixtures("tiny_synth")
def test_bare_config_name_resolves(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "fit",
        "--config",
        "quickstart",
        *TINY_DATA,
        "--trainer.fast_dev_run=1",
        "--trainer.callbacks=[]",
        f"--trainer.logger.init_args.save_dir={tmp_path}",
    ]
    assert main(args) == 0
    assert "Test top-1 accuracy" in capsys.readouterr().out


def test_unknown_config_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fit", "--config", "no_such_recipe"]) == 2
    err = capsys.readouterr().err
    assert "no_such_recipe" in err and "quickstart" in err


def test_help_and_models(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert "synth" in capsys.readouterr().out
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ("r3d_18", "mc3_18", "r2plus1d_18"):
        assert name in out
    assert "33." in out  # r3d_18 has 33.x M parameters at 400 classes


@pytest.mark.usefixtures("tiny_synth")
def test_finetune_from_checkpoint_onto_subset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = [
        "--config",
        str(CONF / "synth_tiny.yaml"),
        f"--trainer.default_root_dir={tmp_path}",
        "--trainer.limit_train_batches=2",
        "--trainer.limit_val_batches=1",
    ]
    assert main(["fit", *base, "--trainer.enable_checkpointing=true"]) == 0
    ckpts = sorted(tmp_path.rglob("*.ckpt"))
    assert ckpts, "the first fit wrote no checkpoint"
    capsys.readouterr()
    classes = "[walk, run, jump, clap, kick]"
    assert (
        main(
            [
                "fit",
                *base,
                f"--model.init_args.weights={ckpts[-1]}",
                f"--data.init_args.classes={classes}",
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "re-initialised classifier keys: fc.weight, fc.bias" in err
    assert "missing keys" not in err and "unexpected keys" not in err


def test_synth_command(tmp_path: Path) -> None:
    args = [
        "synth",
        "--root",
        str(tmp_path / "s"),
        "--videos-per-class",
        "1",
        "--frames",
        "4",
        "--size",
        "32",
        "--workers",
        "0",
    ]
    assert main(args) == 0
    assert (tmp_path / "s" / "meta.json").is_file()
    assert len(list((tmp_path / "s" / "videos").rglob("*.mp4"))) >= 10


@pytest.mark.slow
@pytest.mark.usefixtures("tiny_synth")
def test_ddp_cpu_two_processes(tmp_path: Path, data_home: Path) -> None:
    env = dict(os.environ, LOWRES_HAR_HOME=str(data_home), PYTHONWARNINGS="ignore")
    cmd = [
        sys.executable,
        "-m",
        "lowres_har",
        "fit",
        "--config",
        str(CONF / "synth_tiny.yaml"),
        "--trainer.strategy=ddp",
        "--trainer.devices=2",
        "--trainer.accelerator=cpu",
        "--trainer.max_epochs=1",
        f"--trainer.default_root_dir={tmp_path}",
        "--test_after_fit=true",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Test top-1 accuracy" in proc.stdout


@pytest.mark.usefixtures("tiny_synth")
def test_last_ckpt_is_the_latest_epoch(tmp_path: Path) -> None:
    """last.ckpt holds the final epoch even when that epoch is not a new best: lr 0 and a frozen
    backbone keep the model (and so val/video_top1) identical after the first epoch."""
    args = [
        "fit",
        "--config",
        "quickstart",
        *TINY_DATA,
        "--trainer.max_epochs=3",
        "--trainer.limit_train_batches=1",
        "--trainer.limit_val_batches=1",
        "--model.init_args.lr=0.0",
        "--model.init_args.warmup_epochs=0",
        "--model.init_args.freeze_backbone=true",
        "--model.init_args.model_kwargs.dropout=0.0",
        "--test_after_fit=false",
        f"--trainer.logger.init_args.save_dir={tmp_path}",
    ]
    assert main(args) == 0
    ckpts = {p.name: p for p in tmp_path.rglob("*.ckpt")}
    best = [name for name in ckpts if name.startswith("best-")]
    assert best == ["best-epoch=00.ckpt"], sorted(ckpts)  # the later epochs were no new best
    last = torch.load(ckpts["last.ckpt"], map_location="cpu", weights_only=True)
    assert last["epoch"] == 2
