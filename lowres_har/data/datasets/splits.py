"""Helpers shared by the dataset parsers: stratified seeded splits, list-file reading and clear
"not found" errors."""

from __future__ import annotations

import zlib
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "check_fraction",
    "read_lines",
    "require_dir",
    "require_file",
    "stratified_split",
]


def require_dir(path: str | Path, what: str) -> Path:
    """``path`` as a :class:`Path` if it is a directory.

    Raises:
        FileNotFoundError: naming ``what`` and the expected path.
    """
    p = Path(path).expanduser()
    if not p.is_dir():
        raise FileNotFoundError(f"{what} not found: expected a directory at {p}")
    return p


def require_file(path: str | Path, what: str) -> Path:
    """``path`` as a :class:`Path` if it is a file.

    Raises:
        FileNotFoundError: naming ``what`` and the expected path.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"{what} not found: expected a file at {p}")
    return p


def read_lines(path: str | Path) -> list[tuple[int, str]]:
    """Non-blank lines of a text file as ``(line_number, stripped_line)``.

    Tolerant of what annotation files from the wild contain: a UTF-8 byte-order mark, Windows
    (``\\r\\n``) line ends, leading/trailing whitespace and blank lines. Line numbers are 1-based
    and count blank lines, so they match what an editor shows.

    Raises:
        ValueError: the file is not valid UTF-8 (the message names the file).
    """
    p = Path(path)
    try:
        text = p.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(f"{p}: not a UTF-8 text file ({err})") from err
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def check_fraction(name: str, value: float | None, *, allow_zero: bool = True) -> float:
    """Validate a split fraction; ``None`` counts as ``0``.

    Raises:
        ValueError: the value is outside ``[0, 1)`` (``(0, 1)`` with ``allow_zero=False``).
    """
    v = 0.0 if value is None else float(value)
    low_ok = v >= 0.0 if allow_zero else v > 0.0
    if not (low_ok and v < 1.0):
        bound = "[0, 1)" if allow_zero else "(0, 1)"
        raise ValueError(f"{name} must be in {bound}, got {value!r}")
    return v


def _class_seed(seed: int, label: Hashable) -> np.random.Generator:
    # Seed each class from its own name, so adding or removing a class never reshuffles the others.
    digest = zlib.crc32(repr(label).encode("utf-8"))
    return np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, digest]))


def _part_sizes(n: int, fractions: Sequence[float]) -> list[int]:
    """Videos of a class of ``n`` given to each carved part (the rest stays in the first)."""
    sizes = [int(np.floor(n * f + 0.5)) for f in fractions]
    wanted = [f > 0 for f in fractions]
    # every non-zero part gets at least one video when the class can spare it
    if n > sum(wanted):
        sizes = [max(s, 1) if w else s for s, w in zip(sizes, wanted, strict=True)]
    # the remainder (training) keeps at least one video
    while sum(sizes) > n - 1 and any(sizes):
        largest = int(np.argmax(sizes))
        sizes[largest] -= 1
    return sizes


def stratified_split(
    labels: Sequence[Hashable],
    fractions: Mapping[str, float],
    *,
    seed: int = 0,
    keys: Sequence[str] | None = None,
    rest: str = "train",
) -> dict[str, list[int]]:
    """Split item indices per class into a remainder and carved parts of given fractions.

    For every class the items are ordered by ``keys`` (e.g. their paths, so the result does not
    depend on the order the items were listed in), permuted with a generator seeded by ``seed``
    and the class itself, and cut into parts of ``round(n * fraction)`` items. A part with a
    non-zero fraction gets at least one item of every class that has more items than there are
    carved parts; the remainder ``rest`` always keeps at least one item of every class. The same
    inputs and seed give the same split on every machine.

    Args:
        labels: the class of each item (any hashable; ints or names), length ``N``.
        fractions: ``{part_name: fraction}``, e.g. ``{"val": 0.2, "test": 0.2}``; each fraction in
            ``[0, 1)`` and their sum below 1.
        seed: split seed.
        keys: a sort key per item (length ``N``); default the item index.
        rest: name of the remainder part.

    Returns:
        ``{rest: [...], **{part: [...]}}``, each a sorted list of item indices into ``labels``.
    """
    names = list(fractions)
    if rest in fractions:
        raise ValueError(f"the remainder part {rest!r} cannot also be a carved part")
    values = [check_fraction(f"fraction of {n!r}", fractions[n]) for n in names]
    if sum(values) >= 1.0:
        raise ValueError(f"split fractions must sum to less than 1, got {dict(fractions)}")
    if keys is not None and len(keys) != len(labels):
        raise ValueError(f"keys has {len(keys)} entries but labels has {len(labels)}")
    by_class: dict[Hashable, list[int]] = {}
    for i, label in enumerate(labels):
        by_class.setdefault(label, []).append(i)
    out: dict[str, list[int]] = {rest: [], **{n: [] for n in names}}
    for label, members in by_class.items():
        if keys is not None:
            members = sorted(members, key=lambda i: (keys[i], i))
        order = _class_seed(seed, label).permutation(len(members))
        shuffled = [members[j] for j in order]
        start = 0
        for name, size in zip(names, _part_sizes(len(members), values), strict=True):
            out[name].extend(shuffled[start : start + size])
            start += size
        out[rest].extend(shuffled[start:])
    return {name: sorted(idx) for name, idx in out.items()}
