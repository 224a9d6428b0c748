"""Shared fixtures: a tiny SynthActions dataset, an isolated data home, the real clips."""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import lowres_har  # noqa: F401  (torchvision guard before lightning)

REPO = Path(__file__).resolve().parents[1]
REAL_CLIPS = REPO.parent / "shared" / "data" / "real_clips"
CONF = Path(__file__).parent / "conf"
FIXTURES = Path(__file__).parent / "data"

# Under pytest-xdist every worker gets one intra-op thread: n workers × n torch threads
# oversubscribe the cores and small convolutions then run many times slower.
if os.environ.get("PYTEST_XDIST_WORKER"):
    import torch

    torch.set_num_threads(1)


def load_fixture_maker(name: str) -> Callable[[Path], Path]:
    """``make_fixture(root) -> Path`` from ``tests/data/<name>/make_fixture.py``."""
    script = FIXTURES / name / "make_fixture.py"
    spec = importlib.util.spec_from_file_location(f"lowres_har_fixture_{name}", script)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_fixture  # type: ignore[no-any-return]


def fit_args(datamodule: str, root: Path, tmp_path: Path, *extra: str) -> list[str]:
    """``lowres-har fit`` arguments for one quick epoch of a tiny ``c3d_tiny`` on a dataset
    fixture; ``extra`` adds data or trainer options (``--data.fold=2``, ``--test_after_fit=true``)."""
    return [
        "fit",
        "--model=lowres_har.tasks.VideoClassificationTask",
        "--model.model=c3d_tiny",
        "--model.model_kwargs={width: 8}",
        f"--data={datamodule}",
        f"--data.root={root}",
        "--data.num_workers=0",
        "--data.batch_size=4",
        "--data.num_frames=4",
        "--trainer.max_epochs=1",
        "--trainer.accelerator=cpu",
        "--trainer.logger=false",
        "--trainer.enable_checkpointing=false",
        "--trainer.enable_progress_bar=false",
        f"--trainer.default_root_dir={tmp_path}",
        *extra,
    ]


@pytest.fixture
def log_capture(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> pytest.LogCaptureFixture:
    """``caplog`` that sees the "lowres_har" logger (the CLI makes it non-propagating)."""
    monkeypatch.setattr(logging.getLogger("lowres_har"), "propagate", True)
    caplog.set_level(logging.INFO, logger="lowres_har")
    return caplog


@pytest.fixture(scope="session")
def dataset_fixture(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``dataset_fixture("hmdb51")`` builds (once per session) the tiny dataset that
    ``tests/data/hmdb51/make_fixture.py`` writes in the official layout and returns its root."""
    made: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in made:
            made[name] = load_fixture_maker(name)(tmp_path_factory.mktemp(f"fixture_{name}"))
        return made[name]

    return get


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


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One torch thread for the test (tiny networks run fastest that way, also outside xdist)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
