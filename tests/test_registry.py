from __future__ import annotations

import pytest
from torch import nn

import lowres_har
from lowres_har.registry import InputSpec, ModelCard, register_model

BASELINES = {"r3d_18", "mc3_18", "r2plus1d_18"}


def test_baselines_registered() -> None:
    assert set(lowres_har.list_models()) >= BASELINES


def test_list_models_pattern() -> None:
    assert lowres_har.list_models("r*") == sorted(
        n for n in lowres_har.list_models() if n[0] == "r"
    )
    assert lowres_har.list_models("no_such_*") == []


def test_model_card_contents() -> None:
    card = lowres_har.model_card("r3d_18")
    assert card.input_keys == ("video",)
    assert card.inputs["video"].shape() == (3, 16, 112, 112)
    assert card.num_classes == 400
    assert card.paper is not None and card.paper.year == 2018
    assert "CVPR" in card.paper.citation()
    assert card.reported_results and card.reported_results[0].dataset == "Kinetics-400"
    assert card.classifier == ("fc",)


def test_unknown_model_names_alternatives() -> None:
    with pytest.raises(KeyError, match="r3d_18"):
        lowres_har.create_model("r3d")


def test_duplicate_registration_rejected() -> None:
    card = ModelCard(
        name="r3d_18", summary="", inputs={"video": InputSpec(3, 8, (32, 32))}, num_classes=2
    )
    with pytest.raises(ValueError, match="already registered"):
        register_model(card)(lambda num_classes: nn.Linear(1, num_classes))


def test_bad_model_kwarg() -> None:
    with pytest.raises(TypeError, match="unexpected model arguments"):
        lowres_har.create_model("r3d_18", depth=3)
