"""Streaming rewrite of 3D-CNN clip models: one frame in per step, explicit temporal state.

The Edge TPU runs no 3D operator and no tensor of more than 4 dimensions, so a clip model
``(B, C, T, H, W) -> logits`` cannot run there as it is. :func:`to_streaming` rewrites it into a
:class:`StreamingModel` that takes **one frame** ``(B, C, H, W)`` per input per step, carries the
temporal context in explicit state tensors (inputs and outputs of ``forward``) and uses only
operators on tensors of at most 4 dimensions: ``conv2d``, ``max_pool2d`` / ``avg_pool2d``,
element-wise add / sub / mul / maximum, ReLU, sigmoid, mean / max over ``(H, W)``, channel
concatenation, channel slices, reshape and linear layers.

How the rewrite works
---------------------
The clip model is traced with :func:`torch.export.export` and rebuilt node by node (branches the
logits do not use, such as feature lists, are dropped). Every 5-D value ``v`` of the clip graph
becomes a *stream* with a :class:`Signature` ``(offset, stride, length)``: its frame ``j``
(``0 <= j < length``) is computed at step ``offset + stride * j``. The network inputs are
``(0, 1, T)``: step ``s`` feeds clip frame ``s``.

- **Conv3d** (temporal kernel ``k``, stride ``st``, padding ``p``, dilation ``d``) becomes the sum
  of one ``conv2d`` per temporal tap over the last ``d (k - 1) + 1`` frames of its input (the
  current frame and a ring buffer of the earlier ones); the output has
  ``offset_in + stride_in (d (k - 1) - p)``, ``stride_in * st`` and PyTorch's output length. A
  BatchNorm right after a convolution is folded into its weights; any other BatchNorm becomes a
  per-channel multiply-add. ``fuse_taps=True`` runs one ``conv2d`` over the channel-concatenated
  window instead (same result, fewer operators).
- **Zero padding in time**: the ring buffers start at zero (the left padding) and, after the
  producer's last frame, zeros are pushed on the steps where padding frames would have come (the
  *flush* steps after the clip: :attr:`StreamingModel.num_steps` ``>= num_frames``).
- **MaxPool3d / AvgPool3d** (no temporal padding): spatial ``max_pool2d`` / ``avg_pool2d`` of each
  frame, then the maximum / mean over the buffered frames.
- **Element-wise operations and concatenation** of two streams need equal strides and lengths; the
  stream that is ready earlier is delayed through its ring buffer (e.g. ResNet shortcuts).
- **Global temporal reductions** (``amax`` over ``(T, H, W)``, mean, adaptive average pooling):
  an accumulator state is updated on the producer's frames; everything after it (the classifier)
  is computed on every step, and the logits of step ``num_steps - 1`` are the clip's logits.

Ring buffers are shared: a stream keeps one history of the last ``n`` frames it produced, which
serves all its consumers (convolutions, pools, delays). State updates happen only on the
producer's steps: ``new = g * pushed + (1 - g) * old`` with ``g`` and ``1 - g`` columns of the
``gates`` input. The 0/1 gates per step are precomputed in :attr:`StreamingModel.schedule`
(``(num_steps, num_gates)``); row ``s`` is fed at step ``s``.

Cost and scope
--------------
Every layer runs on every step (one static graph, which is what the Edge TPU compiles), so layers
after a temporal stride compute on steps whose result is discarded: the per-clip compute is higher
than the clip model's for temporally strided networks. That is the price of a single static Edge
TPU graph. The logits are exact (within float rounding) after :attr:`~StreamingModel.num_steps`
steps: ``num_frames`` real frames plus the flush steps, which is the warm-up this exact clip mode
needs (:meth:`~StreamingModel.streaming_receptive_field`). The flush adds up every padded
convolution's look-ahead times its input's temporal stride and does not depend on ``T``: 7 steps
for the msn_synth MSN (3×3×3 convolutions, 2×2×2 pooling; 16 frames -> 23 steps), 47 for
r3d_18 (8 frames -> 55 steps). Continuous monitoring runs one clip window at a time: reset the
state (:meth:`~StreamingModel.init_states`) at the start of each window.

Supported: Conv3d (not transposed, zero padding, any groups), BatchNorm3d / 1d (eval), MaxPool3d,
AvgPool3d, AdaptiveAvgPool3d to ``(1, 1, 1)``, ReLU, sigmoid, tanh, add / sub / mul / maximum,
channel concatenation, dropout (eval), global ``amax`` / ``mean`` / ``sum`` reductions, flatten /
view after the global reduction, Linear. Anything else raises :class:`StreamingError` naming the
operator and the module.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, cast

import torch
import torch.nn.functional as F
from torch import Tensor, fx, nn

from lowres_har.export.common import LoadedModel, example_inputs, input_shapes, load_model

__all__ = ["Signature", "StreamLayer", "StreamingError", "StreamingModel", "to_streaming"]

#: batch size of the example inputs the clip model is traced with (2 tells the batch axis apart).
_EXPORT_BATCH = 2
#: resolved gate "index" of a column that is 1 on every step (no multiply emitted).
_ONE = -1
#: resolved gate "index" of a column that is 0 on every step (the term is dropped).
_ZERO = -2


class StreamingError(ValueError):
    """The clip model cannot be rewritten into a streaming graph (unsupported op or layout)."""


class Signature(NamedTuple):
    """When a stream's frames are ready: frame ``j`` is computed at step ``offset + stride * j``.

    Attributes:
        offset: step of frame 0.
        stride: steps between consecutive frames.
        length: number of frames (the clip tensor's ``T`` at this point of the network).
    """

    offset: int
    stride: int
    length: int

    @property
    def last_step(self) -> int:
        """Step at which the last frame is computed."""
        return self.offset + self.stride * (self.length - 1)

    def __str__(self) -> str:
        return f"({self.offset},{self.stride},{self.length})"


@dataclass(frozen=True)
class StreamLayer:
    """One operator of a :class:`StreamingModel`, as :meth:`StreamingModel.describe` lists it.

    Attributes:
        name: module path in the clip model (``"<root>"`` for functional code in ``forward``).
        op: what the step computes (e.g. ``"conv k3 s2 p1"``, ``"history"``, ``"delay 2"``).
        inputs: signatures of the stream inputs (empty for operators after the global pooling).
        output: signature of the output stream; ``None`` for values that are not streams.
        buffer: frames of temporal context the operator reads besides the current one.
        state_shape: shape (batch 1) of the state the operator owns, if any.
        receptive_field: input frames one output frame depends on (streams only).
    """

    name: str
    op: str
    inputs: tuple[Signature, ...]
    output: Signature | None
    buffer: int
    state_shape: tuple[int, ...] | None
    receptive_field: int | None


# --------------------------------------------------------------------------------------------
# per-step operators
# --------------------------------------------------------------------------------------------


@dataclass
class _Env:
    """What the operators of one step read and write."""

    values: list[Tensor | None]
    gates: list[Tensor]
    states: Sequence[Tensor]
    new_states: list[Tensor]

    def get(self, slot: int) -> Tensor:
        value = self.values[slot]
        if value is None:  # pragma: no cover - the builder orders operators topologically
            raise RuntimeError(f"streaming value {slot} read before it was computed")
        return value


def _gated(env: _Env, gate: int, x: Tensor) -> Tensor:
    """``x * gates[gate]`` (``x`` itself for an all-ones gate)."""
    if gate == _ONE:
        return x
    if gate == _ZERO:  # pragma: no cover - the builder never asks for a multiply by zero
        return x * 0.0
    return x * env.gates[gate]


def _mix(env: _Env, gate: int, not_gate: int, new: Tensor, old: Tensor) -> Tensor:
    """``g * new + (1 - g) * old`` with both gate columns from the schedule."""
    if gate == _ONE:
        return new
    return new * env.gates[gate] + old * env.gates[not_gate]


def _history_frame(state: Tensor, size: int, depth: int, channels: int) -> Tensor:
    """Frame pushed ``depth`` pushes before the current step (1 = newest) from a history state."""
    start = (size - depth) * channels
    return state[:, start : start + channels]


class _Op(nn.Module):
    """Base class of the per-step operators; ``run`` reads and writes ``env``."""

    #: attributes holding gate indices (placeholders while building, resolved by ``_finish``).
    gate_fields: tuple[str, ...] = ()
    #: this operator owns a state tensor (``state`` is then its index).
    has_state: bool = False
    #: this operator reads a history (``hist`` is the history's id, resolved by ``_finish``).
    reads_history: bool = False

    def __init__(self, dst: int) -> None:
        super().__init__()
        self.dst = dst
        self.state = -1
        self.hist = -1
        self.hist_state = -1
        self.hist_size = 0

    def state_shape(self) -> tuple[int, ...]:  # pragma: no cover - overridden by stateful ops
        raise NotImplementedError

    def run(self, env: _Env) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class _History(_Op):
    """Ring buffer of the last ``size`` frames a stream pushed, oldest first along channels.

    State ``(B, size * C, H, W)``. On a push step the current frame (times the validity gate when
    a consumer reads zero padding) is appended and the oldest frame dropped. ``dst`` receives the
    (masked) current frame, which the consumers use as their newest tap.
    """

    gate_fields = ("push", "no_push", "valid")
    has_state = True

    def __init__(self, src: int, dst: int, frame: tuple[int, int, int]) -> None:
        super().__init__(dst)
        self.src = src
        self.frame = frame
        self.size = 0
        self.masked = False
        self.push = self.no_push = self.valid = _ONE

    def state_shape(self) -> tuple[int, ...]:
        c, h, w = self.frame
        return (1, self.size * c, h, w)

    def run(self, env: _Env) -> None:
        x = env.get(self.src)
        cur = _gated(env, self.valid, x) if self.masked else x
        env.values[self.dst] = cur
        old = env.states[self.state]
        c = self.frame[0]
        shifted = cur if self.size == 1 else torch.cat([old[:, c:], cur], dim=1)
        env.new_states[self.state] = _mix(env, self.push, self.no_push, shifted, old)


class _Conv(_Op):
    """A Conv3d as per-tap ``conv2d`` over the current frame and its input's history."""

    reads_history = True

    def __init__(
        self,
        src: int,
        dst: int,
        channels: int,
        depths: Sequence[int],
        taps: Sequence[Tensor],
        bias: Tensor | None,
        stride: tuple[int, int],
        padding: tuple[int, int] | str,
        dilation: tuple[int, int],
        groups: int,
        fuse: bool,
    ) -> None:
        super().__init__(dst)
        self.src = src
        self.channels = channels
        self.depths = [int(d) for d in depths]
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        self.fuse = fuse and len(taps) > 1 and groups == 1
        if self.fuse:
            span = self.depths[0]  # depth of the oldest tap
            cout, cin, kh, kw = taps[0].shape
            fused = torch.zeros(cout, (span + 1) * cin, kh, kw, dtype=taps[0].dtype)
            for depth, w in zip(self.depths, taps, strict=True):
                pos = span - depth
                fused[:, pos * cin : (pos + 1) * cin] = w
            self.register_buffer("weight_fused", fused.contiguous())
            self.num_taps = 1
        else:
            for i, w in enumerate(taps):
                self.register_buffer(f"weight{i}", w.contiguous())
            self.num_taps = len(taps)
        self.register_buffer("bias", None if bias is None else bias.contiguous())

    def _conv(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        return F.conv2d(x, weight, bias, self.stride, self.padding, self.dilation, self.groups)

    def run(self, env: _Env) -> None:
        cur = env.get(self.src)
        c = self.channels
        bias = cast(Tensor | None, self.bias)
        if self.fuse:
            span = self.depths[0]
            state = env.states[self.hist_state]
            old = state[:, (self.hist_size - span) * c :] if self.hist_size > span else state
            x = torch.cat([old, cur], dim=1)
            env.values[self.dst] = self._conv(x, cast(Tensor, self.weight_fused), bias)
            return
        out: Tensor | None = None
        for i, depth in enumerate(self.depths):
            weight = cast(Tensor, getattr(self, f"weight{i}"))
            if depth == 0:
                y = self._conv(cur, weight, bias)
            else:
                frame = _history_frame(env.states[self.hist_state], self.hist_size, depth, c)
                y = self._conv(frame, weight, None)
            out = y if out is None else out + y
        env.values[self.dst] = out


class _TemporalPool(_Op):
    """Maximum or mean over the current frame and buffered (already spatially pooled) frames."""

    reads_history = True

    def __init__(self, src: int, dst: int, channels: int, depths: Sequence[int], kind: str) -> None:
        super().__init__(dst)
        self.src = src
        self.channels = channels
        self.depths = [int(d) for d in depths]
        self.kind = kind
        self.scale = 1.0 / len(self.depths)

    def run(self, env: _Env) -> None:
        cur = env.get(self.src)
        out: Tensor | None = None
        for depth in self.depths:
            if depth == 0:
                frame = cur
            else:
                state = env.states[self.hist_state]
                frame = _history_frame(state, self.hist_size, depth, self.channels)
            if out is None:
                out = frame
            elif self.kind == "max":
                out = torch.maximum(out, frame)
            else:
                out = out + frame
        if self.kind == "avg":
            out = cast(Tensor, out) * self.scale
        env.values[self.dst] = out


class _Delay(_Op):
    """The frame a stream pushed ``depth`` pushes ago, read from its history (offset alignment)."""

    reads_history = True

    def __init__(self, dst: int, channels: int, depth: int) -> None:
        super().__init__(dst)
        self.channels = channels
        self.depth = depth

    def run(self, env: _Env) -> None:
        state = env.states[self.hist_state]
        env.values[self.dst] = _history_frame(state, self.hist_size, self.depth, self.channels)


class _Accumulate(_Op):
    """Running max / sum over a stream's frames (a global temporal reduction).

    Per step the frame is reduced over ``dims`` (frame axes, keepdim) with the same reduction,
    giving ``m``; then ``max``: ``acc = first * m + rest * max(acc, m) + idle * acc``; ``mean`` /
    ``sum``: ``acc = acc + valid * m * scale`` (``scale = 1 / T`` for a mean, 1 for a sum).
    State and output ``(B, C', H', W')``.
    """

    gate_fields = ("first", "rest", "idle", "valid")
    has_state = True

    def __init__(
        self,
        src: int,
        dst: int,
        kind: str,
        dims: tuple[int, ...],
        scale: float,
        shape: tuple[int, ...],
    ) -> None:
        super().__init__(dst)
        self.src = src
        self.kind = kind
        self.dims = dims
        self.scale = scale
        self.shape = shape
        self.first = self.rest = self.idle = self.valid = _ONE

    def state_shape(self) -> tuple[int, ...]:
        return (1, *self.shape)

    def run(self, env: _Env) -> None:
        x = env.get(self.src)
        acc = env.states[self.state]
        if self.kind == "max":
            m = x.amax(dim=self.dims, keepdim=True) if self.dims else x
            terms = [_gated(env, self.first, m)]
            if self.rest != _ZERO:
                terms.append(_gated(env, self.rest, torch.maximum(acc, m)))
            if self.idle != _ZERO:
                terms.append(_gated(env, self.idle, acc))
            new = terms[0]
            for t in terms[1:]:
                new = new + t
        else:
            if not self.dims:
                m = x
            elif self.kind == "mean":
                m = x.mean(dim=self.dims, keepdim=True)
            else:
                m = x.sum(dim=self.dims, keepdim=True)
            if self.scale != 1.0:
                m = m * self.scale
            new = acc + _gated(env, self.valid, m)
        env.values[self.dst] = new
        env.new_states[self.state] = new


class _Unary(_Op):
    """ReLU, sigmoid or tanh of one value."""

    def __init__(self, src: int, dst: int, kind: str) -> None:
        super().__init__(dst)
        self.src = src
        self.kind = kind

    def run(self, env: _Env) -> None:
        x = env.get(self.src)
        if self.kind == "relu":
            y = torch.relu(x)
        elif self.kind == "sigmoid":
            y = torch.sigmoid(x)
        else:
            y = torch.tanh(x)
        env.values[self.dst] = y


_Operand = tuple[str, Any]  # ("slot", int) | ("const", buffer name) | ("scalar", float)


class _Binary(_Op):
    """``a + alpha * b``, ``a - alpha * b``, ``a * b``, ``maximum`` or ``minimum``."""

    def __init__(self, dst: int, kind: str, a: _Operand, b: _Operand, alpha: float) -> None:
        super().__init__(dst)
        self.kind = kind
        self.alpha = alpha
        self.operands: list[tuple[str, Any]] = []
        for i, (what, value) in enumerate((a, b)):
            if what == "const":
                self.register_buffer(f"const{i}", value.contiguous())
                self.operands.append(("const", f"const{i}"))
            else:
                self.operands.append((what, value))

    def _operand(self, env: _Env, i: int) -> Tensor | float:
        what, value = self.operands[i]
        if what == "slot":
            return env.get(value)
        if what == "const":
            return cast(Tensor, getattr(self, value))
        return float(value)

    def run(self, env: _Env) -> None:
        a, b = self._operand(env, 0), self._operand(env, 1)
        if self.alpha != 1.0 and self.kind in ("add", "sub"):
            b = b * self.alpha
        if self.kind == "add":
            y = a + b
        elif self.kind == "sub":
            y = a - b
        elif self.kind == "mul":
            y = a * b
        elif self.kind == "maximum":
            y = torch.maximum(torch.as_tensor(a), torch.as_tensor(b))
        else:
            y = torch.minimum(torch.as_tensor(a), torch.as_tensor(b))
        env.values[self.dst] = cast(Tensor, y)


class _Cat(_Op):
    """Concatenation of values along one (frame) axis."""

    def __init__(self, dst: int, srcs: Sequence[int], dim: int) -> None:
        super().__init__(dst)
        self.srcs = list(srcs)
        self.dim = dim

    def run(self, env: _Env) -> None:
        env.values[self.dst] = torch.cat([env.get(s) for s in self.srcs], dim=self.dim)


class _Affine(_Op):
    """Per-channel ``x * scale + shift`` (a BatchNorm that could not be folded)."""

    def __init__(self, src: int, dst: int, scale: Tensor, shift: Tensor) -> None:
        super().__init__(dst)
        self.src = src
        self.register_buffer("scale", scale.contiguous())
        self.register_buffer("shift", shift.contiguous())

    def run(self, env: _Env) -> None:
        scale, shift = cast(Tensor, self.scale), cast(Tensor, self.shift)
        env.values[self.dst] = env.get(self.src) * scale + shift


class _SpatialPool(_Op):
    """``max_pool2d`` / ``avg_pool2d`` of each frame."""

    def __init__(
        self,
        src: int,
        dst: int,
        kind: str,
        kernel: tuple[int, int],
        stride: tuple[int, int],
        padding: tuple[int, int],
        dilation: tuple[int, int],
        ceil_mode: bool,
        count_include_pad: bool,
    ) -> None:
        super().__init__(dst)
        self.src = src
        self.kind = kind
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad

    def pool(self, x: Tensor) -> Tensor:
        """Pool a ``(B, C, H, W)`` frame."""
        if self.kind == "max":
            return F.max_pool2d(
                x, self.kernel, self.stride, self.padding, self.dilation, ceil_mode=self.ceil_mode
            )
        return F.avg_pool2d(
            x,
            self.kernel,
            self.stride,
            self.padding,
            ceil_mode=self.ceil_mode,
            count_include_pad=self.count_include_pad,
        )

    def run(self, env: _Env) -> None:
        env.values[self.dst] = self.pool(env.get(self.src))


class _Reduce(_Op):
    """Max / mean / sum over some axes of a value, keeping them (size 1)."""

    def __init__(self, src: int, dst: int, kind: str, dims: tuple[int, ...]) -> None:
        super().__init__(dst)
        self.src = src
        self.kind = kind
        self.dims = dims

    def run(self, env: _Env) -> None:
        x = env.get(self.src)
        if self.kind == "max":
            y = x.amax(dim=self.dims, keepdim=True)
        elif self.kind == "mean":
            y = x.mean(dim=self.dims, keepdim=True)
        else:
            y = x.sum(dim=self.dims, keepdim=True)
        env.values[self.dst] = y


class _Reshape(_Op):
    """Reshape to ``(B, *tail)`` (the batch axis is kept)."""

    def __init__(self, src: int, dst: int, tail: tuple[int, ...]) -> None:
        super().__init__(dst)
        self.src = src
        self.tail = tail

    def run(self, env: _Env) -> None:
        x = env.get(self.src)
        env.values[self.dst] = x.reshape(x.shape[0], *self.tail)


class _Linear(_Op):
    """A fully connected layer ``x @ weight.T + bias``."""

    def __init__(self, src: int, dst: int, weight: Tensor, bias: Tensor | None) -> None:
        super().__init__(dst)
        self.src = src
        self.register_buffer("weight", weight.contiguous())
        self.register_buffer("bias", None if bias is None else bias.contiguous())

    def run(self, env: _Env) -> None:
        weight, bias = cast(Tensor, self.weight), cast(Tensor | None, self.bias)
        env.values[self.dst] = F.linear(env.get(self.src), weight, bias)


# --------------------------------------------------------------------------------------------
# the streaming module
# --------------------------------------------------------------------------------------------


class StreamingModel(nn.Module):
    """A clip model rewritten to take one frame per step (see the module docstring).

    ``forward(*frames, gates, *states) -> (logits, *new_states)``:

    - ``frames[i]``: ``(B, C_i, H, W)`` float32, frame ``s`` of input ``input_keys[i]`` at step
      ``s`` (zeros on the flush steps ``s >= num_frames``);
    - ``gates``: ``(1, num_gates)`` float32, row ``s`` of :attr:`schedule`;
    - ``states``: in :attr:`state_shapes` order (batch ``B`` instead of 1), zeros at step 0
      (:meth:`init_states`), then the previous step's ``new_states``.

    It returns the logits ``(B, num_classes)`` (those of step ``num_steps - 1`` equal the clip
    model's logits) and the new states. All tensors in ``forward`` have at most 4 dimensions.

    Attributes:
        input_keys: the clip model's inputs, in its order.
        frame_shapes: ``(C, H, W)`` of one frame per input key.
        state_shapes: shape of every state tensor for batch 1 (each at most 4-D).
        num_gates: columns of :attr:`schedule`.
        schedule: ``(num_steps, num_gates)`` float32 of 0/1; row ``s`` is the ``gates`` of step ``s``.
        num_frames: ``T`` of the clip the schedule is for.
        num_steps: steps per clip (``num_frames`` plus the flush steps).
        num_classes: logits per sample.
        layers: one :class:`StreamLayer` per operator (what :meth:`describe` prints).
    """

    schedule: Tensor

    def __init__(
        self,
        ops: Sequence[_Op],
        *,
        input_keys: tuple[str, ...],
        frame_shapes: dict[str, tuple[int, int, int]],
        state_shapes: list[tuple[int, ...]],
        schedule: Tensor,
        num_frames: int,
        num_classes: int,
        num_slots: int,
        output_slot: int,
        layers: list[StreamLayer],
        receptive_field: int,
    ) -> None:
        super().__init__()
        self.ops = nn.ModuleList(ops)
        self.input_keys = input_keys
        self.frame_shapes = frame_shapes
        self.state_shapes = state_shapes
        self.register_buffer("schedule", schedule)
        self.num_gates = int(schedule.shape[1])
        self.num_frames = num_frames
        self.num_steps = int(schedule.shape[0])
        self.num_classes = num_classes
        self.layers = layers
        self.receptive_field = receptive_field
        self._num_slots = num_slots
        self._output_slot = output_slot

    def forward(self, *args: Tensor) -> tuple[Tensor, ...]:
        """One step: ``(*frames, gates, *states)`` -> ``(logits, *new_states)`` (class docstring)."""
        n = len(self.input_keys)
        if len(args) != n + 1 + len(self.state_shapes):
            raise ValueError(
                f"StreamingModel takes {n} frame(s) {self.input_keys}, the gates and "
                f"{len(self.state_shapes)} state(s); got {len(args)} tensors"
            )
        gates = args[n]
        if tuple(gates.shape) != (1, self.num_gates):
            raise ValueError(
                f"gates must be (1, {self.num_gates}) (a row of .schedule), got {tuple(gates.shape)}"
            )
        columns = [gates[:, i : i + 1].reshape(1, 1, 1, 1) for i in range(self.num_gates)]
        values: list[Tensor | None] = [None] * self._num_slots
        values[:n] = list(args[:n])
        states = args[n + 1 :]
        env = _Env(values=values, gates=columns, states=states, new_states=list(states))
        for op in self.ops:
            cast(_Op, op).run(env)
        return (env.get(self._output_slot), *env.new_states)

    def init_states(self, batch: int = 1) -> list[Tensor]:
        """Zero states for ``batch`` samples, in :attr:`state_shapes` order (float32)."""
        device = self.schedule.device
        return [torch.zeros((batch, *shape[1:]), device=device) for shape in self.state_shapes]

    def run_clip(self, *clips: Tensor) -> Tensor:
        """Logits ``(B, num_classes)`` of whole clips ``(B, C_i, T, H, W)`` fed frame by frame.

        Step ``s`` feeds frame ``s`` of every clip (zeros once ``s >= num_frames``) with
        ``gates = schedule[s : s + 1]``; the logits of the last step are returned.
        """
        if len(clips) != len(self.input_keys):
            raise ValueError(
                f"run_clip takes {len(self.input_keys)} clip(s) {self.input_keys}, got {len(clips)}"
            )
        batch = clips[0].shape[0] if clips and clips[0].dim() == 5 else -1
        for key, clip in zip(self.input_keys, clips, strict=True):
            c, h, w = self.frame_shapes[key]
            want = (batch, c, self.num_frames, h, w)
            if clip.dim() != 5 or tuple(clip.shape) != want:
                raise ValueError(
                    f"run_clip input {key!r} must be (B, C, T, H, W) = (B, {c}, {self.num_frames}, "
                    f"{h}, {w}) with one B for all inputs (the schedule is built for "
                    f"T = {self.num_frames}), got {tuple(clip.shape)}"
                )
        states = self.init_states(batch)
        logits = None
        for step in range(self.num_steps):
            if step < self.num_frames:
                frames = [clip[:, :, step] for clip in clips]
            else:
                frames = [torch.zeros_like(clip[:, :, 0]) for clip in clips]
            gates = self.schedule[step : step + 1]
            logits, *states = self(*frames, gates, *states)
        return cast(Tensor, logits)

    def streaming_receptive_field(self) -> dict[str, int]:
        """Warm-up information.

        Returns:
            ``num_frames`` (T of the clip), ``num_steps`` (steps until the logits equal the clip
            model's: the warm-up of this exact clip mode), ``flush_steps`` (``num_steps -
            num_frames``: zero frames fed after the clip so that the right temporal padding and
            the delayed layers complete) and ``receptive_field`` (input frames that one frame of
            the last temporal layer depends on, padding included).
        """
        return {
            "num_frames": self.num_frames,
            "num_steps": self.num_steps,
            "flush_steps": self.num_steps - self.num_frames,
            "receptive_field": self.receptive_field,
        }

    def describe(self) -> str:
        """A table of the operators: signatures ``(offset,stride,length)``, buffers, states."""
        total = sum(math.prod(s) for s in self.state_shapes)
        lines = [
            f"StreamingModel: inputs {', '.join(self.input_keys)}; clip of {self.num_frames} "
            f"frames -> {self.num_steps} steps ({self.num_steps - self.num_frames} flush), "
            f"{self.num_gates} gate(s), {len(self.state_shapes)} state(s) ({total} floats at "
            f"batch 1), receptive field {self.receptive_field} frames",
            "signature (offset,stride,length): frame j is ready at step offset + stride * j",
            f"{'layer':<36} {'op':<28} {'input':<14} {'output':<14} {'buf':>3} {'rf':>4}  state",
        ]
        for layer in self.layers:
            ins = " ".join(str(s) for s in layer.inputs) or "-"
            out = str(layer.output) if layer.output is not None else "static"
            rf = "" if layer.receptive_field is None else str(layer.receptive_field)
            state = "" if layer.state_shape is None else str(layer.state_shape)
            lines.append(
                f"{layer.name:<36} {layer.op:<28} {ins:<14} {out:<14} {layer.buffer:>3} "
                f"{rf:>4}  {state}"
            )
        return "\n".join(lines)

    def extra_repr(self) -> str:
        return (
            f"input_keys={self.input_keys}, num_frames={self.num_frames}, "
            f"num_steps={self.num_steps}, num_gates={self.num_gates}, "
            f"num_states={len(self.state_shapes)}"
        )


# --------------------------------------------------------------------------------------------
# the rewrite
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Stream:
    """A 5-D clip value held as one 4-D frame per step."""

    slot: int
    sig: Signature
    frame: tuple[int, int, int]
    lo: int  # frame j depends on input frames [lo + stride j, offset + stride j]

    @property
    def rf(self) -> int:
        return self.sig.offset - self.lo + 1


@dataclass(frozen=True)
class _Static:
    """A value that does not vary over time (after a global temporal reduction).

    ``shape`` is its shape in the clip graph (batch = the export batch). A 5-D value with
    ``T == 1`` (``squeezed``) is held without its time axis.
    """

    slot: int
    shape: tuple[int, ...]
    squeezed: bool


class _Indices:
    """Marker for the indices output of ``max_pool3d_with_indices`` (unsupported when used)."""


_IDENTITY_OPS = {"clone", "contiguous", "detach", "alias", "lift_fresh_copy", "alias_copy"}
_DROPOUT_OPS = {"dropout", "dropout_", "feature_dropout", "alpha_dropout", "feature_alpha_dropout"}
_UNARY_OPS = {"relu": "relu", "relu_": "relu", "sigmoid": "sigmoid", "sigmoid_": "sigmoid"}
_UNARY_OPS |= {"tanh": "tanh", "tanh_": "tanh"}
_BINARY_OPS = {"add": "add", "add_": "add", "sub": "sub", "sub_": "sub", "mul": "mul"}
_BINARY_OPS |= {"mul_": "mul", "div": "div", "div_": "div", "maximum": "maximum"}
_BINARY_OPS |= {"minimum": "minimum"}
_RESHAPE_OPS = {"view", "reshape", "_unsafe_view", "flatten", "squeeze", "unsqueeze", "view_copy"}
_SKIP_OPS = {"_assert_tensor_metadata", "_assert_scalar", "sym_constrain_range_for_size"}


def _base_name(target: Any) -> str:
    packet = getattr(target, "overloadpacket", None)
    if packet is not None:
        return str(packet.__name__)
    return str(getattr(target, "__name__", target))


def _triple(value: Any, what: str) -> tuple[int, int, int]:
    if isinstance(value, int):
        return (value, value, value)
    vals = [int(v) for v in value]
    if len(vals) == 1:
        return (vals[0], vals[0], vals[0])
    if len(vals) != 3:
        raise StreamingError(f"expected three values (T, H, W) for {what}, got {value!r}")
    return (vals[0], vals[1], vals[2])


def _bind(node: fx.Node) -> dict[str, Any]:
    """The node's arguments by schema name, defaults filled in (fx nodes unresolved)."""
    schema = node.target._schema  # type: ignore[union-attr]
    out: dict[str, Any] = {}
    for i, arg in enumerate(schema.arguments):
        if i < len(node.args):
            out[arg.name] = node.args[i]
        elif arg.name in node.kwargs:
            out[arg.name] = node.kwargs[arg.name]
        elif arg.has_default_value():
            out[arg.name] = arg.default_value
        else:
            out[arg.name] = None
    return out


def _where(node: fx.Node) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    if stack:
        path, kind = list(stack.values())[-1]
        cls = kind.rsplit(".", 1)[-1] if isinstance(kind, str) else getattr(kind, "__name__", kind)
        return f"module '{path or '<root>'}' ({cls})"
    return "the model's forward"


def _module_path(node: fx.Node) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    if stack:
        path = list(stack.values())[-1][0]
        return str(path) or "<root>"
    return "<root>"


def _meta_shape(node: fx.Node) -> tuple[int, ...]:
    val = node.meta.get("val")
    if isinstance(val, tuple | list) and val:
        val = val[0]
    if not isinstance(val, Tensor):
        raise StreamingError(f"{node.target} in {_where(node)}: no tensor shape recorded by export")
    return tuple(int(s) for s in val.shape)


class _Builder:
    """Walks a ``torch.export`` graph and emits the per-step operators."""

    def __init__(self, ep: torch.export.ExportedProgram, num_inputs: int, fuse_taps: bool) -> None:
        self.ep = ep
        self.fuse_taps = fuse_taps
        self.ops: list[_Op] = []
        self.slots = num_inputs
        self.env: dict[fx.Node, Any] = {}
        self.streams: list[_Stream] = []
        self.gate_specs: list[tuple[Any, ...]] = []
        self._gate_ids: dict[tuple[Any, ...], int] = {}
        self.histories: list[_History] = []
        self._history_ids: dict[tuple[int, Signature], int] = {}
        self._delays: dict[tuple[int, Signature, int], int] = {}
        self.layer_meta: dict[int, tuple[str, str, tuple[Signature, ...], _Stream | None, int]] = {}
        self.done: set[fx.Node] = set()
        self.accumulated: list[_Stream] = []

    # ---- helpers --------------------------------------------------------------------------

    def slot(self) -> int:
        self.slots += 1
        return self.slots - 1

    def gate(self, *spec: Any) -> int:
        if spec not in self._gate_ids:
            self._gate_ids[spec] = len(self.gate_specs)
            self.gate_specs.append(spec)
        return self._gate_ids[spec]

    def emit(
        self,
        op: _Op,
        node: fx.Node | None,
        what: str,
        inputs: Sequence[_Stream] = (),
        out: _Stream | None = None,
        buffer: int = 0,
        name: str | None = None,
    ) -> None:
        self.layer_meta[len(self.ops)] = (
            name if name is not None else (_module_path(node) if node is not None else "<root>"),
            what,
            tuple(s.sig for s in inputs),
            out,
            buffer,
        )
        self.ops.append(op)

    def stream(self, node: fx.Node, slot: int, sig: Signature, lo: int) -> _Stream:
        shape = _meta_shape(node)
        if len(shape) != 5:
            raise StreamingError(f"{node.target} in {_where(node)}: expected a 5-D result")
        if shape[2] != sig.length:  # pragma: no cover - a bug in the bookkeeping
            raise RuntimeError(
                f"internal error at {node.target} in {_where(node)}: length {sig.length} "
                f"computed, the clip graph has T = {shape[2]}"
            )
        out = _Stream(slot, sig, (shape[1], shape[3], shape[4]), lo)
        self.streams.append(out)
        return out

    def static(self, node: fx.Node, slot: int) -> _Static:
        shape = _meta_shape(node)
        if len(shape) > 5 or (len(shape) == 5 and shape[2] != 1):
            raise StreamingError(
                f"{node.target} in {_where(node)}: a {len(shape)}-D result {shape} after the "
                "global temporal pooling cannot be held in at most 4 dimensions"
            )
        if not shape or shape[0] != _EXPORT_BATCH:
            raise StreamingError(
                f"{node.target} in {_where(node)}: the result {shape} does not keep the batch "
                "axis first"
            )
        return _Static(slot, shape, len(shape) == 5)

    @staticmethod
    def rep_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape a static value of clip-graph ``shape`` is held in (time axis dropped if 5-D)."""
        return shape[:2] + shape[3:] if len(shape) == 5 else shape

    def value(self, arg: Any) -> Any:
        return fx.node.map_arg(arg, lambda n: self.env[n])

    def history(self, x: _Stream, size: int, masked: bool, node: fx.Node) -> tuple[int, _History]:
        key = (x.slot, x.sig)
        if key not in self._history_ids:
            hist = _History(x.slot, self.slot(), x.frame)
            o, s, n = x.sig
            hist.push = self.gate("push", o, s)
            hist.no_push = self.gate("no_push", o, s)
            hist.valid = self.gate("valid", o, s, n)
            self._history_ids[key] = len(self.histories)
            self.histories.append(hist)
            self.emit(hist, node, "history", (x,), x, name=f"{_module_path(node)} (input history)")
        hid = self._history_ids[key]
        hist = self.histories[hid]
        hist.size = max(hist.size, size)
        hist.masked = hist.masked or masked
        return hid, hist

    def align(self, streams: Sequence[_Stream], node: fx.Node) -> tuple[list[int], Signature, int]:
        """Slots of ``streams`` delayed to the latest offset, the common signature and ``lo``."""
        first = streams[0].sig
        for other in streams[1:]:
            if other.sig.stride != first.stride or other.sig.length != first.length:
                raise StreamingError(
                    f"{node.target} in {_where(node)}: combines streams with signatures "
                    f"{first} and {other.sig} (offset, stride, length); their temporal strides "
                    "and lengths must match"
                )
        offset = max(s.sig.offset for s in streams)
        slots = []
        for x in streams:
            gap = offset - x.sig.offset
            if gap == 0:
                slots.append(x.slot)
                continue
            depth = -(-gap // first.stride)
            key = (x.slot, x.sig, depth)
            if key not in self._delays:
                hid, _ = self.history(x, depth, False, node)
                op = _Delay(self.slot(), x.frame[0], depth)
                op.hist = hid
                self._delays[key] = op.dst
                out = _Stream(op.dst, Signature(offset, first.stride, first.length), x.frame, x.lo)
                self.emit(op, node, f"delay {depth}", (x,), out, buffer=depth)
            slots.append(self._delays[key])
        sig = Signature(offset, first.stride, first.length)
        return slots, sig, min(s.lo for s in streams)

    @staticmethod
    def const_frame(c: Tensor, node: fx.Node) -> Tensor:
        """A constant broadcast against a 5-D clip value, as a 4-D frame constant."""
        if c.dim() > 5:
            raise StreamingError(f"{node.target} in {_where(node)}: a {c.dim()}-D constant")
        c = c.reshape((1,) * (5 - c.dim()) + tuple(c.shape))
        if c.shape[2] != 1:
            raise StreamingError(
                f"{node.target} in {_where(node)}: a constant that varies over time "
                f"({tuple(c.shape)}) cannot be applied frame by frame"
            )
        return c.squeeze(2).float()

    def const_static(self, c: Tensor, out_rank: int, node: fx.Node) -> Tensor:
        return self.const_frame(c, node) if out_rank == 5 else c.float()

    def fail(self, node: fx.Node, what: str) -> StreamingError:
        return StreamingError(f"{node.target} in {_where(node)}: {what}")

    # ---- the graph walk -------------------------------------------------------------------

    def run(self, shapes: dict[str, tuple[int, int, int, int]], keys: tuple[str, ...]) -> Any:
        sig = self.ep.graph_signature
        kinds = {spec.arg.name: spec for spec in sig.input_specs if hasattr(spec.arg, "name")}
        order = {n: i for i, n in enumerate(self.ep.graph.nodes)}
        live = self.live_nodes()
        user_index = 0
        result = None
        for node in self.ep.graph.nodes:
            if node in self.done or (node.op == "call_function" and node not in live):
                continue
            if node.op == "placeholder":
                spec = kinds[node.name]
                kind = spec.kind.name
                if kind == "USER_INPUT":
                    c, t, h, w = shapes[keys[user_index]]
                    self.env[node] = self.stream(node, user_index, Signature(0, 1, t), 0)
                    user_index += 1
                elif kind in ("PARAMETER", "BUFFER"):
                    self.env[node] = self.ep.state_dict[spec.target].detach()
                elif kind == "CONSTANT_TENSOR":
                    self.env[node] = self.ep.constants[spec.target]
                else:
                    raise StreamingError(f"unsupported graph input {node.name} of kind {kind}")
            elif node.op == "call_function":
                self.check_inplace(node, order)
                self.call(node)
            elif node.op == "output":
                outs = node.args[0]
                if len(outs) != 1:
                    raise StreamingError(
                        f"the model returns {len(outs)} values; one (logits) needed"
                    )
                result = self.env[outs[0]]
            else:  # pragma: no cover - export graphs hold no other node kinds
                raise StreamingError(f"unsupported graph node {node.op} {node.target}")
        return result

    def live_nodes(self) -> set[fx.Node]:
        """Nodes the output depends on (export keeps unused branches, e.g. feature lists)."""
        live: set[fx.Node] = set()
        todo = [n for n in self.ep.graph.nodes if n.op == "output"]
        while todo:
            node = todo.pop()
            if node in live:
                continue
            live.add(node)
            todo.extend(node.all_input_nodes)
        return live

    def check_inplace(self, node: fx.Node, order: dict[fx.Node, int]) -> None:
        name = _base_name(node.target)
        if not name.endswith("_") or name.startswith("_") or not node.args:
            return
        target = node.args[0]
        if isinstance(target, fx.Node):
            later = [u for u in target.users if u is not node and order[u] > order[node]]
            if later:
                raise self.fail(
                    node,
                    "an in-place operation whose input is used again afterwards "
                    "(aliasing the streaming rewrite does not model)",
                )

    def call(self, node: fx.Node) -> None:
        target = node.target
        if target is operator.getitem:
            container = self.env[node.args[0]]  # type: ignore[index]
            item = container[cast(int, node.args[1])]
            if isinstance(item, _Indices):
                raise self.fail(node, "uses the indices of a max pooling (unsupported)")
            self.env[node] = item
            return
        name = _base_name(target)
        if name in _SKIP_OPS:
            return
        if not hasattr(target, "_schema"):
            raise self.fail(node, "unsupported Python function in the traced graph")
        args = _bind(node)
        flat: list[Any] = []
        fx.node.map_aggregate(self.value(list(args.values())), flat.append)
        if not any(isinstance(v, _Stream | _Static) for v in flat):
            # everything is a constant: fold it now
            self.env[node] = target(*self.value(node.args), **self.value(node.kwargs))  # type: ignore[operator]
            return
        handler = self.handlers.get(name)
        if handler is None:
            raise self.fail(node, "operator not supported by the streaming rewrite")
        handler(self, node, args)

    # ---- handlers -------------------------------------------------------------------------

    def do_identity(self, node: fx.Node, a: dict[str, Any]) -> None:
        name = _base_name(node.target)
        if name in _DROPOUT_OPS and a.get("train"):
            raise self.fail(node, "dropout in training mode; put the model in eval mode")
        first = next(iter(a))
        self.env[node] = self.value(a[first])

    def do_transposed(self, node: fx.Node, a: dict[str, Any]) -> None:
        raise self.fail(node, "a transposed convolution (ConvTranspose3d) is not supported")

    def do_to_copy(self, node: fx.Node, a: dict[str, Any]) -> None:
        x = self.value(a["self"])
        dtype = a.get("dtype")
        if dtype is not None and dtype != torch.float32:
            raise self.fail(node, f"casts to {dtype}; only float32 graphs are supported")
        self.env[node] = x

    def do_conv(self, node: fx.Node, a: dict[str, Any]) -> None:
        x = self.value(a["input"])
        weight = self.value(a["weight"])
        bias = self.value(a.get("bias"))
        if not isinstance(x, _Stream):
            raise self.fail(node, "a convolution after the global temporal pooling")
        if not isinstance(weight, Tensor) or (bias is not None and not isinstance(bias, Tensor)):
            raise self.fail(node, "a convolution whose weights are computed by the model")
        if a.get("transposed"):
            raise self.fail(node, "a transposed convolution (ConvTranspose3d) is not supported")
        if weight.dim() != 5:
            raise self.fail(node, f"a {weight.dim() - 2}-D convolution on a 5-D clip tensor")
        stride = _triple(a["stride"], "stride")
        dilation = _triple(a["dilation"], "dilation")
        kernel = tuple(int(k) for k in weight.shape[2:])
        padding = a["padding"]
        spatial_pad: tuple[int, int] | str
        if isinstance(padding, str):
            if padding == "valid":
                pads = [(0, 0)] * 3
            elif padding == "same":
                pads = []
                for d, k in zip(dilation, kernel, strict=True):
                    total = d * (k - 1)
                    pads.append((total // 2, total - total // 2))
            else:
                raise self.fail(node, f"unknown padding {padding!r}")
        else:
            pads = [(p, p) for p in _triple(padding, "padding")]
        symmetric = all(lo == hi for lo, hi in pads[1:])
        spatial_pad = (pads[1][0], pads[2][0]) if symmetric else "same"
        kt, st, dt = kernel[0], stride[0], dilation[0]
        span = dt * (kt - 1)
        pl, pr = pads[0]
        if pl > span:
            raise self.fail(
                node, f"temporal padding {pl} larger than the temporal reach {span} of the kernel"
            )
        o, s, n = x.sig
        length = (n + pl + pr - span - 1) // st + 1
        last_input = (length - 1) * st - pl + span
        masked = pl > 0 or last_input >= n
        sig = Signature(o + s * (span - pl), s * st, length)
        w64 = weight.double()
        b64 = bias.double() if bias is not None else None
        w64, b64, bn_node = self.fold_bn(node, w64, b64)
        taps = [w64[:, :, i].float() for i in range(kt)]
        depths = [span - dt * i for i in range(kt)]
        groups = int(a["groups"])
        if span > 0:
            hid, hist = self.history(x, span, masked, node)
            src = hist.dst
        else:
            hid, src = -1, x.slot
        op = _Conv(
            src,
            self.slot(),
            x.frame[0],
            depths,
            taps,
            None if b64 is None else b64.float(),
            (stride[1], stride[2]),
            spatial_pad,
            (dilation[1], dilation[2]),
            groups,
            self.fuse_taps,
        )
        op.hist = hid
        out = self.stream(node, op.dst, sig, x.lo - s * pl)
        ktxt = "x".join(str(v) for v in kernel)
        what = (
            f"conv {ktxt} s{st} p{pl}"
            + (f",{pr}" if pr != pl else "")
            + (f" d{dt}" if dt > 1 else "")
        )
        if bn_node is not None:
            what += " +bn"
        self.emit(op, node, what, (x,), out, buffer=span)
        self.env[node] = out
        if bn_node is not None:
            self.done.add(bn_node)
            if _base_name(bn_node.target) == "batch_norm":
                self.env[bn_node] = out
            else:
                self.env[bn_node] = (out, _Indices(), _Indices())

    def bn_params(self, node: fx.Node, a: dict[str, Any]) -> tuple[Tensor, Tensor]:
        """``(scale, shift)`` float64 of an eval-mode BatchNorm."""
        if a.get("training"):
            raise self.fail(node, "BatchNorm in training mode; put the model in eval mode")
        mean, var = self.value(a["running_mean"]), self.value(a["running_var"])
        if not isinstance(mean, Tensor) or not isinstance(var, Tensor):
            raise self.fail(node, "BatchNorm without running statistics")
        gamma, beta = self.value(a["weight"]), self.value(a["bias"])
        eps = float(a["eps"])
        scale = 1.0 / torch.sqrt(var.double() + eps)
        if isinstance(gamma, Tensor):
            scale = scale * gamma.double()
        shift = -mean.double() * scale
        if isinstance(beta, Tensor):
            shift = shift + beta.double()
        return scale, shift

    def fold_bn(
        self, node: fx.Node, w: Tensor, b: Tensor | None
    ) -> tuple[Tensor, Tensor | None, fx.Node | None]:
        users = list(node.users)
        if len(users) != 1 or users[0].op != "call_function":
            return w, b, None
        bn = users[0]
        if _base_name(bn.target) not in ("batch_norm", "_native_batch_norm_legit_no_training"):
            return w, b, None
        a = _bind(bn)
        if a["input"] is not node:
            return w, b, None
        if _base_name(bn.target) != "batch_norm":
            getters = list(bn.users)
            if any(g.target is not operator.getitem or g.args[1] != 0 for g in getters):
                return w, b, None
        scale, shift = self.bn_params(bn, a)
        w = w * scale.reshape(-1, 1, 1, 1, 1)
        b = shift if b is None else b * scale + shift
        return w, b, bn

    def do_batch_norm(self, node: fx.Node, a: dict[str, Any]) -> None:
        x = self.value(a["input"])
        scale, shift = self.bn_params(node, a)
        shape: tuple[int, ...]
        if isinstance(x, _Stream):
            shape = (1, -1, 1, 1)
        else:
            rank = len(self.rep_shape(x.shape))
            shape = (1, -1) + (1,) * (rank - 2)
        op = _Affine(
            x.slot, self.slot(), scale.float().reshape(shape), shift.float().reshape(shape)
        )
        out = self.result(node, op.dst, x)
        self.emit(op, node, "batchnorm (affine)", self.streams_of([x]), self.stream_or_none(out))
        self.env[node] = out if _base_name(node.target) == "batch_norm" else (out, None, None)

    def result(self, node: fx.Node, slot: int, like: Any, lo: int | None = None) -> Any:
        """A value of the same kind (stream signature / static) as ``like`` in a new slot."""
        if isinstance(like, _Stream):
            return self.stream(node, slot, like.sig, like.lo if lo is None else lo)
        return self.static(node, slot)

    @staticmethod
    def streams_of(values: Sequence[Any]) -> tuple[_Stream, ...]:
        return tuple(v for v in values if isinstance(v, _Stream))

    @staticmethod
    def stream_or_none(value: Any) -> _Stream | None:
        return value if isinstance(value, _Stream) else None

    def do_pool(self, node: fx.Node, a: dict[str, Any]) -> None:
        name = _base_name(node.target)
        kind = "avg" if name.startswith("avg") else "max"
        x = self.value(a["self"])
        if not isinstance(x, _Stream):
            raise self.fail(node, "a 3D pooling after the global temporal pooling")
        kernel = _triple(a["kernel_size"], "kernel_size")
        stride = _triple(a["stride"], "stride") if a["stride"] else kernel
        padding = _triple(a["padding"], "padding")
        dilation = _triple(a.get("dilation", 1), "dilation")
        ceil_mode = bool(a.get("ceil_mode", False))
        count_include_pad = bool(a.get("count_include_pad", True))
        if a.get("divisor_override") is not None:
            raise self.fail(node, "AvgPool3d with divisor_override is not supported")
        if padding[0] != 0:
            raise self.fail(
                node,
                f"temporal padding {padding[0]} in a pooling layer is not supported by the "
                "streaming rewrite (pad the time axis with a convolution instead)",
            )
        kt, st, dt = kernel[0], stride[0], dilation[0]
        span = dt * (kt - 1)
        o, s, n = x.sig
        length = (n - span - 1) // st + 1
        if ceil_mode:
            longer = -(-(n - span - 1) // st) + 1
            if (longer - 1) * st >= n:
                longer -= 1
            if longer != length:
                raise self.fail(
                    node, "ceil_mode adds a partial temporal window; not supported in streaming"
                )
        if length < 1:
            raise self.fail(node, f"pools {n} frames with a temporal window of {span + 1}")
        pooled = x
        if kernel[1:] != (1, 1) or stride[1:] != (1, 1) or padding[1:] != (0, 0):
            op = _SpatialPool(
                x.slot,
                self.slot(),
                kind,
                (kernel[1], kernel[2]),
                (stride[1], stride[2]),
                (padding[1], padding[2]),
                (dilation[1], dilation[2]),
                ceil_mode,
                count_include_pad,
            )
            c, h, w = x.frame
            probe = op.pool(torch.zeros(1, c, h, w))
            pooled = _Stream(op.dst, x.sig, (c, probe.shape[2], probe.shape[3]), x.lo)
            k2 = "x".join(str(v) for v in kernel[1:])
            self.emit(op, node, f"{kind}pool2d {k2}", (x,), pooled)
        sig = Signature(o + s * span, s * st, length)
        if span == 0:
            out = self.stream(node, pooled.slot, sig, x.lo)
        else:
            depths = [span - dt * i for i in range(kt)]
            hid, hist = self.history(pooled, span, False, node)
            top = _TemporalPool(hist.dst, self.slot(), x.frame[0], depths, kind)
            top.hist = hid
            out = self.stream(node, top.dst, sig, x.lo)
            self.emit(top, node, f"{kind} over {kt} frames s{st}", (pooled,), out, buffer=span)
        self.env[node] = (out, _Indices()) if name.endswith("with_indices") else out

    def do_unary(self, node: fx.Node, a: dict[str, Any]) -> None:
        x = self.value(a["self"])
        kind = _UNARY_OPS[_base_name(node.target)]
        op = _Unary(x.slot, self.slot(), kind)
        out = self.result(node, op.dst, x)
        self.emit(op, node, kind, self.streams_of([x]), self.stream_or_none(out))
        self.env[node] = out

    def do_binary(self, node: fx.Node, a: dict[str, Any]) -> None:
        kind = _BINARY_OPS[_base_name(node.target)]
        lhs, rhs = self.value(a["self"]), self.value(a["other"])
        alpha = 1.0 if a.get("alpha") is None else float(a["alpha"])
        if kind == "div":
            if isinstance(rhs, _Stream | _Static):
                raise self.fail(node, "division by a tensor computed by the model")
            kind, rhs = "mul", (1.0 / rhs if isinstance(rhs, Tensor) else 1.0 / float(rhs))
        values = [lhs, rhs]
        streams = self.streams_of(values)
        operands: list[_Operand] = []
        if streams:
            if any(isinstance(v, _Static) for v in values):
                raise self.fail(
                    node,
                    "combines frames with a value that depends on the whole clip (computed after "
                    "a global temporal pooling); a causal stream cannot do that",
                )
            slots, sig, lo = self.align(streams, node)
            it = iter(slots)
            for v in values:
                if isinstance(v, _Stream):
                    operands.append(("slot", next(it)))
                elif isinstance(v, Tensor):
                    operands.append(("const", self.const_frame(v, node)))
                else:
                    operands.append(("scalar", float(v)))
            op = _Binary(self.slot(), kind, operands[0], operands[1], alpha)
            out: Any = self.stream(node, op.dst, sig, lo)
        else:
            rank = len(_meta_shape(node))
            for v in values:
                if isinstance(v, _Static):
                    if len(v.shape) != rank and (v.squeezed or rank == 5):
                        raise self.fail(node, "broadcasts values of different ranks after pooling")
                    operands.append(("slot", v.slot))
                elif isinstance(v, Tensor):
                    operands.append(("const", self.const_static(v, rank, node)))
                else:
                    operands.append(("scalar", float(v)))
            op = _Binary(self.slot(), kind, operands[0], operands[1], alpha)
            out = self.static(node, op.dst)
        self.emit(op, node, kind, streams, self.stream_or_none(out))
        self.env[node] = out

    def do_cat(self, node: fx.Node, a: dict[str, Any]) -> None:
        values = list(self.value(a["tensors"]))
        dim = int(a["dim"])
        rank = len(_meta_shape(node))
        dim = dim + rank if dim < 0 else dim
        streams = self.streams_of(values)
        if streams:
            if len(streams) != len(values):
                raise self.fail(node, "concatenates frames with constants or pooled values")
            if dim in (0, 2):
                raise self.fail(node, f"concatenation along axis {dim} of a 5-D clip tensor")
            slots, sig, lo = self.align(streams, node)
            op = _Cat(self.slot(), slots, dim if dim < 2 else dim - 1)
            out: Any = self.stream(node, op.dst, sig, lo)
        else:
            if not all(isinstance(v, _Static) for v in values):
                raise self.fail(node, "concatenates pooled values with constants")
            if dim == 0 or (rank == 5 and dim == 2):
                raise self.fail(node, f"concatenation along axis {dim}")
            op = _Cat(self.slot(), [v.slot for v in values], dim - 1 if rank == 5 else dim)
            out = self.static(node, op.dst)
        self.emit(op, node, "concat", streams, self.stream_or_none(out))
        self.env[node] = out

    def reduce(self, node: fx.Node, x: Any, kind: str, dims: Sequence[int], keepdim: bool) -> None:
        if isinstance(x, _Stream):
            norm = sorted({d + 5 if d < 0 else d for d in dims} if dims else {0, 1, 2, 3, 4})
            if 0 in norm:
                raise self.fail(node, "a reduction over the batch axis")
            frame_dims = tuple(d if d < 2 else d - 1 for d in norm if d != 2)
            if 2 not in norm:
                if not keepdim:
                    raise self.fail(node, "a per-frame reduction without keepdim")
                op: _Op = _Reduce(x.slot, self.slot(), kind, frame_dims)
                out = self.stream(node, op.dst, x.sig, x.lo)
                self.emit(op, node, f"{kind} over {frame_dims}", (x,), out)
                self.env[node] = out
                return
            o, s, n = x.sig
            c, h, w = x.frame
            acc_shape = tuple(1 if i + 1 in frame_dims else v for i, v in enumerate((c, h, w)))
            acc = _Accumulate(
                x.slot,
                self.slot(),
                kind,
                frame_dims,
                1.0 / n if kind == "mean" else 1.0,
                acc_shape,
            )
            if kind == "max":
                acc.first = self.gate("first", o)
                acc.rest = self.gate("valid_rest", o, s, n)
                acc.idle = self.gate("idle", o, s, n)
            else:
                acc.valid = self.gate("valid", o, s, n)
            self.accumulated.append(x)
            self.emit(acc, node, f"global {kind} (accumulator)", (x,), None)
            shape = _meta_shape(node)
            if keepdim:
                self.env[node] = self.static(node, acc.dst)
                return
            reshape = _Reshape(acc.dst, self.slot(), shape[1:])
            self.emit(reshape, node, "reshape", (), None)
            self.env[node] = self.static(node, reshape.dst)
            return
        # a static value: reduce its held form, then lay it out like the result
        rank = len(x.shape)
        norm = sorted({d + rank if d < 0 else d for d in dims} if dims else set(range(rank)))
        if 0 in norm:
            raise self.fail(node, "a reduction over the batch axis")
        held = [
            d if not x.squeezed or d < 2 else d - 1 for d in norm if not (x.squeezed and d == 2)
        ]
        if held:
            red = _Reduce(x.slot, self.slot(), kind, tuple(held))
            self.emit(red, node, f"{kind} over {tuple(held)}", (), None)
            result = self.static(node, red.dst)
        else:  # only the (size 1) time axis: nothing to compute
            result = self.static(node, x.slot)
        if tuple(self.rep_shape(result.shape)) != self.held_after_reduce(x, held):
            reshape = _Reshape(result.slot, self.slot(), self.rep_shape(result.shape)[1:])
            self.emit(reshape, node, "reshape", (), None)
            result = _Static(reshape.dst, result.shape, result.squeezed)
        self.env[node] = result

    def held_after_reduce(self, x: _Static, held: Sequence[int]) -> tuple[int, ...]:
        shape = self.rep_shape(x.shape)
        return tuple(1 if i in held else v for i, v in enumerate(shape))

    def do_amax(self, node: fx.Node, a: dict[str, Any]) -> None:
        self.reduce(node, self.value(a["self"]), "max", list(a["dim"] or []), bool(a["keepdim"]))

    def do_mean(self, node: fx.Node, a: dict[str, Any]) -> None:
        if a.get("dtype") not in (None, torch.float32):
            raise self.fail(node, "a reduction with a dtype cast")
        kind = "mean" if _base_name(node.target) == "mean" else "sum"
        self.reduce(
            node, self.value(a["self"]), kind, list(a.get("dim") or []), bool(a.get("keepdim"))
        )

    def do_adaptive_avg(self, node: fx.Node, a: dict[str, Any]) -> None:
        x = self.value(a["self"])
        size = _triple(a["output_size"], "output_size")
        if not isinstance(x, _Stream):
            raise self.fail(node, "adaptive pooling after the global temporal pooling")
        if size[0] != 1:
            raise self.fail(node, f"adaptive pooling to {size[0]} frames (only 1 is supported)")
        if size[1:] == (1, 1):
            self.reduce(node, x, "mean", [2, 3, 4], True)
        elif size[1:] == x.frame[1:]:
            self.reduce(node, x, "mean", [2], True)
        else:
            raise self.fail(node, f"adaptive pooling to {size} (only (1, 1, 1) or (1, H, W))")

    def do_reshape(self, node: fx.Node, a: dict[str, Any]) -> None:
        x = self.value(a["self"])
        shape = _meta_shape(node)
        if isinstance(x, _Stream):
            if shape == (_EXPORT_BATCH, *x.frame[:1], x.sig.length, *x.frame[1:]):
                self.env[node] = x
                return
            raise self.fail(
                node,
                "reshapes a 5-D clip tensor (e.g. flattens over time); the streaming rewrite needs "
                "a global temporal pooling before the classifier",
            )
        out = self.static(node, self.slot())
        op = _Reshape(x.slot, out.slot, self.rep_shape(shape)[1:])
        self.emit(op, node, "reshape", (), None)
        self.env[node] = out

    def do_linear(self, node: fx.Node, a: dict[str, Any]) -> None:
        name = _base_name(node.target)
        if name == "linear":
            x, weight, bias = self.value(a["input"]), self.value(a["weight"]), self.value(a["bias"])
        elif name == "addmm":
            x, mat, bias = self.value(a["mat1"]), self.value(a["mat2"]), self.value(a["self"])
            if float(a.get("beta", 1)) != 1.0 or float(a.get("alpha", 1)) != 1.0:
                raise self.fail(node, "addmm with alpha/beta")
            weight = mat.t() if isinstance(mat, Tensor) else mat
        else:
            x, mat = self.value(a["self"]), self.value(a["mat2"])
            weight, bias = (mat.t() if isinstance(mat, Tensor) else mat), None
        if isinstance(x, _Stream):
            raise self.fail(node, "a Linear layer on a 5-D clip tensor (pool over time first)")
        if not isinstance(x, _Static) or not isinstance(weight, Tensor):
            raise self.fail(node, "a Linear layer whose weights are computed by the model")
        if bias is not None and not isinstance(bias, Tensor):
            raise self.fail(node, "a Linear layer whose bias is computed by the model")
        op = _Linear(x.slot, self.slot(), weight.float(), None if bias is None else bias.float())
        self.emit(op, node, f"linear {weight.shape[1]}->{weight.shape[0]}", (), None)
        self.env[node] = self.static(node, op.dst)

    handlers: dict[str, Callable[[_Builder, fx.Node, dict[str, Any]], None]] = {}

    # ---- finishing ------------------------------------------------------------------------

    @staticmethod
    def column(spec: tuple[Any, ...], steps: int) -> list[int]:
        kind = spec[0]
        out = []
        for t in range(steps):
            if kind == "first":
                on = t == spec[1]
            else:
                o, s = spec[1], spec[2]
                on_grid = t >= o and (t - o) % s == 0
                if kind in ("push", "no_push"):
                    on = t < o or on_grid
                    on = on if kind == "push" else not on
                else:
                    j = (t - o) // s if on_grid else -1
                    valid = 0 <= j < spec[3]
                    if kind == "valid":
                        on = valid
                    elif kind == "valid_rest":
                        on = valid and j > 0
                    else:  # idle
                        on = not valid
            out.append(int(on))
        return out

    def finish(
        self, result: Any, loaded: LoadedModel, shapes: dict[str, tuple[int, int, int, int]]
    ) -> StreamingModel:
        if isinstance(result, _Stream):
            raise StreamingError(
                "the model's output still varies over time (no global temporal pooling before "
                "the classifier); the streaming rewrite needs one"
            )
        if not isinstance(result, _Static) or len(result.shape) != 2:
            raise StreamingError("the model's output is not a (B, num_classes) tensor")
        steps = max(s.sig.last_step for s in self.streams) + 1
        for hist in self.histories:
            if not hist.masked:
                hist.valid = _ONE
        used = {getattr(op, f) for op in self.ops for f in op.gate_fields} - {_ONE}
        columns: list[list[int]] = []
        index: dict[tuple[int, ...], int] = {}
        resolved = []
        for i, spec in enumerate(self.gate_specs):
            if i not in used:
                resolved.append(_ONE)
                continue
            col = self.column(spec, steps)
            if all(col):
                resolved.append(_ONE)
            elif not any(col):
                resolved.append(_ZERO)
            else:
                key = tuple(col)
                if key not in index:
                    index[key] = len(columns)
                    columns.append(col)
                resolved.append(index[key])
        if not columns:  # keep a (1, >=1) gates input even when nothing needs gating
            columns.append([1] * steps)
        schedule = torch.tensor(columns, dtype=torch.float32).t().contiguous()
        state_shapes: list[tuple[int, ...]] = []
        for op in self.ops:
            for field in op.gate_fields:
                setattr(
                    op, field, resolved[getattr(op, field)] if getattr(op, field) >= 0 else _ONE
                )
            if op.has_state:
                op.state = len(state_shapes)
                state_shapes.append(op.state_shape())
        for op in self.ops:
            if op.reads_history and op.hist >= 0:
                hist = self.histories[op.hist]
                op.hist_state, op.hist_size = hist.state, hist.size
        layers = []
        for i, op in enumerate(self.ops):
            name, what, ins, out, buffer = self.layer_meta[i]
            if isinstance(op, _History):
                buffer = op.size
                what = f"history of {op.size}" + (" (zero-padded)" if op.masked else "")
            layers.append(
                StreamLayer(
                    name=name,
                    op=what,
                    inputs=ins,
                    output=None if out is None else out.sig,
                    buffer=buffer,
                    state_shape=state_shapes[op.state] if op.has_state else None,
                    receptive_field=None if out is None else out.rf,
                )
            )
        keys = loaded.input_keys
        return StreamingModel(
            self.ops,
            input_keys=keys,
            frame_shapes={k: (shapes[k][0], shapes[k][2], shapes[k][3]) for k in keys},
            state_shapes=state_shapes,
            schedule=schedule,
            num_frames=next(iter(shapes.values()))[1],
            num_classes=result.shape[1],
            num_slots=self.slots,
            output_slot=result.slot,
            layers=layers,
            receptive_field=max((s.rf for s in self.accumulated), default=1),
        )


_Builder.handlers = {
    **{n: _Builder.do_identity for n in _IDENTITY_OPS | _DROPOUT_OPS},
    "_to_copy": _Builder.do_to_copy,
    "conv3d": _Builder.do_conv,
    "convolution": _Builder.do_conv,
    "conv_transpose3d": _Builder.do_transposed,
    "batch_norm": _Builder.do_batch_norm,
    "_native_batch_norm_legit_no_training": _Builder.do_batch_norm,
    "max_pool3d": _Builder.do_pool,
    "max_pool3d_with_indices": _Builder.do_pool,
    "avg_pool3d": _Builder.do_pool,
    **{n: _Builder.do_unary for n in _UNARY_OPS},
    **{n: _Builder.do_binary for n in _BINARY_OPS},
    "cat": _Builder.do_cat,
    "amax": _Builder.do_amax,
    "mean": _Builder.do_mean,
    "sum": _Builder.do_mean,
    "adaptive_avg_pool3d": _Builder.do_adaptive_avg,
    "_adaptive_avg_pool3d": _Builder.do_adaptive_avg,
    **{n: _Builder.do_reshape for n in _RESHAPE_OPS},
    "linear": _Builder.do_linear,
    "addmm": _Builder.do_linear,
    "mm": _Builder.do_linear,
}


def to_streaming(
    model: nn.Module | LoadedModel | str | Path,
    *,
    num_frames: int | None = None,
    size: tuple[int, int] | None = None,
    fuse_taps: bool = False,
    **model_kwargs: Any,
) -> StreamingModel:
    """Rewrite a 3D-CNN clip model into a :class:`StreamingModel` (one frame per step).

    Args:
        model: a module with ``input_keys``, a :class:`~lowres_har.export.common.LoadedModel`,
            a registered model name or a lowres-har task checkpoint (see
            :func:`~lowres_har.export.common.load_model`).
        num_frames: ``T`` of the clips the schedule is built for (default: the model's).
        size: ``(H, W)`` of the frames (default: the model's).
        fuse_taps: run each Conv3d as one ``conv2d`` over the channel-concatenated window instead
            of the sum of one ``conv2d`` per temporal tap (same result, fewer operators).
        **model_kwargs: architecture options for a name, or overrides of a checkpoint's.

    Returns:
        The streaming module (eval mode, float32, CPU); ``run_clip`` on clips of ``num_frames``
        frames equals the clip model's output up to float rounding.

    Raises:
        StreamingError: an operator or layout the rewrite does not support (named, with its
            module), e.g. temporal padding in a pooling layer, transposed convolutions, a
            classifier on a time-varying tensor.
    """
    loaded = load_model(model, **model_kwargs)
    net = loaded.model.eval()
    shapes = input_shapes(loaded, num_frames=num_frames, size=size)
    inputs = example_inputs(loaded, batch=_EXPORT_BATCH, num_frames=num_frames, size=size)
    label = loaded.name or type(net).__name__
    try:
        with torch.no_grad():
            ep = torch.export.export(net, inputs)
    except Exception as err:
        raise StreamingError(
            f"{label}: torch.export could not trace the model for clips "
            f"{ {k: v for k, v in shapes.items()} } ({type(err).__name__}: {err})"
        ) from err
    builder = _Builder(ep, len(loaded.input_keys), fuse_taps)
    try:
        result = builder.run(shapes, loaded.input_keys)
        streaming = builder.finish(result, loaded, shapes)
    except StreamingError as err:
        raise StreamingError(f"{label}: {err}") from None
    return streaming.eval()
