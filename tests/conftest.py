"""Shared fixtures: a tiny SynthActions dataset, an isolated data home, the real clips."""

from __future__ import annotations

from pathlib import Path

import pytest

import lowres_har  # noqa: F401  (torchvision guard before lightning)

REPO = Path(__file__).resolve().parents[1]
REAL_CLIPS = REPO.parent / "shared" / "data" / "real_clips"
CONF = Path(__file__).parent / "conf"


@pytest.fixture(scope="session")
def data_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session-wide ``LOWRES_HAR_HOME`` so CLI tests share one rendered tiny dataset."""
    return tmp_path_factory.mktemp("lowres_har_home")


@pytest.fixture(autouse=True)
def _isolated_home(data_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOWRES_HAR_HOME", str(data_home))


@pytest.fixture(scope="session")
def tiny_synth(data_home: Path) -> Path:
    """SynthActions with 3 videos per class, 8 frames of 32×32 (the ``synth_tiny`` config's data)."""
    from lowres_har.data import SynthActionsDataModule

    dm = SynthActionsDataModule(
        root=str(data_home / "synth_actions"),
        videos_per_class=3,
        video_frames=8,
        video_size=32,
        workers=0,
    )
    dm.prepare_data()
    return dm.dataset_dir


@pytest.fixture(scope="session")
def real_clips() -> Path:
    if not (REAL_CLIPS / "manifest.csv").is_file():
        pytest.skip(f"real clips not found at {REAL_CLIPS} (../shared/data/real_clips)")
    return REAL_CLIPS
