"""IXMAS (INRIA Xmas Motion Acquisition Sequences): multi-view daily actions, frame folders.

The INRIA release has one recording ("take") per actor and repetition, ``<actor><n>`` (``alba1``
… ``srikumar3``), each seen by 5 synchronised cameras. Unpacked into one folder::

    <root>/alba1_png/cam0/img0000.png …     (390×291 colour frames, one folder per camera 0–4)
    <root>/alba1_png/cam4/…
    <root>/alba1_truth.txt                  (one integer action id per frame, line i = frame i)

The truth file may also sit in ``<root>/truth/`` or inside ``<root>/alba1_png/``. Ids: 0 nothing,
1 check watch, 2 cross arms, 3 scratch head, 4 sit down, 5 get up, 6 turn around, 7 walk, 8 wave,
9 punch, 10 kick, 11 point, 12 pick up, 13 throw (over head), 14 throw (from bottom up).

An action instance is a maximal run of consecutive frames with the same non-zero id. Each
instance gives one split entry per selected camera: ``(<take>_png/cam<c>, label, (start, end))``
where ``[start, end)`` indexes the camera folder's frames in the order
:func:`lowres_har.data.io.read_video` reads them (natural order of the file names).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lowres_har.data.datamodules import VideoDataModule
from lowres_har.data.datasets.base import VideoEntry, check_videos
from lowres_har.data.io import IMAGE_SUFFIXES

__all__ = [
    "IXMAS_ACTIONS",
    "IXMAS_ACTORS",
    "IXMAS_CAMERAS",
    "IXMAS_PROTOCOLS",
    "IXMASDataModule",
    "IXMASInstance",
    "IXMASTake",
    "find_takes",
    "ixmas_instances",
    "read_truth",
    "truth_runs",
]

log = logging.getLogger("lowres_har")

#: Action names by truth id (0 is "nothing", never an instance).
IXMAS_ACTIONS: tuple[str, ...] = (
    "nothing",
    "check_watch",
    "cross_arms",
    "scratch_head",
    "sit_down",
    "get_up",
    "turn_around",
    "walk",
    "wave",
    "punch",
    "kick",
    "point",
    "pick_up",
    "throw_over_head",
    "throw_from_bottom_up",
)

#: The twelve actors of the INRIA release.
IXMAS_ACTORS: tuple[str, ...] = (
    "alba",
    "amel",
    "andreas",
    "chiara",
    "clare",
    "daniel",
    "florian",
    "hedlena",
    "julien",
    "nicolas",
    "pao",
    "srikumar",
)

#: Camera numbers (``cam0`` … ``cam4``; cam4 looks down from the ceiling).
IXMAS_CAMERAS: tuple[int, ...] = (0, 1, 2, 3, 4)

#: ``protocol -> (action ids used as classes, in label order; actors left out)``. ``"11"`` is the
#: protocol of Weinland et al. (CVIU 2006, ICCV 2007) that later papers follow: actions 1–10 and
#: 12 (no point, no throws), without the actors Pao and Srikumar. ``"all"``: every action id 1–14
#: and every actor.
IXMAS_PROTOCOLS: dict[str, tuple[tuple[int, ...], tuple[str, ...]]] = {
    "11": ((1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12), ("pao", "srikumar")),
    "all": (tuple(range(1, 15)), ()),
}

_TAKE = re.compile(r"^([a-z]+)(\d+)$")


@dataclass(frozen=True)
class IXMASTake:
    """One recording: an actor performing the action sequence once.

    Attributes:
        name: ``<actor><n>``, e.g. ``"alba1"``.
        actor: the actor, e.g. ``"alba"``.
        take: the repetition number ``n``.
        frames_dir: ``<root>/<name>_png`` (holds ``cam0`` … ``cam4``; may be missing).
        truth: the per-frame label file.
    """

    name: str
    actor: str
    take: int
    frames_dir: Path
    truth: Path


@dataclass(frozen=True)
class IXMASInstance:
    """One action instance seen by one camera.

    Attributes:
        actor: actor name.
        take: repetition number.
        camera: camera number 0–4.
        action: truth id 1–14 (see :data:`IXMAS_ACTIONS`).
        start: first frame (0-based, inclusive).
        end: one past the last frame.
        folder: the camera's frame folder.
    """

    actor: str
    take: int
    camera: int
    action: int
    start: int
    end: int
    folder: Path


def read_truth(path: str | Path) -> list[int]:
    """Per-frame action ids of a ``<take>_truth.txt`` file.

    Args:
        path: the truth file: one integer 0–14 per line, line ``i`` labelling frame ``i``.
            Blank lines at the end are ignored.

    Returns:
        One id per frame.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: a line is not an integer in 0–14 (the message gives the line number), or
            the file labels no frame.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: IXMAS truth file not found")
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    labels: list[int] = []
    for n, line in enumerate(lines, 1):
        try:
            number = float(line)  # "7", " 7 " and "7.0" (a MATLAB-written file) are all 7
        except ValueError:
            number = float("nan")
        if not number.is_integer():
            raise ValueError(f"{path}:{n}: expected one integer action id per line, got {line!r}")
        value = int(number)
        if not 0 <= value < len(IXMAS_ACTIONS):
            raise ValueError(f"{path}:{n}: action id {value} outside 0..{len(IXMAS_ACTIONS) - 1}")
        labels.append(value)
    if not labels:
        raise ValueError(f"{path}: empty truth file")
    return labels


def truth_runs(labels: Sequence[int]) -> list[tuple[int, int, int]]:
    """Action instances of a per-frame labelling: maximal runs of one non-zero id.

    Args:
        labels: action id per frame.

    Returns:
        ``(action, start, end)`` per run, in time order, frames ``[start, end)``.
    """
    runs: list[tuple[int, int, int]] = []
    start = 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            if labels[start] != 0:
                runs.append((labels[start], start, i))
            start = i
    return runs


def find_takes(root: str | Path) -> list[IXMASTake]:
    """Every take that has a truth file under ``root``, sorted by actor and take.

    Truth files are looked for as ``<root>/<take>_truth.txt``, ``<root>/truth/<take>_truth.txt``
    and ``<root>/<take>_png/<take>_truth.txt``.

    Raises:
        FileNotFoundError: ``root`` does not exist or holds no truth file.
        ValueError: a truth file name is not ``<actor><n>_truth.txt``, or a take has two truth
            files.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"IXMAS root {root} not found: expected <take>_png/cam0..cam4 frame folders and "
            "<take>_truth.txt label files (e.g. alba1_png/, alba1_truth.txt)"
        )
    found: dict[str, IXMASTake] = {}
    candidates = sorted(root.glob("*_truth.txt")) + sorted((root / "truth").glob("*_truth.txt"))
    candidates += sorted(root.glob("*_png/*_truth.txt"))
    for path in candidates:
        name = path.name[: -len("_truth.txt")]
        match = _TAKE.match(name)
        if match is None:
            raise ValueError(f"{path}: truth file name must be <actor><take number>_truth.txt")
        if name in found:
            raise ValueError(f"two truth files for take {name}: {found[name].truth} and {path}")
        found[name] = IXMASTake(
            name=name,
            actor=match.group(1),
            take=int(match.group(2)),
            frames_dir=root / f"{name}_png",
            truth=path,
        )
    if not found:
        raise FileNotFoundError(
            f"{root}: no IXMAS truth files found (looked for {root}/<take>_truth.txt, "
            f"{root}/truth/<take>_truth.txt and {root}/<take>_png/<take>_truth.txt)"
        )
    return sorted(found.values(), key=lambda t: (t.actor, t.take))


def ixmas_instances(
    takes: Iterable[IXMASTake],
    actions: Sequence[int],
    cameras: Sequence[int] = IXMAS_CAMERAS,
    min_frames: int = 1,
) -> list[IXMASInstance]:
    """Action instances of ``takes`` whose id is in ``actions``, one per camera.

    Args:
        takes: recordings (from :func:`find_takes`).
        actions: truth ids to keep (others, and 0, are ignored).
        cameras: camera numbers, one instance each.
        min_frames: drop runs shorter than this many frames.

    Returns:
        Instances ordered by take, time, then camera.
    """
    wanted = set(actions)
    out: list[IXMASInstance] = []
    for take in takes:
        for action, start, end in truth_runs(read_truth(take.truth)):
            if action not in wanted or end - start < min_frames:
                continue
            for cam in cameras:
                out.append(
                    IXMASInstance(
                        take.actor,
                        take.take,
                        cam,
                        action,
                        start,
                        end,
                        take.frames_dir / f"cam{cam}",
                    )
                )
    return out


def _count_frames(folder: Path) -> int:
    return sum(1 for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


class IXMASDataModule(VideoDataModule):
    """IXMAS multi-view actions from the INRIA frame folders and per-frame truth files.

    Every action instance is used once per selected camera; splits are by actor (the same
    person never appears in two splits). Defaults: protocol ``"11"`` (11 actions, 10 actors),
    test actors ``julien`` and ``nicolas``, validation actor ``hedlena``, training on the other
    seven. For leave-one-actor-out cross-validation set ``test_actors=[<actor>]`` and
    ``val_actors=[]`` (validation then reuses the test actor, as the papers, which have no
    validation set, do) and run once per actor.

    Args:
        root: folder holding ``<take>_png/cam<c>/`` frame folders and ``<take>_truth.txt``.
        cameras: cameras to use (0–4).
        protocol: ``"11"`` (actions 1–10 and 12; actors pao and srikumar left out) or ``"all"``
            (all 14 action ids, all actors).
        test_actors: actors of the test split.
        val_actors: actors of the validation split; empty means "the test actors".
        min_frames: ignore action runs shorter than this (annotation glitches).
        **kwargs: :class:`~lowres_har.data.datamodules.VideoDataModule` arguments.
    """

    def __init__(
        self,
        root: str,
        cameras: Sequence[int] = IXMAS_CAMERAS,
        protocol: str = "11",
        test_actors: Sequence[str] = ("julien", "nicolas"),
        val_actors: Sequence[str] = ("hedlena",),
        min_frames: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if protocol not in IXMAS_PROTOCOLS:
            raise ValueError(f"protocol must be one of {tuple(IXMAS_PROTOCOLS)}, got {protocol!r}")
        cams = [int(c) for c in cameras]
        if not cams or len(set(cams)) != len(cams) or any(c not in IXMAS_CAMERAS for c in cams):
            raise ValueError(
                f"cameras must be distinct numbers from {IXMAS_CAMERAS}, got {cameras}"
            )
        if not test_actors:
            raise ValueError("test_actors must name at least one actor")
        both = sorted(set(test_actors) & set(val_actors))
        if both:
            raise ValueError(f"actors in both test_actors and val_actors: {both}")
        if min_frames < 1:
            raise ValueError(f"min_frames must be >= 1, got {min_frames}")
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise FileNotFoundError(
                f"IXMAS root {self.root} not found: expected <take>_png/cam0..cam4 frame folders "
                "and <take>_truth.txt label files (e.g. alba1_png/, alba1_truth.txt)"
            )
        self.cameras = cams
        self.protocol = protocol
        self.actions, self.excluded_actors = IXMAS_PROTOCOLS[protocol]
        self.test_actors = list(test_actors)
        self.val_actors = list(val_actors)
        self.min_frames = min_frames
        self.class_names = [IXMAS_ACTIONS[a] for a in self.actions]
        self._instances: dict[str, list[IXMASInstance]] = {}

    def split_actors(self, split: str, takes: Sequence[IXMASTake] | None = None) -> list[str]:
        """Actors of ``split`` among the takes found under ``root``.

        Args:
            split: ``"train"``, ``"val"`` or ``"test"``.
            takes: the takes under ``root`` (found with :func:`find_takes` when ``None``).

        Raises:
            ValueError: a configured actor has no take (the message lists those found), or
                training would have no actor.
        """
        if split not in ("train", "val", "test"):
            raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
        takes = find_takes(self.root) if takes is None else takes
        available = sorted({t.actor for t in takes} - set(self.excluded_actors))
        for what, actors in (("test_actors", self.test_actors), ("val_actors", self.val_actors)):
            unknown = [a for a in actors if a not in available]
            if unknown:
                raise ValueError(
                    f"{what}: {unknown} not among the IXMAS actors under {self.root} for "
                    f"protocol {self.protocol!r} (available: {available})"
                )
        if split == "test":
            return list(self.test_actors)
        if split == "val":
            return list(self.val_actors or self.test_actors)
        held_out = set(self.test_actors) | set(self.val_actors)
        train = [a for a in available if a not in held_out]
        if not train:
            raise ValueError(f"no training actors left under {self.root} (all are held out)")
        return train

    def split_videos(self, split: str) -> list[VideoEntry]:
        takes = find_takes(self.root)
        actors = set(self.split_actors(split, takes))
        chosen = [t for t in takes if t.actor in actors]
        instances = ixmas_instances(chosen, self.actions, self.cameras, self.min_frames)
        label_of = {a: i for i, a in enumerate(self.actions)}
        entries: list[VideoEntry] = [
            (str(x.folder), label_of[x.action], (x.start, x.end)) for x in instances
        ]
        what = f"IXMAS protocol {self.protocol} {split} ({', '.join(sorted(actors))})"
        present = {e[0] for e in check_videos(entries, on_error=self.on_error, what=what)}
        instances = [x for x in instances if str(x.folder) in present]
        instances = self._check_lengths(instances, what)
        self._instances[split] = instances
        return [(str(x.folder), label_of[x.action], (x.start, x.end)) for x in instances]

    def _check_lengths(self, instances: list[IXMASInstance], what: str) -> list[IXMASInstance]:
        counts: dict[Path, int] = {}
        bad: list[str] = []
        kept: list[IXMASInstance] = []
        for x in instances:
            if x.folder not in counts:
                counts[x.folder] = _count_frames(x.folder)
            if x.end > counts[x.folder]:
                bad.append(
                    f"{IXMAS_ACTIONS[x.action]} [{x.start}, {x.end}) in {x.folder} "
                    f"({counts[x.folder]} frames)"
                )
            else:
                kept.append(x)
        if bad:
            msg = (
                f"{what}: {len(bad)} of {len(instances)} instances end past the last frame of "
                f"their folder, the truth file is longer than the frames ({'; '.join(bad[:3])}"
                + ("; ..." if len(bad) > 3 else "")
                + ")"
            )
            if self.on_error == "raise":
                raise ValueError(msg + "; set on_error: skip to train without them")
            log.warning("%s; skipped (on_error: skip)", msg)
        return kept

    def instances(self, split: str) -> list[IXMASInstance]:
        """Actor, take, camera and frame range of each entry of ``split_videos(split)`` (aligned
        with ``dataset.videos`` and ``video_index``)."""
        if split not in self._instances:
            self.split_videos(split)
        return list(self._instances[split])
