"""SynthActions: an offline, procedurally rendered human-action video dataset.

Every clip shows one articulated 2D-projected human figure (head, torso, two-segment arms and
legs) performing one of :data:`SYNTH_CLASSES`. Joint angles follow class-specific trajectories
in time; the body is posed in 3D (lateral, up, forward axes), rotated about its vertical axis
(yaw) and projected with a weak pinhole camera, so facing direction, foreshortening and depth
order are visible (which is what makes ``turn`` recognisable).

Everything that is *not* the action is randomised independently of the class: position, figure
size, tempo, phase, yaw, body proportions, limb thickness, clothing/skin/hair colours, a
cluttered textured background, moving distractor objects, camera pan and shake, brightness
flicker and Gaussian sensor noise. The actions are easy to tell apart at 112x112 but hard at
12x16 pixels, where the limbs are sub-pixel.

:func:`render_clip` renders one clip in memory; :func:`generate_synth_actions` renders a whole
dataset to H.264 mp4 files with stratified train/val/test split lists (see its docstring for the
on-disk layout). Output depends only on ``seed`` and the parameters, never on the number of
worker processes.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from lowres_har._mp import process_pool

__all__ = ["SYNTH_CLASSES", "SYNTH_VERSION", "generate_synth_actions", "render_clip"]

logger = logging.getLogger(__name__)

SYNTH_CLASSES: tuple[str, ...] = (
    "walk",
    "run",
    "jump",
    "wave_one_hand",
    "wave_both_hands",
    "clap",
    "squat",
    "punch",
    "kick",
    "bend",
    "sit_down",
    "turn",
)
"""Class names; the position in the tuple is the integer label."""

SYNTH_VERSION: int = 2
"""Rendering version; part of the cache key in ``meta.json``. Bump whenever pixels change."""

_BAND = 0.125  # rows above/below the central 3:4 band that a 4:3 (W:H) centre crop removes
_NOMINAL_FPS = 16.0  # frame rate that motion timing refers to in render_clip
_SUBPIX_BITS = 4  # cv2 fractional bits for anti-aliased sub-pixel drawing
_SUBPIX = float(1 << _SUBPIX_BITS)

# Joint indices of the skeleton (body frame: x = lateral, y = up, z = forward, unit = height).
_PELVIS, _NECK, _HEAD = 0, 1, 2
_SHOULDER = (3, 4)  # side -1, side +1
_ELBOW = (5, 6)
_WRIST = (7, 8)
_HIP = (9, 10)
_KNEE = (11, 12)
_ANKLE = (13, 14)
_TOE = (15, 16)
_NUM_JOINTS = 17
_SIDES = (-1.0, 1.0)

_ANGLE_KEYS = ("u_flex", "u_abd", "f_flex", "f_abd", "t_flex", "t_abd", "knee")


# --------------------------------------------------------------------------------------------
# Motion: class-specific joint-angle trajectories
# --------------------------------------------------------------------------------------------


@dataclass
class _Motion:
    """Joint-angle trajectories for one clip; angles in degrees, every array shape ``(T,)``.

    Per-side arrays are indexed ``[0]`` for side -1 and ``[1]`` for side +1. ``u_*`` is the upper
    arm, ``f_*`` the forearm, ``t_*`` the thigh; ``flex`` rotates a limb from hanging down
    towards the front, ``abd`` rotates it outwards (sideways); ``knee`` bends the shin backwards
    relative to the thigh. ``pitch`` bends the torso forward, ``twist`` turns the shoulders,
    ``yaw`` is the facing direction offset (0 = towards the camera, +90 = facing screen right),
    ``lift`` raises the whole body (figure heights), ``fwd`` moves it forward (figure heights).
    ``anchor`` names which feet stay planted when the pose changes (``None`` = locomotion).
    """

    angles: dict[str, np.ndarray]  # key -> (2, T)
    pitch: np.ndarray
    twist: np.ndarray
    yaw: np.ndarray
    lift: np.ndarray
    fwd: np.ndarray
    anchor: tuple[int, ...] | None


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _bump(c: np.ndarray, start: float, stop: float) -> np.ndarray:
    """Half-sine bump over the phase window ``[start, stop)``, 0 elsewhere."""
    u = (c - start) / (stop - start)
    return np.where((u >= 0) & (u < 1), np.sin(np.pi * np.clip(u, 0.0, 1.0)), 0.0)


def _rest_motion(num_frames: int) -> _Motion:
    z = np.zeros(num_frames)
    ang = {k: np.zeros((2, num_frames)) for k in _ANGLE_KEYS}
    ang["u_flex"] += 4.0
    ang["u_abd"] += 7.0
    ang["f_flex"] += 14.0
    ang["f_abd"] += 5.0
    ang["t_abd"] += 3.0
    ang["knee"] += 3.0
    return _Motion(ang, z.copy(), z.copy(), z.copy(), z.copy(), z.copy(), (0, 1))


def _class_motion(label: int, t: np.ndarray, rng: np.random.Generator, duration: float) -> _Motion:
    """Trajectories of class ``label`` at times ``t`` (seconds, already multiplied by tempo).

    ``duration`` is the clip length in the same (tempo-scaled) seconds; one-shot actions start at
    a random time inside it.
    """
    name = SYNTH_CLASSES[label]
    n = t.shape[0]
    m = _rest_motion(n)
    a = m.angles
    phase = rng.uniform(0.0, 1.0)
    active = int(rng.integers(0, 2))  # arm/leg used by one-sided actions
    leg_phase = np.array([[0.0], [np.pi]])  # the two legs swing in antiphase

    if name in ("walk", "run"):
        run = name == "run"
        freq = 1.35 if run else 0.9
        th = 2 * np.pi * (freq * t + phase)[None, :] + leg_phase  # (2, T)
        swing = 40.0 if run else 22.0
        a["t_flex"] = swing * np.sin(th) + (8.0 if run else 0.0)
        a["knee"] = (15.0 if run else 5.0) + (85.0 if run else 40.0) * np.maximum(
            0, np.cos(th)
        ) ** 2
        a["u_flex"] = -(35.0 if run else 18.0) * np.sin(th)
        a["f_flex"] = a["u_flex"] + (85.0 if run else 18.0)
        a["u_abd"] = a["u_abd"] + (6.0 if run else 0.0)
        m.pitch[:] = 14.0 if run else 3.0
        m.fwd = (0.55 if run else 0.27) * t
        if run:
            m.lift = 0.035 * np.maximum(0.0, np.sin(2 * th[0]))
        m.anchor = None
    elif name == "jump":
        c = np.mod(0.75 * t + phase, 1.0)
        crouch = _bump(c, 0.02, 0.36) + _bump(c, 0.68, 0.98)
        air = np.where((c >= 0.36) & (c < 0.68), np.sin(np.pi * (c - 0.36) / 0.32), 0.0)
        air = np.clip(air, 0.0, 1.0)
        a["t_flex"] = np.broadcast_to(70.0 * crouch + 15.0 * air, (2, n)).copy()
        a["knee"] = np.broadcast_to(3.0 + 110.0 * crouch + 25.0 * air, (2, n)).copy()
        a["u_flex"] = np.broadcast_to(4.0 - 45.0 * crouch + 150.0 * air, (2, n)).copy()
        a["f_flex"] = a["u_flex"] + 15.0
        m.pitch = 32.0 * crouch
        m.lift = 0.26 * air**0.8
    elif name in ("wave_one_hand", "wave_both_hands"):
        th = 2 * np.pi * (1.8 * t + phase)
        sides = (0, 1) if name == "wave_both_hands" else (active,)
        for si in sides:
            a["u_abd"][si] = 95.0 + 4.0 * np.sin(th)
            a["u_flex"][si] = 12.0
            a["f_abd"][si] = 162.0 + 28.0 * np.sin(th)
            a["f_flex"][si] = 12.0
    elif name == "clap":
        th = 2 * np.pi * (1.8 * t + phase)
        open_ = 0.5 + 0.5 * np.cos(th)
        a["u_flex"][:] = 35.0
        a["u_abd"][:] = 5.0
        a["f_flex"][:] = 85.0
        a["f_abd"] = np.broadcast_to(-46.0 + 52.0 * open_, (2, n)).copy()
    elif name == "squat":
        d = 0.5 - 0.5 * np.cos(2 * np.pi * (0.55 * t + phase))
        a["t_flex"] = np.broadcast_to(95.0 * d, (2, n)).copy()
        a["knee"] = np.broadcast_to(3.0 + 125.0 * d, (2, n)).copy()
        a["t_abd"] = a["t_abd"] + 6.0 * d
        a["u_flex"] = np.broadcast_to(4.0 + 82.0 * d, (2, n)).copy()
        a["f_flex"] = a["u_flex"] + 8.0
        m.pitch = 32.0 * d
    elif name == "sit_down":
        length = rng.uniform(0.7, 1.0)
        start = rng.uniform(0.0, max(duration - length - 0.3, 0.05))
        s = _smoothstep((t - start) / length)
        a["t_flex"] = np.broadcast_to(88.0 * s, (2, n)).copy()
        a["knee"] = np.broadcast_to(3.0 + 85.0 * s, (2, n)).copy()
        a["u_flex"] = np.broadcast_to(4.0 + 22.0 * s, (2, n)).copy()
        a["f_flex"] = np.broadcast_to(14.0 + 50.0 * s, (2, n)).copy()
        m.pitch = 30.0 * np.sin(np.pi * s) - 6.0 * s
    elif name == "punch":
        c = np.mod(1.1 * t + phase, 1.0)
        p = np.sqrt(_bump(c, 0.3, 0.75))  # fast extension, short hold, retraction
        a["u_flex"][:] = 35.0
        a["u_abd"][:] = 12.0
        a["f_flex"][:] = 140.0
        a["f_abd"][:] = -25.0
        a["u_flex"][active] = 35.0 + 55.0 * p
        a["f_flex"][active] = 140.0 - 50.0 * p
        a["f_abd"][active] = -25.0 + 25.0 * p
        a["t_abd"][:] = 8.0
        a["t_flex"][0] += 12.0 if active == 1 else -8.0
        a["t_flex"][1] += 12.0 if active == 0 else -8.0
        m.twist = (-18.0 if active == 1 else 18.0) * p  # punching shoulder forward
    elif name == "kick":
        c = np.mod(0.8 * t + phase, 1.0)
        k = np.exp(-(((c - 0.5) / 0.18) ** 2))
        a["t_flex"][active] = 88.0 * k
        a["knee"][active] = 3.0 + 90.0 * np.sin(np.pi * k) ** 2
        a["u_abd"][:] = 28.0
        a["f_flex"][:] = 60.0
        a["u_flex"][:] = 15.0
        m.pitch = -12.0 * k
        m.anchor = (1 - active,)
    elif name == "bend":
        g = (0.5 - 0.5 * np.cos(2 * np.pi * (0.45 * t + phase))) ** 0.8
        m.pitch = 85.0 * g
        a["u_flex"] = np.broadcast_to(4.0 + 70.0 * g, (2, n)).copy()
        a["f_flex"] = a["u_flex"] + 8.0
        a["knee"] = a["knee"] + 12.0 * g
        a["t_flex"] = a["t_flex"] - 12.0 * g
    elif name == "turn":
        length = rng.uniform(0.8, 1.3)
        start = rng.uniform(0.0, max(duration - length - 0.1, 0.05))
        s = _smoothstep((t - start) / length)
        # yaw change is set by the caller (it depends on the initial yaw); store progress here
        m.yaw = s
        during = np.sin(np.pi * s)
        th = 2 * np.pi * (1.6 * t + phase)[None, :] + leg_phase
        a["t_flex"] = a["t_flex"] + 18.0 * during * np.maximum(0, np.sin(th))
        a["knee"] = a["knee"] + 30.0 * during * np.maximum(0, np.sin(th))
        a["u_abd"] = a["u_abd"] + 8.0 * during
    else:  # pragma: no cover - guarded by render_clip
        raise ValueError(f"unknown class {name!r}")
    return m


# --------------------------------------------------------------------------------------------
# Skeleton and projection
# --------------------------------------------------------------------------------------------


@dataclass
class _Body:
    """Body proportions in figure heights (standing height is ~1)."""

    torso: float
    neck: float
    head_r: float
    shoulder_hw: float
    hip_hw: float
    upper_arm: float
    forearm: float
    thigh: float
    shin: float
    foot: float

    @property
    def height(self) -> float:
        return self.shin + self.thigh + self.torso + self.neck + 2 * self.head_r


def _random_body(rng: np.random.Generator) -> _Body:
    j = rng.uniform(0.92, 1.08, size=10)
    return _Body(
        torso=0.30 * j[0],
        neck=0.035 * j[1],
        head_r=0.072 * j[2],
        shoulder_hw=0.10 * j[3],
        hip_hw=0.062 * j[4],
        upper_arm=0.17 * j[5],
        forearm=0.16 * j[6],
        thigh=0.245 * j[7],
        shin=0.245 * j[8],
        foot=0.07 * j[9],
    )


def _limb_dir(flex: np.ndarray, abd: np.ndarray, side: float) -> np.ndarray:
    """Unit direction ``(T, 3)`` of a limb from flexion/abduction angles in radians ``(T,)``."""
    return np.stack(
        [side * np.sin(abd), -np.cos(abd) * np.cos(flex), np.cos(abd) * np.sin(flex)], axis=-1
    )


def _rot_y(v: np.ndarray, ang: np.ndarray) -> np.ndarray:
    """Rotate body-frame vectors ``(T, ..., 3)`` about the vertical axis by ``ang`` (T,) rad."""
    c = np.cos(ang).reshape((-1,) + (1,) * (v.ndim - 2))
    s = np.sin(ang).reshape((-1,) + (1,) * (v.ndim - 2))
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    return np.stack([x * c + z * s, y, -x * s + z * c], axis=-1)


def _skeleton(m: _Motion, body: _Body) -> np.ndarray:
    """Joint positions ``(T, J, 3)`` in the body frame (figure heights), feet on the ground."""
    n = m.pitch.shape[0]
    rad = {k: np.deg2rad(v) for k, v in m.angles.items()}
    pitch = np.deg2rad(m.pitch)
    twist = np.deg2rad(m.twist)
    j = np.zeros((n, _NUM_JOINTS, 3))
    up = np.stack([np.zeros(n), np.cos(pitch), np.sin(pitch)], axis=-1)
    lateral = _rot_y(np.broadcast_to(np.array([1.0, 0.0, 0.0]), (n, 3)), twist)
    j[:, _NECK] = body.torso * up
    j[:, _HEAD] = j[:, _NECK] + (body.neck + body.head_r) * up
    for i, side in enumerate(_SIDES):
        sh = j[:, _NECK] - 0.025 * up + side * body.shoulder_hw * lateral
        j[:, _SHOULDER[i]] = sh
        upper = _rot_y(_limb_dir(rad["u_flex"][i], rad["u_abd"][i], side), twist)
        j[:, _ELBOW[i]] = sh + body.upper_arm * upper
        fore = _rot_y(_limb_dir(rad["f_flex"][i], rad["f_abd"][i], side), twist)
        j[:, _WRIST[i]] = j[:, _ELBOW[i]] + body.forearm * fore
        hip = np.array([side * body.hip_hw, 0.0, 0.0])
        j[:, _HIP[i]] = hip
        j[:, _KNEE[i]] = hip + body.thigh * _limb_dir(rad["t_flex"][i], rad["t_abd"][i], side)
        shin_dir = _limb_dir(rad["t_flex"][i] - rad["knee"][i], rad["t_abd"][i], side)
        j[:, _ANKLE[i]] = j[:, _KNEE[i]] + body.shin * shin_dir
        j[:, _TOE[i]] = j[:, _ANKLE[i]] + body.foot * np.array([0.0, -0.15, 1.0])
    if m.anchor is not None:  # keep the planted feet where they are at rest
        planted = j[:, [_ANKLE[i] for i in m.anchor], 2].mean(axis=1)
        j[..., 2] -= planted[:, None]
    feet = j[:, [_ANKLE[0], _ANKLE[1], _TOE[0], _TOE[1]], 1].min(axis=1)
    j[..., 1] += (-feet + m.lift)[:, None]
    j[..., 2] += m.fwd[:, None]
    return j


# --------------------------------------------------------------------------------------------
# Background, distractors, colours
# --------------------------------------------------------------------------------------------


def _rand_color(rng: np.random.Generator) -> np.ndarray:
    """A random RGB colour ``(3,)`` in 0..255 with varied saturation and value."""
    hsv = np.array(
        [[[rng.uniform(0, 180), rng.uniform(0, 255), rng.uniform(30, 255)]]], dtype=np.float32
    )
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)[0, 0].astype(np.float64)


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Cluttered textured background, ``uint8`` ``(h, w, 3)`` RGB."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ang = rng.uniform(0, 2 * np.pi)
    proj = np.cos(ang) * xx + np.sin(ang) * yy
    proj = (proj - proj.min()) / max(float(np.ptp(proj)), 1.0)
    c0, c1 = _rand_color(rng), _rand_color(rng)
    img = c0.astype(np.float32) + (c1 - c0).astype(np.float32) * proj[..., None]
    if rng.random() < 0.6:  # floor / wall split at a random horizon
        horizon = rng.uniform(0.35, 0.8) * h
        floor = _rand_color(rng).astype(np.float32)
        wt = np.clip((yy - horizon) / 2.0 + 0.5, 0.0, 1.0)[..., None] * rng.uniform(0.4, 0.9)
        img = img * (1 - wt) + floor * wt
    # low-frequency colour blotches
    k = int(rng.integers(3, 7))
    blotch = rng.uniform(-1, 1, size=(k, k, 3)).astype(np.float32)
    img += cv2.resize(blotch, (w, h), interpolation=cv2.INTER_CUBIC) * rng.uniform(8, 30)
    # texture: fine noise, stripes or checks
    kind = int(rng.integers(0, 3))
    amp = rng.uniform(4, 18)
    if kind == 0:
        g = int(rng.integers(max(h // 10, 2), max(h // 2, 3)))
        tex = cv2.resize(rng.uniform(-1, 1, size=(g, g)).astype(np.float32), (w, h))
    elif kind == 1:
        period = rng.uniform(0.04, 0.2) * h
        a2 = rng.uniform(0, np.pi)
        tex = np.sign(np.sin(2 * np.pi * (np.cos(a2) * xx + np.sin(a2) * yy) / period))
    else:
        period = rng.uniform(0.06, 0.25) * h
        tex = np.sign(np.sin(np.pi * xx / period) * np.sin(np.pi * yy / period))
    img += amp * tex.astype(np.float32)[..., None]
    canvas = np.clip(img, 0, 255).astype(np.uint8)
    # clutter: random rectangles, ellipses and thick lines, blended
    overlay = canvas.copy()
    for _ in range(int(rng.integers(3, 11))):
        col = tuple(float(c) for c in _rand_color(rng))
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        sx, sy = rng.uniform(0.03, 0.25) * w, rng.uniform(0.03, 0.25) * h
        shape = int(rng.integers(0, 3))
        if shape == 0:
            p0 = (int(cx - sx), int(cy - sy))
            p1 = (int(cx + sx), int(cy + sy))
            cv2.rectangle(overlay, p0, p1, col, -1, cv2.LINE_AA)
        elif shape == 1:
            axes = (int(sx), int(sy))
            cv2.ellipse(
                overlay, (int(cx), int(cy)), axes, rng.uniform(0, 180), 0, 360, col, -1, cv2.LINE_AA
            )
        else:
            th = max(1, int(rng.uniform(0.01, 0.05) * h))
            p1 = (int(cx + rng.uniform(-1, 1) * 2 * sx), int(cy + rng.uniform(-1, 1) * 2 * sy))
            cv2.line(overlay, (int(cx), int(cy)), p1, col, th, cv2.LINE_AA)
    alpha = rng.uniform(0.15, 0.45)
    canvas = cv2.addWeighted(overlay, alpha, canvas, 1 - alpha, 0.0)
    return canvas


@dataclass
class _Distractor:
    kind: int
    color: tuple[float, ...]  # RGB 0..255
    pos0: np.ndarray  # (2,) px
    vel: np.ndarray  # (2,) px per frame
    axes: tuple[float, float]
    angle0: float
    spin: float  # degrees per frame
    front: bool

    def draw(self, img: np.ndarray, i: int) -> None:
        x, y = self.pos0 + self.vel * i
        ang = self.angle0 + self.spin * i
        c = (int(round(x * _SUBPIX)), int(round(y * _SUBPIX)))
        ax = (int(self.axes[0] * _SUBPIX), int(self.axes[1] * _SUBPIX))
        if self.kind == 0:
            cv2.ellipse(img, c, ax, ang, 0, 360, self.color, -1, cv2.LINE_AA, _SUBPIX_BITS)
        else:
            box = cv2.boxPoints(((x, y), (2 * self.axes[0], 2 * self.axes[1]), ang))
            pts = np.round(box * _SUBPIX).astype(np.int32)
            cv2.fillConvexPoly(img, pts, self.color, cv2.LINE_AA, _SUBPIX_BITS)


def _distractors(
    rng: np.random.Generator, h: int, w: int, off: int, num_frames: int
) -> list[_Distractor]:
    """1-2 objects crossing the view (canvas coordinates; view starts at ``off``)."""
    out = []
    for _ in range(int(rng.integers(1, 3))):
        axes = (rng.uniform(0.025, 0.08) * w, rng.uniform(0.025, 0.08) * h)
        start = np.array([rng.uniform(0, w), rng.uniform(0, h)])
        end = np.array([rng.uniform(0, w), rng.uniform(0, h)])
        frames_to_cross = rng.uniform(0.7, 2.5) * num_frames
        vel = (end - start) / frames_to_cross
        pos0 = start + off - vel * rng.uniform(0, 0.4) * num_frames
        out.append(
            _Distractor(
                kind=int(rng.integers(0, 2)),
                color=tuple(float(c) for c in _rand_color(rng)),
                pos0=pos0,
                vel=vel,
                axes=axes,
                angle0=rng.uniform(0, 180),
                spin=rng.uniform(-6, 6),
                front=bool(rng.random() < 0.25),
            )
        )
    return out


def _contrasting_color(rng: np.random.Generator, ref: np.ndarray, min_dist: float) -> np.ndarray:
    """A random colour at least ``min_dist`` (RGB Euclidean) from ``ref`` when possible."""
    best, best_d = _rand_color(rng), -1.0
    for _ in range(24):
        c = _rand_color(rng)
        d = float(np.linalg.norm(c - ref))
        if d >= min_dist:
            return c
        if d > best_d:
            best, best_d = c, d
    return best


def _skin_color(rng: np.random.Generator) -> np.ndarray:
    tones = np.array(
        [[255, 220, 190], [235, 190, 150], [200, 150, 110], [150, 100, 70], [100, 65, 45]],
        dtype=np.float64,
    )
    k = rng.uniform(0, len(tones) - 1)
    i = int(k)
    c = tones[i] + (tones[min(i + 1, len(tones) - 1)] - tones[i]) * (k - i)
    return np.clip(c + rng.normal(0, 8, 3), 0, 255)


# --------------------------------------------------------------------------------------------
# Clip rendering
# --------------------------------------------------------------------------------------------


def _shade(color: np.ndarray, depth: float) -> tuple[float, ...]:
    """Darken far parts, lighten near ones (``depth`` in figure heights, + = towards camera)."""
    f = 1.0 + 0.9 * float(np.clip(depth, -0.25, 0.25))
    return tuple(float(v) for v in np.clip(color * f, 0, 255))


def _pt(p: np.ndarray) -> tuple[int, int]:
    return int(round(float(p[0]) * _SUBPIX)), int(round(float(p[1]) * _SUBPIX))


def render_clip(
    label: int,
    rng: np.random.Generator,
    *,
    num_frames: int = 32,
    size: int = 112,
    fps: float = _NOMINAL_FPS,
) -> np.ndarray:
    """Render one SynthActions clip.

    Args:
        label: class index into :data:`SYNTH_CLASSES` (``0 <= label < 12``).
        rng: random generator; the clip is a deterministic function of its state. It is advanced.
        num_frames: ``T``, number of frames.
        size: frame height and width in pixels (square frames; the default is 112).
        fps: frame rate in frames per second that the motion timing assumes (default 16, so the
            default 32 frames last 2 s at tempo 1).

    Returns:
        ``uint8`` RGB clip of shape ``(T, size, size, 3)``.
    """
    if not 0 <= label < len(SYNTH_CLASSES):
        raise ValueError(f"label must be in [0, {len(SYNTH_CLASSES)}), got {label}")
    if num_frames < 1 or size < 8:
        raise ValueError(f"need num_frames >= 1 and size >= 8, got {num_frames} and {size}")
    n, sz = int(num_frames), int(size)
    tempo = rng.uniform(0.7, 1.4)
    t = np.arange(n) / float(fps) * tempo  # tempo-scaled seconds
    duration = n / float(fps) * tempo

    # ---- motion ----
    m = _class_motion(label, t, rng, duration)
    for k in _ANGLE_KEYS:  # small per-video idle jitter on every angle
        w = rng.uniform(0.2, 0.9, size=(2, 1))
        ph = rng.uniform(0, 2 * np.pi, size=(2, 1))
        m.angles[k] = m.angles[k] + rng.uniform(1.0, 4.0) * np.sin(2 * np.pi * w * t + ph)
    m.pitch = m.pitch + rng.uniform(0.0, 3.0) * np.sin(2 * np.pi * rng.uniform(0.2, 0.6) * t)
    yaw0 = rng.choice([-1.0, 1.0]) * rng.uniform(20.0, 75.0)
    if SYNTH_CLASSES[label] == "turn":
        yaw1 = -np.sign(yaw0) * rng.uniform(20.0, 75.0)
        delta = yaw1 - yaw0  # through the frontal view ...
        if rng.random() < 0.5:  # ... or the long way round, through the back view
            delta = delta - np.sign(delta) * 360.0
        yaw = yaw0 + delta * m.yaw
    else:
        yaw = yaw0 + rng.uniform(-8.0, 8.0) * t / max(duration, 1e-6) + m.yaw
    body = _random_body(rng)
    joints = _skeleton(m, body)  # (T, J, 3) body frame
    world = _rot_y(joints, np.deg2rad(yaw))  # x: screen right, z: towards the camera

    # ---- camera ----
    # The eLR view (12×16) centre-crops the square frame to its middle 3:4 band (rows 1/8 to
    # 7/8); keep the standing figure with raised arms inside that band so no view loses the legs
    # or head (only the top of a high jump may leave it).
    frac = rng.uniform(0.5, 0.64)  # figure height / frame height
    s0 = frac * sz / body.height  # px per figure height at reference depth
    z0 = rng.uniform(5.0, 9.0)  # camera distance in figure heights
    cam_h = rng.uniform(0.45, 0.8)  # camera height in figure heights
    pan = rng.normal(0, 0.04 * sz, size=2) * (rng.random() < 0.4)  # px over the whole clip
    shake = rng.uniform(0.0, 0.006 * sz) * (rng.random() < 0.5)  # px per frame
    margin = int(math.ceil(float(np.abs(pan).max()) + 3 * shake + 2))
    hc = sz + 2 * margin
    cam = pan[None, :] * (np.arange(n) / max(n - 1, 1))[:, None]
    cam = cam + np.clip(rng.normal(0, 1, size=(n, 2)), -3, 3) * shake
    cam_off = np.round(cam).astype(int) + margin  # (T, 2) top-left of the view in the canvas

    ratio = z0 / np.maximum(z0 - world[..., 2], 0.5)  # (T, J) perspective magnification
    ground_px = rng.uniform((_BAND + 1.1 * frac) * sz, (1.0 - _BAND - 0.03) * sz)  # feet row
    horizon = ground_px - cam_h * s0
    path = world[:, _PELVIS, 0] * ratio[:, _PELVIS] * s0  # root screen path (px)
    mid = rng.uniform(0.22, 0.78) * sz
    x0 = mid - 0.5 * (path.min() + path.max())
    px = np.empty(world.shape[:2] + (2,))
    px[..., 0] = margin + x0 + s0 * ratio * world[..., 0]
    px[..., 1] = margin + horizon - s0 * ratio * (world[..., 1] - cam_h)
    depth = world[..., 2]
    scale_t = s0 * ratio[:, _PELVIS]  # (T,) px per figure height

    # ---- appearance ----
    bg = _background(rng, hc, hc)
    bg_mean = bg.reshape(-1, 3).mean(axis=0).astype(np.float64)
    shirt = _contrasting_color(rng, bg_mean, 120.0)
    pants = _contrasting_color(rng, bg_mean, 120.0)
    skin = _skin_color(rng)
    hair = _rand_color(rng) * rng.uniform(0.2, 0.7)
    shoes = _rand_color(rng) * rng.uniform(0.3, 1.0)
    sleeves_long = rng.random() < 0.5
    limb_w = rng.uniform(0.055, 0.085)  # limb thickness in figure heights
    torso_w = limb_w * rng.uniform(1.5, 2.1)
    distractors = _distractors(rng, sz, sz, margin, n)

    segs: list[tuple[int, int, np.ndarray, float, bool]] = []  # (j0, j1, colour, width, hand)
    for i in range(2):
        segs.append((_HIP[i], _KNEE[i], pants, limb_w * 1.15, False))
        segs.append((_KNEE[i], _ANKLE[i], pants, limb_w, False))
        segs.append((_ANKLE[i], _TOE[i], shoes, limb_w * 0.8, False))
        segs.append((_SHOULDER[i], _ELBOW[i], shirt, limb_w, False))
        segs.append((_ELBOW[i], _WRIST[i], shirt if sleeves_long else skin, limb_w * 0.9, True))

    frames = np.empty((n, sz, sz, 3), dtype=np.uint8)
    for f in range(n):
        img = bg.copy()
        for d in distractors:
            if not d.front:
                d.draw(img, f)
        p, dep, sc = px[f], depth[f], scale_t[f]
        items: list[tuple[float, Callable[[], None]]] = []
        for j0, j1, col, wdt, hand in segs:
            dd = 0.5 * (dep[j0] + dep[j1])
            items.append((dd, _segment_drawer(img, p[j0], p[j1], _shade(col, dd), wdt * sc)))
            if hand:
                r = 0.6 * limb_w * sc
                items.append((dd + 1e-3, _disc_drawer(img, p[j1], r, _shade(skin, dd))))
        torso_idx = [_SHOULDER[0], _SHOULDER[1], _HIP[1], _HIP[0]]
        td = float(dep[torso_idx].mean())
        items.append(
            (
                td,
                _torso_drawer(
                    img,
                    p[torso_idx],
                    p[_PELVIS],
                    p[_NECK],
                    _shade(shirt, td),
                    _shade(pants, td),
                    torso_w * sc,
                ),
            )
        )
        facing = math.cos(math.radians(float(yaw[f])))  # > 0: face visible
        side_x = math.sin(math.radians(float(yaw[f])))
        items.append(
            (
                float(dep[_HEAD]),
                _head_drawer(
                    img, p[_HEAD], body.head_r * sc, facing, side_x, _shade(skin, dep[_HEAD]), hair
                ),
            )
        )
        items.sort(key=lambda it: it[0])
        for _, draw in items:
            draw()
        for d in distractors:
            if d.front:
                d.draw(img, f)
        oy, ox = cam_off[f, 1], cam_off[f, 0]
        frames[f] = img[oy : oy + sz, ox : ox + sz]

    # ---- photometric nuisances (vectorised over the clip) ----
    gain = rng.uniform(0.65, 1.25) * (1.0 + rng.normal(0, 0.015, size=n))
    gain = gain * (1.0 + rng.uniform(0, 0.03) * np.sin(2 * np.pi * rng.uniform(0.5, 3) * t))
    bias = rng.uniform(-20, 20) + rng.normal(0, 1.0, size=n)
    sigma = rng.uniform(2.0, 5.0)
    out = frames.astype(np.float32)
    blur = rng.uniform(0.0, 0.8)
    if blur > 0.3:
        for f in range(n):
            out[f] = cv2.GaussianBlur(out[f], (0, 0), blur)
    out *= gain.astype(np.float32)[:, None, None, None]
    out += bias.astype(np.float32)[:, None, None, None]
    out += rng.standard_normal(out.shape, dtype=np.float32) * np.float32(sigma)
    np.clip(out, 0, 255, out=out)
    return np.rint(out).astype(np.uint8)


def _segment_drawer(
    img: np.ndarray, p0: np.ndarray, p1: np.ndarray, col: tuple[float, ...], width: float
) -> Callable[[], None]:
    def draw() -> None:
        cv2.line(img, _pt(p0), _pt(p1), col, max(1, int(round(width))), cv2.LINE_AA, _SUBPIX_BITS)

    return draw


def _disc_drawer(
    img: np.ndarray, c: np.ndarray, r: float, col: tuple[float, ...]
) -> Callable[[], None]:
    def draw() -> None:
        rr = max(1, int(round(r * _SUBPIX)))
        cv2.circle(img, _pt(c), rr, col, -1, cv2.LINE_AA, _SUBPIX_BITS)

    return draw


def _torso_drawer(
    img: np.ndarray,
    quad: np.ndarray,
    pelvis: np.ndarray,
    neck: np.ndarray,
    shirt: tuple[float, ...],
    pants: tuple[float, ...],
    width: float,
) -> Callable[[], None]:
    def draw() -> None:
        pts = np.round(quad * _SUBPIX).astype(np.int32)
        hull = cv2.convexHull(pts)
        cv2.fillConvexPoly(img, hull, shirt, cv2.LINE_AA, _SUBPIX_BITS)
        wd = max(1, int(round(width)))
        upper = pelvis + 0.12 * (neck - pelvis)
        cv2.line(img, _pt(upper), _pt(neck), shirt, wd, cv2.LINE_AA, _SUBPIX_BITS)
        hips = [quad[2], quad[3]]
        cv2.line(img, _pt(hips[0]), _pt(hips[1]), pants, max(1, wd // 2), cv2.LINE_AA, _SUBPIX_BITS)
        cv2.circle(
            img, _pt(pelvis), max(1, int(0.5 * wd * _SUBPIX)), pants, -1, cv2.LINE_AA, _SUBPIX_BITS
        )

    return draw


def _head_drawer(
    img: np.ndarray,
    c: np.ndarray,
    r: float,
    facing: float,
    side_x: float,
    skin: tuple[float, ...],
    hair: np.ndarray,
) -> Callable[[], None]:
    def draw() -> None:
        rr = max(1.0, r)
        hc = tuple(float(v) for v in hair)
        face_c = c + np.array([0.18 * rr * side_x, 0.0])
        hair_c = c + np.array([-0.3 * rr * side_x, -0.2 * rr])
        axes_face = (max(1, int(0.88 * rr * _SUBPIX)), max(1, int(rr * _SUBPIX)))
        axes_hair = (max(1, int(0.92 * rr * _SUBPIX)), max(1, int(0.95 * rr * _SUBPIX)))
        if facing >= 0:
            cv2.ellipse(img, _pt(hair_c), axes_hair, 0, 0, 360, hc, -1, cv2.LINE_AA, _SUBPIX_BITS)
            cv2.ellipse(img, _pt(face_c), axes_face, 0, 0, 360, skin, -1, cv2.LINE_AA, _SUBPIX_BITS)
        else:  # seen from behind: hair covers most of the head
            cv2.ellipse(img, _pt(face_c), axes_face, 0, 0, 360, skin, -1, cv2.LINE_AA, _SUBPIX_BITS)
            back_c = c + np.array([-0.05 * rr * side_x, -0.05 * rr])
            cv2.ellipse(img, _pt(back_c), axes_hair, 0, 0, 360, hc, -1, cv2.LINE_AA, _SUBPIX_BITS)

    return draw


# --------------------------------------------------------------------------------------------
# Dataset generation
# --------------------------------------------------------------------------------------------

_SPLITS = ("train", "val", "test")


def _video_rng(seed: int, label: int, index: int) -> np.random.Generator:
    """Generator for video ``index`` of class ``label``: independent of workers and order."""
    return np.random.default_rng(np.random.SeedSequence([seed, 0, label, index]))


def _split_counts(n: int, split: Sequence[float]) -> list[int]:
    """Largest-remainder split of ``n`` items by fractions; every split with a positive
    fraction gets at least one item when ``n`` allows it."""
    frac = np.asarray(split, dtype=np.float64) / float(np.sum(split))
    raw = frac * n
    counts = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - counts), kind="stable")[: n - int(counts.sum())]:
        counts[i] += 1
    positive = np.flatnonzero(frac > 0)
    for i in positive:
        if counts[i] == 0 and n >= len(positive):
            donor = int(np.argmax(counts))
            counts[donor] -= 1
            counts[i] += 1
    return [int(c) for c in counts]


def _assign_splits(seed: int, label: int, n: int, split: Sequence[float]) -> list[list[int]]:
    """Video indices ``0..n-1`` of one class divided into (train, val, test), each sorted."""
    perm = np.random.default_rng(np.random.SeedSequence([seed, 1, label])).permutation(n)
    counts = _split_counts(n, split)
    bounds = np.cumsum([0, *counts])
    return [sorted(int(i) for i in perm[bounds[k] : bounds[k + 1]]) for k in range(3)]


def _rel_path(label: int, index: int) -> str:
    name = SYNTH_CLASSES[label]
    return f"videos/{name}/{name}_{index:04d}.mp4"


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _render_job(args: tuple[str, int, int, int, int, int, int]) -> str:
    """Render and encode one video (runs in worker processes; must stay picklable)."""
    from lowres_har.data.io import write_video

    root, label, index, num_frames, size, fps, seed = args
    final = Path(root) / _rel_path(label, index)
    final.parent.mkdir(parents=True, exist_ok=True)
    rng = _video_rng(seed, label, index)
    clip = render_clip(label, rng, num_frames=num_frames, size=size, fps=float(fps))
    tmp = final.with_name(f".{final.stem}.{os.getpid()}.tmp.mp4")
    try:
        write_video(tmp, clip, fps=fps, codec="h264")
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()
    return str(final)


def _params_diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [
        f"{k}: {old.get(k)!r} on disk vs {new.get(k)!r} requested"
        for k in keys
        if old.get(k) != new.get(k)
    ]


def _say(msg: str, progress: bool) -> None:
    """Log ``msg``; print it too when progress is on and logging would not show it."""
    if logger.isEnabledFor(logging.INFO) and logger.hasHandlers():
        logger.info(msg)
    elif progress:
        print(msg, file=sys.stderr, flush=True)


def generate_synth_actions(
    root: str | Path,
    *,
    videos_per_class: int = 60,
    num_frames: int = 32,
    size: int = 112,
    fps: int = 16,
    seed: int = 0,
    split: tuple[float, float, float] = (0.6, 0.2, 0.2),
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Render the SynthActions dataset into ``root`` (cached) and return ``root``.

    Layout written under ``root``::

        meta.json                 # written last (atomically): the completion marker
        classes.txt               # one class name per line; 0-based line number = label
        train.txt, val.txt, test.txt   # "videos/<class>/<class>_<i:04d>.mp4 <label>" per line
        videos/<class>/<class>_<i:04d>.mp4   # H.264, (num_frames, size, size) RGB at ``fps``

    Args:
        root: output folder (created if missing).
        videos_per_class: videos rendered per class (``12 * videos_per_class`` in total).
        num_frames: frames per video.
        size: frame height and width in pixels.
        fps: frame rate (frames per second) of the written files and of the motion timing.
        seed: master seed; video ``i`` of class ``c`` uses ``SeedSequence([seed, 0, c, i])``, so
            files are byte-identical for the same seed whatever ``workers`` is.
        split: (train, val, test) fractions, applied per class (stratified, seeded permutation).
        workers: worker processes; ``None`` uses ``os.cpu_count()``, ``0`` renders in-process.
        overwrite: delete an existing dataset in ``root`` (its ``videos/`` folder) and render anew.
        progress: show a rich progress bar and print status lines to stderr.

    Returns:
        ``Path(root)``.

    Raises:
        ValueError: invalid arguments, or ``root`` already holds a finished dataset rendered with
            another version or other parameters (and ``overwrite`` is false).
    """
    root = Path(root)
    if videos_per_class < 1 or num_frames < 1 or size < 8 or fps < 1:
        raise ValueError(
            "need videos_per_class >= 1, num_frames >= 1, size >= 8 and fps >= 1; got "
            f"{videos_per_class}, {num_frames}, {size}, {fps}"
        )
    if len(split) != 3 or min(split) < 0 or not math.isclose(sum(split), 1.0, abs_tol=1e-6):
        raise ValueError(f"split must be 3 non-negative fractions summing to 1, got {split}")
    params: dict[str, Any] = {
        "videos_per_class": int(videos_per_class),
        "num_frames": int(num_frames),
        "size": int(size),
        "fps": int(fps),
        "seed": int(seed),
        "split": [float(s) for s in split],
    }
    meta_path = root / "meta.json"
    old: dict[str, Any] | None = None
    if meta_path.is_file():
        try:
            old = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # unreadable marker: treat the root as partial
            old = None
        if not isinstance(old, dict):
            old = None
    if old is not None:
        same = old.get("version") == SYNTH_VERSION and old.get("params") == params
        if same and not overwrite:
            _say(f"SynthActions: reusing cached dataset in {root}", progress)
            return root
        if not overwrite:
            diffs = _params_diff(old.get("params", {}), params)
            if old.get("version") != SYNTH_VERSION:
                diffs.insert(0, f"version: {old.get('version')!r} on disk vs {SYNTH_VERSION}")
            raise ValueError(
                f"{root} already holds a SynthActions dataset with different settings ("
                + "; ".join(diffs)
                + "); use another root or pass overwrite=True to replace it"
            )
    if overwrite:
        if meta_path.exists():
            meta_path.unlink()
        shutil.rmtree(root / "videos", ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    for stale in (root / "videos").glob("*/.*.tmp.mp4"):  # left by an interrupted run
        stale.unlink(missing_ok=True)

    jobs = [
        (str(root), label, i, int(num_frames), int(size), int(fps), int(seed))
        for label in range(len(SYNTH_CLASSES))
        for i in range(videos_per_class)
    ]
    n_workers = (os.cpu_count() or 1) if workers is None else int(workers)
    n_workers = min(n_workers, len(jobs))
    start = time.perf_counter()
    _run_jobs(jobs, n_workers, progress)

    lines: dict[str, list[str]] = {s: [] for s in _SPLITS}
    for label in range(len(SYNTH_CLASSES)):
        for name, idx in zip(
            _SPLITS, _assign_splits(seed, label, videos_per_class, split), strict=True
        ):
            lines[name].extend(f"{_rel_path(label, i)} {label}" for i in idx)
    _atomic_write_text(root / "classes.txt", "".join(f"{c}\n" for c in SYNTH_CLASSES))
    for name in _SPLITS:
        _atomic_write_text(root / f"{name}.txt", "".join(f"{ln}\n" for ln in lines[name]))
    meta = {
        "version": SYNTH_VERSION,
        "params": params,
        "classes": list(SYNTH_CLASSES),
        "counts": {name: len(lines[name]) for name in _SPLITS},
    }
    _atomic_write_text(meta_path, json.dumps(meta, indent=2) + "\n")
    _say(
        f"SynthActions: rendered {len(jobs)} videos into {root} in "
        f"{time.perf_counter() - start:.1f} s",
        progress,
    )
    return root


def _run_jobs(
    jobs: list[tuple[str, int, int, int, int, int, int]], workers: int, progress: bool
) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    columns = (
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, disable=not progress, transient=False) as bar:
        task = bar.add_task("SynthActions", total=len(jobs))
        if workers <= 0:
            for job in jobs:
                _render_job(job)
                bar.advance(task)
            return
        # forked workers (see lowres_har._mp); they only run numpy and OpenCV
        with process_pool(workers) as pool:
            futures = [pool.submit(_render_job, job) for job in jobs]
            try:
                for fut in as_completed(futures):
                    fut.result()
                    bar.advance(task)
            except BaseException:
                for fut in futures:
                    fut.cancel()
                raise
