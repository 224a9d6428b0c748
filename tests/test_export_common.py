"""``lowres_har.export.common``: where export input shapes come from."""

from __future__ import annotations

from lowres_har.export.common import input_shapes, load_model


def test_input_shapes_prefer_the_trained_pipeline_over_the_card() -> None:
    loaded = load_model("r3d_18", width=4)
    assert input_shapes(loaded) == {"video": (3, 16, 112, 112)}  # the model card's
    loaded.extra["pipeline"] = {
        "num_frames": 8,
        "views": {"video": {"size": [12, 16], "upsample_to": [32, 32]}},
    }
    assert input_shapes(loaded) == {"video": (3, 8, 32, 32)}  # what the checkpoint trained on
    loaded.extra["pipeline"]["views"]["video"]["upsample_to"] = None
    assert input_shapes(loaded) == {"video": (3, 8, 12, 16)}  # no upsampling: the view's size
    assert input_shapes(loaded, num_frames=4, size=(24, 24)) == {"video": (3, 4, 24, 24)}


def test_model_clip_shape_wins_over_the_pipeline() -> None:
    loaded = load_model("msn", kernel_size=3, widths=[4, 8, 8], fc_widths=[8], num_frames=8)
    loaded.extra["pipeline"] = {"num_frames": 16, "views": {"video": {"size": [64, 64]}}}
    shapes = input_shapes(loaded)
    assert shapes["video"] == (3, 8, 32, 32) and shapes["mask"] == (1, 8, 32, 32)
