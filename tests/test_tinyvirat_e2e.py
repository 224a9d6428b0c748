"""The TinyVIRAT-v2 recipe end to end through the real CLI, on the fixture in the official layout
(tiny videos of mixed sizes): fit one epoch of ``fpn_adresnet50_tinyvirat`` (shrunk), tune the
threshold on validation, predict the public test split and write the challenge's ``answer.txt``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from lowres_har.cli import main
from lowres_har.data.datasets.tinyvirat import (
    TINYVIRAT_SPLIT_FILES,
    read_class_map,
    read_tinyvirat_json,
)

#: the recipe at fixture scale: a narrow FPN ResNet-50 on 4-frame 16×16 clips.
SMALL = [
    "--model.init_args.model_kwargs={input_size: 16, width: 4, layout: 3d-resnets, head: avg}",
    "--data.init_args.batch_size=4",
    "--data.init_args.num_workers=0",
    "--data.init_args.num_frames=4",
    "--data.init_args.eval_clips=2",
    "--data.init_args.views={video: {size: [16, 16]}}",
    "--data.init_args.short_side_scale=[16, 20]",
    "--data.init_args.crop_size=[16, 16]",
    "--trainer.accelerator=cpu",
    "--trainer.callbacks=[]",
]


@pytest.fixture(scope="module")
def root(dataset_fixture) -> Path:  # type: ignore[no-untyped-def]
    return dataset_fixture("tinyvirat")


def test_fpn_recipe_fit_tune_predict_answer(root: Path, tmp_path: Path) -> None:
    fit = [
        "fit",
        "--config",
        "fpn_adresnet50_tinyvirat",
        f"--data.init_args.root={root}",
        *SMALL,
        "--trainer.max_epochs=1",
        "--trainer.enable_progress_bar=false",
        "--trainer.callbacks+=lightning.pytorch.callbacks.ModelCheckpoint",
        "--trainer.callbacks.filename=last",
        "--test_after_fit=false",
        f"--trainer.logger.init_args.save_dir={tmp_path}",
    ]
    assert main(fit) == 0
    (ckpt,) = list(tmp_path.rglob("last.ckpt"))
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    hp = state["hyper_parameters"]
    assert (
        hp["model"] == "fpn_resnet3d_50" and hp["multilabel"] and hp["tune_threshold"] == "global"
    )
    classes = read_class_map(root / "class_map.json")
    tuned = state["state_dict"]["decision_threshold"]
    assert tuned.shape == (len(classes),)
    assert torch.all(tuned == tuned[0])  # one global threshold, from the validation grid
    assert 0.0 < float(tuned[0]) < 1.0
    assert state["lowres_har"]["decision_threshold"] == pytest.approx(tuned.tolist())
    metrics = next(tmp_path.rglob("metrics.csv")).read_text()
    assert "val/video_f1_tuned" in metrics and "val/threshold" in metrics

    answer = tmp_path / "answer.txt"
    predict = [
        "predict",
        "--config",
        "fpn_adresnet50_tinyvirat",
        f"--data.init_args.root={root}",
        *SMALL,
        "--data.init_args.test_split=test",
        "--trainer.enable_progress_bar=false",
        "--trainer.logger=false",
        f"--trainer.default_root_dir={tmp_path}",
        "--trainer.callbacks+=lowres_har.callbacks.TinyActionAnswerWriter",
        f"--trainer.callbacks.output_path={answer}",
        f"--ckpt_path={ckpt}",
    ]
    assert main(predict) == 0
    lines = answer.read_text().splitlines()
    test_json = root / TINYVIRAT_SPLIT_FILES["test"]
    test_ids = [r.id for r in read_tinyvirat_json(test_json, labelled=False)]
    pattern = re.compile(r"^\d{5}( [01]){" + str(len(classes)) + "}$")
    assert len(lines) == len(test_ids) > 0
    assert all(pattern.match(line) for line in lines), lines
    assert [int(line.split()[0]) for line in lines] == sorted(int(i) for i in test_ids)
