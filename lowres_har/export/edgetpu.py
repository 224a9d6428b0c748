"""Edge TPU deployment: a full-integer streaming ``.tflite``, a compatibility checker and a runtime.

The Edge TPU runs no 3-D operator, no tensor of more than 4 dimensions, batch 1 only, and only
8-bit integer arithmetic. A clip model (Conv3d / BatchNorm3d / pooling / Linear) therefore
ships as a *streaming* graph (:mod:`lowres_har.export.streaming`): one frame per invocation,
explicit temporal state tensors in and out (a ring buffer per temporal layer), every Conv3d a
Conv2d over its buffered frame window. This module turns that graph into a file the Edge TPU compiler accepts
and runs it.

Pipeline (:func:`to_edgetpu`)
    1. :func:`~lowres_har.export.streaming.to_streaming` builds the streaming model; its
       ``run_clip`` is compared with the clip model (:func:`streaming_parity`).
    2. litert-torch converts one step (``forward(*frames, gates, *states)``, batch 1) to a
       float32 TFLite flatbuffer.
    3. **Full-integer post-training quantization** with TensorFlow Lite's calibrator (the
       ``CalibrationWrapper`` that ``ai-edge-litert`` ships, i.e. what
       ``tf.lite.TFLiteConverter`` runs for ``optimizations=[DEFAULT]`` with a
       ``representative_dataset`` and ``inference_input_type = inference_output_type =
       tf.int8``): int8 weights (per output channel) and activations, int32 biases, and int8
       model inputs and outputs - frames, gates, states and logits (or classifier features,
       see below); no float tensor is left.
       The representative dataset is every step's ``(frames, gates, states)`` of the float
       streaming model run over clips from a ``LightningDataModule`` (validation split first,
       test otherwise) or clips the caller passes.
    4. The I/O tensors are renamed (``video``/``flow``/``mask``, ``gates``, ``state_{i}`` in;
       ``features`` or ``logits``, ``state_{i}_out`` out) and a JSON description is stored twice: in the
       flatbuffer's ``metadata`` table (entry ``"lowres_har"``) and as a sidecar
       ``<name>.json`` next to the ``.tflite`` (the runner also finds ``model.json`` for a
       compiled ``model_edgetpu.tflite``, should the compiler drop the metadata). It holds
       what the runtime needs: input keys, frame shapes and layout, the state tensors (names,
       shapes, order), the gate schedule, ``num_steps``, ``num_classes``, class names, the
       normalisation the frames expect and the quantization of every I/O tensor.
    5. :func:`check_edgetpu` lists the graph's ops and tensors and fails on an op outside the
       Edge TPU's supported list, a float tensor, a tensor of more than 4 dimensions, or an
       input whose batch is not 1.

Classifier placement (``classifier=``)
    By default (``"tpu"``) the whole network, logits included, is in the int8 graph and runs on
    the Edge TPU. ``classifier="cpu"`` stops the int8 graph at the input of the model's final
    ``Linear`` (output ``features``) and the runtime applies that layer in float on the host -
    the pattern Coral's own transfer-learning engines use for the last layer. It removes one
    rounding step: the int8 logits' step (about 0.065 for the MSN-S checkpoints on
    SynthActions) flips the top-1 of clips whose float top-1/top-2 margin is smaller, and
    weakly trained models have many of those (see :func:`evaluate_edgetpu`'s ``near_ties``).
    ``classifier="cpu_mlp"`` also moves the fully connected layers in front of it (MSN's
    ``mlp``: Linear + ReLU, dropout is the identity at inference) to the host: the int8 graph
    then ends with the globally pooled convolutional features, and the host runs a few dense
    products (about 43 k multiply-adds for MSN-S, under 0.1 % of the network) in float. The
    description stores each host layer's float weights; the runner applies them in numpy.

Runtime (:class:`EdgeTPURunner`)
    Loads the ``.tflite`` (plain or compiled) and its description, quantizes each frame and the
    gates on the way in, feeds the states back between steps (requantizing when an output
    state's scale differs from its input's) and dequantizes the last step's logits (or applies
    the float host layers to its dequantized features). It
    needs only ``numpy`` and an interpreter (``ai_edge_litert`` or ``tflite_runtime``): on a
    board without PyTorch, copy this file next to the model and ``from edgetpu import
    EdgeTPURunner`` (torch and lowres-har are imported lazily, by the export functions only).

Compiling and running on a Coral device (``edgetpu_compiler`` runs on x86-64 Linux only, so
not on this machine)::

    # on an x86-64 Debian/Ubuntu host, from Coral's apt repository (packages.cloud.google.com)
    sudo apt-get install edgetpu-compiler
    edgetpu_compiler -s -o out/ model_int8.tflite
    #   -> out/model_int8_edgetpu.tflite and out/model_int8_edgetpu.log; -s prints, per
    #      operator, whether it was mapped to the Edge TPU; every op should read
    #      "Mapped to Edge TPU" (the checker enforces the documented requirements, the compiler
    #      has the last word on layout-specific limits such as TRANSPOSE)
    cp model_int8.json out/model_int8_edgetpu.json   # optional: the description is embedded

    # on the Coral (Dev Board, USB Accelerator host): libedgetpu1-std from the same repository,
    # plus ai-edge-litert (or the older tflite-runtime) and numpy
    python3 -c "
    from edgetpu import EdgeTPURunner              # this file, copied next to the model
    import numpy as np
    runner = EdgeTPURunner('out/model_int8_edgetpu.tflite', delegate='edgetpu')
    clip = np.zeros((3, 16, 32, 32), np.float32)   # (C, T, H, W), normalised like in training
    print(runner.predict(clip))                    # one array per input key (MSN: 3)
    "                                              # -> [(class name, probability), ...]

``delegate="edgetpu"`` loads ``libedgetpu.so.1`` (``libedgetpu.1.dylib`` on macOS,
``edgetpu.dll`` on Windows) with ``load_delegate``: the compiled model's ``edgetpu-custom-op``
then runs on the accelerator. The uncompiled ``model_int8.tflite`` runs anywhere on the CPU
with the same runner (``delegate=None``), which is how the parity figures are measured here.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

if TYPE_CHECKING:  # torch and lowres-har are imported lazily: the runtime must run without them
    from typing import TypeAlias

    from torch import Tensor, nn

    from lowres_har.export.common import LoadedModel

    #: ``(Linear, ReLU after it)`` layers that run in float on the host, in order.
    HostLayers: TypeAlias = list[tuple[nn.Linear, bool]]

__all__ = [
    "CLASSIFIER_PLACEMENTS",
    "EDGETPU_OP_LIMITATIONS",
    "EDGETPU_SUPPORTED_OPS",
    "METADATA_NAME",
    "EdgeTPUCheck",
    "EdgeTPUCheckError",
    "EdgeTPUReport",
    "EdgeTPURunner",
    "OpInfo",
    "TensorInfo",
    "check_edgetpu",
    "evaluate_edgetpu",
    "int8_agreement",
    "read_description",
    "sidecar_path",
    "streaming_parity",
    "to_edgetpu",
]

log = logging.getLogger(__name__)

#: TFLite builtin operators the Edge TPU executes, from Coral's "TensorFlow models on the Edge
#: TPU" page, section "Supported operations" (https://coral.ai/docs/edgetpu/models-intro/
#: #supported-operations; the table for Edge TPU compiler 16 / runtime 14+), written with the
#: TFLite schema's enum names. ``CUSTOM`` is accepted only for ``edgetpu-custom-op``, the op the
#: compiler puts in place of the subgraph it maps (a compiled model checks clean too).
EDGETPU_SUPPORTED_OPS: frozenset[str] = frozenset(
    {
        "ADD",
        "AVERAGE_POOL_2D",
        "CONCATENATION",
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "EXPAND_DIMS",
        "FULLY_CONNECTED",
        "L2_NORMALIZATION",
        "LOGISTIC",
        "LSTM",
        "UNIDIRECTIONAL_SEQUENCE_LSTM",
        "MAXIMUM",
        "MAX_POOL_2D",
        "MEAN",
        "MINIMUM",
        "MUL",
        "PACK",
        "PAD",
        "PRELU",
        "QUANTIZE",
        "REDUCE_MAX",
        "REDUCE_MIN",
        "RELU",
        "RELU6",
        "RELU_N1_TO_1",
        "RESHAPE",
        "RESIZE_BILINEAR",
        "RESIZE_NEAREST_NEIGHBOR",
        "RSQRT",
        "SLICE",
        "SOFTMAX",
        "SPACE_TO_DEPTH",
        "SPLIT",
        "SQUARED_DIFFERENCE",
        "SQUEEZE",
        "STRIDED_SLICE",
        "SUB",
        "SUM",
        "TANH",
        "TRANSPOSE",
        "TRANSPOSE_CONV",
    }
)

#: The "known limitations" column of the same table for the ops that carry one; the checker
#: turns them into warnings for the ops a graph uses (the compiler decides per instance).
EDGETPU_OP_LIMITATIONS: dict[str, str] = {
    "AVERAGE_POOL_2D": "no fused activation function",
    "CONCATENATION": "no fused activation function; a compile-time constant input is allowed "
    "only as the second of exactly two inputs and must be all zeros",
    "FULLY_CONNECTED": "only the default weights format; the output tensor is one-dimensional",
    "MAX_POOL_2D": "no fused activation function",
    "MEAN": "reduction along the x and/or y dimensions only",
    "PAD": "padding along the x and/or y dimensions only",
    "RESIZE_BILINEAR": "3-D input/output; may stay on the CPU to avoid precision loss",
    "RESIZE_NEAREST_NEIGHBOR": "3-D input/output; may stay on the CPU to avoid precision loss",
    "SOFTMAX": "1-D input of at most 16,000 elements only",
    "SQUEEZE": "only when no relayout is needed (leading 1s)",
    "STRIDED_SLICE": "all strides 1, ellipsis_mask == 0 and new_axis_mask == 0 only",
    "TRANSPOSE": "supported since compiler 16; some permutations are not mapped",
}

#: Name of the flatbuffer metadata entry holding the JSON description.
METADATA_NAME = "lowres_har"
_FORMAT = "lowres-har-edgetpu"
_FORMAT_VERSION = 2  # 2: the host head is a list of layers (1: one Linear, still read)

#: Where the classifier of :func:`to_edgetpu` runs: everything in the int8 graph, the final
#: Linear on the host, or the whole fully connected head on the host.
CLASSIFIER_PLACEMENTS: tuple[str, ...] = ("tpu", "cpu", "cpu_mlp")
_EXTRA_HINT = 'pip install "lowres-har[tflite]"'
_COMPILED_OP = "edgetpu-custom-op"
_FLOAT_TYPES = ("FLOAT32", "FLOAT16", "FLOAT64", "BFLOAT16")
_EIGHT_BIT = ("INT8", "UINT8")
_DELEGATE_LIBRARIES = {
    "linux": "libedgetpu.so.1",
    "darwin": "libedgetpu.1.dylib",
    "win32": "edgetpu.dll",
}
_NORMALISATION = (
    "Frames are the float tensors the PyTorch model takes, one time step each, produced by the "
    "data module's evaluation transforms: 'video' RGB (eLR degradation, upsampling to the "
    "network size, /255, mean/std normalisation), 'flow' TV-L1 optical flow in [-1, 1], "
    "'mask' slack mask in [0, 1]. The runtime quantizes them with each input's scale and zero "
    "point (q = round(x / scale) + zero_point, clipped to int8)."
)


# =========================================================================== interpreter
# This file imports nothing from lowres-har at module level so that it can be copied alone to a
# Coral board (see the module docstring). The small flatbuffer readers below therefore repeat
# lowres_har.export.tflite's on purpose instead of importing them.
def _interpreter_api() -> tuple[Any, Any]:
    """``(Interpreter, load_delegate)`` from ai-edge-litert, else from tflite-runtime."""
    try:
        from ai_edge_litert.interpreter import Interpreter, load_delegate
    except ImportError:
        try:
            from tflite_runtime.interpreter import (  # type: ignore[no-redef]
                Interpreter,
                load_delegate,
            )
        except ImportError as err:
            raise ImportError(
                "running a .tflite needs ai-edge-litert (pip install ai-edge-litert, or "
                f"{_EXTRA_HINT}) or tflite-runtime"
            ) from err
    return Interpreter, load_delegate


def _schema() -> Any:
    try:
        from ai_edge_litert import schema_py_generated
    except ImportError as err:
        raise ImportError(
            f"reading a TFLite flatbuffer needs ai-edge-litert ({_EXTRA_HINT})"
        ) from err
    return schema_py_generated


def _enum_names(enum: Any) -> dict[int, str]:
    return {v: k for k, v in vars(enum).items() if not k.startswith("_") and isinstance(v, int)}


def _read_bytes(path: str | Path) -> bytes:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such .tflite file")
    data = p.read_bytes()
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ValueError(f"{p}: not a TFLite flatbuffer (no 'TFL3' identifier)")
    return data


# =========================================================================== checker
@dataclass(frozen=True)
class TensorInfo:
    """One tensor of a TFLite graph.

    Attributes:
        index: position in the subgraph's tensor table.
        name: tensor name.
        shape: static shape (``-1`` where the signature is dynamic).
        dtype: TFLite type name (``"INT8"``, ``"FLOAT32"``, ...).
        constant: True for weights/constants (backed by a buffer).
        scale: per-tensor quantization scale (the first one when per-axis), or ``None``.
        zero_point: matching zero point, or ``None``.
    """

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    constant: bool
    scale: float | None = None
    zero_point: int | None = None


@dataclass(frozen=True)
class OpInfo:
    """One operator: its TFLite name (``"CONV_2D"``; custom ops ``"CUSTOM:<code>"``), operator
    version (``edgetpu_compiler`` knows the versions of its TensorFlow release) and tensors."""

    index: int
    name: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    version: int = 1


class EdgeTPUCheckError(ValueError):
    """A ``.tflite`` the Edge TPU cannot run; ``check`` holds the full :class:`EdgeTPUCheck`."""

    def __init__(self, check: EdgeTPUCheck) -> None:
        super().__init__(check.report())
        self.check = check


@dataclass
class EdgeTPUCheck:
    """What :func:`check_edgetpu` found in a ``.tflite``.

    Attributes:
        path: the file checked.
        ops: every operator, in execution order (all subgraphs).
        tensors: every tensor (all subgraphs).
        inputs, outputs: the main subgraph's input/output tensors.
        problems: readable reasons the Edge TPU cannot run the file (empty = ok).
        warnings: documented per-op limitations of the ops used (the compiler decides).
    """

    path: Path
    ops: list[OpInfo]
    tensors: list[TensorInfo]
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    @property
    def op_counts(self) -> dict[str, int]:
        """``{op name: count}``, most frequent first."""
        return dict(Counter(op.name for op in self.ops).most_common())

    def raise_if_failed(self) -> None:
        """Raise :class:`EdgeTPUCheckError` (a ``ValueError``) with :meth:`report` if not ok."""
        if not self.ok:
            raise EdgeTPUCheckError(self)

    def report(self) -> str:
        """A multi-line, readable account: verdict, ops, I/O tensors, problems and warnings."""
        verdict = "passes" if self.ok else f"FAILS ({len(self.problems)} problem(s))"
        lines = [f"Edge TPU check of {self.path}: {verdict}"]
        lines.append(
            f"  {len(self.ops)} ops: "
            + ", ".join(f"{name}×{n}" for name, n in self.op_counts.items())
        )
        dtypes = Counter(t.dtype for t in self.tensors)
        lines.append(
            f"  {len(self.tensors)} tensors: " + ", ".join(f"{k} {v}" for k, v in dtypes.items())
        )
        for role, group in (("input", self.inputs), ("output", self.outputs)):
            for t in group:
                q = "" if t.scale is None else f" scale={t.scale:.6g} zero_point={t.zero_point}"
                lines.append(f"  {role} {t.name!r} {list(t.shape)} {t.dtype}{q}")
        lines += [f"  problem: {p}" for p in self.problems]
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.report()


def _tensor_info(
    schema: Any, model: Any, subgraph: Any, index: int, types: dict[int, str]
) -> TensorInfo:
    t = subgraph.Tensors(index)
    sig = [t.ShapeSignature(j) for j in range(t.ShapeSignatureLength())]
    shape = tuple(sig) if sig else tuple(t.Shape(j) for j in range(t.ShapeLength()))
    buffer_index = t.Buffer()
    constant = False
    if 0 < buffer_index < model.BuffersLength():
        buf = model.Buffers(buffer_index)
        offset = buf.Offset() if hasattr(buf, "Offset") else 0
        constant = buf.DataLength() > 0 or offset > 1
    scale: float | None = None
    zero_point: int | None = None
    q = t.Quantization()
    if q is not None and q.ScaleLength() > 0:
        scale = float(q.Scale(0))
        zero_point = int(q.ZeroPoint(0)) if q.ZeroPointLength() > 0 else 0
    name = t.Name()
    return TensorInfo(
        index=index,
        name=name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name),
        shape=tuple(int(s) for s in shape),
        dtype=types.get(t.Type(), f"TYPE_{t.Type()}"),
        constant=constant,
        scale=scale,
        zero_point=zero_point,
    )


def _examples(tensors: Sequence[TensorInfo], limit: int = 4) -> str:
    shown = ", ".join(f"{t.name!r} {list(t.shape)}" for t in tensors[:limit])
    more = f" and {len(tensors) - limit} more" if len(tensors) > limit else ""
    return shown + more


def check_edgetpu(path: str | Path) -> EdgeTPUCheck:
    """List a ``.tflite``'s ops and tensors and check them against the Edge TPU's requirements.

    Problems (each makes ``.ok`` False): an op outside :data:`EDGETPU_SUPPORTED_OPS` (a custom
    op other than the compiler's ``edgetpu-custom-op`` included); any float16/float32/float64
    tensor, constant or activation; an activation that is not 8-bit (e.g. int32, int16);
    a tensor of more than 4 dimensions; an activation of 4 dimensions whose leading dimension
    is not 1 (the Edge TPU keeps only the 3 innermost dimensions); an input with batch != 1 or
    a dynamic dimension. Warnings: the documented limitations of the ops used
    (:data:`EDGETPU_OP_LIMITATIONS`).

    Args:
        path: a ``.tflite`` flatbuffer (plain or compiled by ``edgetpu_compiler``).

    Returns:
        An :class:`EdgeTPUCheck`; call ``raise_if_failed()`` to turn problems into an error.

    Raises:
        FileNotFoundError: no such file. ValueError: not a TFLite flatbuffer.
    """
    data = _read_bytes(path)
    schema = _schema()
    model = schema.Model.GetRootAs(data, 0)
    op_names = _enum_names(schema.BuiltinOperator)
    types = _enum_names(schema.TensorType)
    opcodes: list[str] = []
    versions: list[int] = []
    for i in range(model.OperatorCodesLength()):
        oc = model.OperatorCodes(i)
        code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
        name = op_names.get(code, f"BUILTIN_{code}")
        if name == "CUSTOM":
            custom = oc.CustomCode()
            name = "CUSTOM:" + (custom.decode() if isinstance(custom, bytes) else str(custom))
        opcodes.append(name)
        versions.append(int(oc.Version()))

    ops: list[OpInfo] = []
    tensors: list[TensorInfo] = []
    inputs: list[TensorInfo] = []
    outputs: list[TensorInfo] = []
    for s in range(model.SubgraphsLength()):
        sg = model.Subgraphs(s)
        infos = [_tensor_info(schema, model, sg, i, types) for i in range(sg.TensorsLength())]
        tensors += infos
        for j in range(sg.OperatorsLength()):
            op = sg.Operators(j)
            ops.append(
                OpInfo(
                    index=len(ops),
                    name=opcodes[op.OpcodeIndex()],
                    inputs=tuple(int(op.Inputs(k)) for k in range(op.InputsLength())),
                    outputs=tuple(int(op.Outputs(k)) for k in range(op.OutputsLength())),
                    version=versions[op.OpcodeIndex()],
                )
            )
        if s == 0:
            inputs = [infos[int(sg.Inputs(k))] for k in range(sg.InputsLength())]
            outputs = [infos[int(sg.Outputs(k))] for k in range(sg.OutputsLength())]

    problems: list[str] = []
    unsupported = Counter(
        op.name
        for op in ops
        if op.name not in EDGETPU_SUPPORTED_OPS and op.name != f"CUSTOM:{_COMPILED_OP}"
    )
    for name, n in unsupported.most_common():
        problems.append(f"op {name} (×{n}) is not in the Edge TPU's supported operations")
    floats = [t for t in tensors if t.dtype in _FLOAT_TYPES]
    if floats:
        kinds = ", ".join(f"{k} {v}" for k, v in Counter(t.dtype for t in floats).items())
        problems.append(
            f"{len(floats)} float tensor(s) ({kinds}), e.g. {_examples(floats)}: the Edge TPU "
            "computes in 8-bit integers only (full-integer quantization needed)"
        )
    odd = [
        t
        for t in tensors
        if not t.constant and t.dtype not in _FLOAT_TYPES and t.dtype not in _EIGHT_BIT
    ]
    if odd:
        kinds = ", ".join(f"{k} {v}" for k, v in Counter(t.dtype for t in odd).items())
        problems.append(f"{len(odd)} non-8-bit activation(s) ({kinds}), e.g. {_examples(odd)}")
    big = [t for t in tensors if len(t.shape) > 4]
    if big:
        problems.append(
            f"{len(big)} tensor(s) with more than 4 dimensions, e.g. {_examples(big)}: the "
            "Edge TPU handles at most 4"
        )
    input_ids = {id(t) for t in inputs}
    leading = [
        t
        for t in tensors
        if len(t.shape) == 4 and not t.constant and t.shape[0] > 1 and id(t) not in input_ids
    ]
    if leading:
        problems.append(
            f"{len(leading)} 4-D activation(s) with a leading dimension > 1, e.g. "
            f"{_examples(leading)}: only the 3 innermost dimensions may exceed 1"
        )
    for t in inputs:
        if any(d < 0 for d in t.shape):
            problems.append(f"input {t.name!r} has a dynamic shape {list(t.shape)}")
        elif len(t.shape) >= 2 and t.shape[0] != 1:
            problems.append(
                f"input {t.name!r} has batch {t.shape[0]} (shape {list(t.shape)}): the Edge "
                "TPU runs batch 1 only"
            )
    used = Counter(op.name for op in ops)
    warnings = [
        f"{name} (×{used[name]}): {EDGETPU_OP_LIMITATIONS[name]}"
        for name in sorted(used)
        if name in EDGETPU_OP_LIMITATIONS
    ]
    return EdgeTPUCheck(
        path=Path(path),
        ops=ops,
        tensors=tensors,
        inputs=inputs,
        outputs=outputs,
        problems=problems,
        warnings=warnings,
    )


# =========================================================================== description
def sidecar_path(path: str | Path) -> Path:
    """The sidecar JSON of a ``.tflite``: same folder and stem, suffix ``.json``."""
    return Path(path).with_suffix(".json")


def _embedded_description(path: Path) -> dict[str, Any] | None:
    try:
        schema = _schema()
    except ImportError:
        return None
    model = schema.Model.GetRootAs(_read_bytes(path), 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        name = entry.Name()
        if (name.decode() if isinstance(name, bytes) else name) != METADATA_NAME:
            continue
        buf = model.Buffers(entry.Buffer())
        raw = buf.DataAsNumpy()
        if isinstance(raw, int):  # empty vector
            return None
        text = np.asarray(raw, dtype=np.uint8).tobytes().decode("utf-8")
        loaded = json.loads(text)
        return loaded if isinstance(loaded, dict) else None
    return None


def read_description(path: str | Path, sidecar: str | Path | None = None) -> dict[str, Any]:
    """The JSON description of an Edge TPU export.

    Looked up in order: ``sidecar`` when given; ``<stem>.json`` next to ``path``; for a compiled
    ``<stem>_edgetpu.tflite``, ``<stem>.json``; the flatbuffer's ``"lowres_har"`` metadata
    entry (needs ``ai_edge_litert``).

    Raises:
        FileNotFoundError: none found. ValueError: a description of another format.
    """
    p = Path(path)
    candidates = [Path(sidecar)] if sidecar is not None else []
    if sidecar is None:
        candidates.append(sidecar_path(p))
        if p.stem.endswith("_edgetpu"):
            candidates.append(p.with_name(p.stem[: -len("_edgetpu")] + ".json"))
    desc: dict[str, Any] | None = None
    source = ""
    for c in candidates:
        if c.is_file():
            desc, source = json.loads(c.read_text(encoding="utf-8")), str(c)
            break
    else:
        if sidecar is not None:
            raise FileNotFoundError(f"{sidecar}: no such sidecar JSON")
        desc, source = _embedded_description(p), f"{p} (metadata)"
    if desc is None:
        raise FileNotFoundError(
            f"{p}: no description found (looked for {', '.join(map(str, candidates))} and the "
            f"{METADATA_NAME!r} metadata entry); pass sidecar= the JSON written by to_edgetpu"
        )
    if desc.get("format") != _FORMAT:
        raise ValueError(
            f"{source}: not a lowres-har Edge TPU description (format {desc.get('format')!r})"
        )
    return desc


# =========================================================================== runtime
def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor, without importing torch
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


def _quantize(x: np.ndarray, dtype: Any, scale: float, zero_point: int) -> np.ndarray:
    if not np.issubdtype(dtype, np.integer):
        return x.astype(dtype, copy=False)
    if scale == 0:
        raise ValueError("an integer input without quantization parameters cannot be fed floats")
    info = np.iinfo(dtype)
    q = np.round(x / scale) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def _dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    if not np.issubdtype(q.dtype, np.integer) or scale == 0:
        return q.astype(np.float32)
    return ((q.astype(np.float32) - zero_point) * scale).astype(np.float32)


class EdgeTPURunner:
    """Run an Edge TPU export frame by frame and return clip logits.

    The description (:func:`read_description`) says which interpreter tensor is which frame,
    the gates and each state, and where the classifier runs (``classifier="cpu"`` /
    ``"cpu_mlp"`` exports end with the host head's int8 input features; the runner dequantizes
    them and applies the stored float layers, :attr:`host_layers`); states start at zero
    (quantized), each step's output states are fed back (requantized when their scale/zero
    point differ from the input's), the gate row
    ``schedule[s]`` is fed at step ``s``, frame ``t`` at step ``t`` and zeros after the clip
    ends (``num_steps >= num_frames``: the extra steps flush the temporal receptive field).

    Args:
        path: ``model_int8.tflite`` from :func:`to_edgetpu`, or its compiled
            ``model_int8_edgetpu.tflite``.
        delegate: ``None`` (CPU interpreter), ``"edgetpu"`` (the Coral runtime
            ``libedgetpu.so.1`` through ``load_delegate``; needs a device and a compiled model;
            not testable here) or a delegate library path.
        sidecar: the JSON description, when not next to the file / embedded.
        num_threads: interpreter CPU threads.

    Needs only numpy and ``ai_edge_litert`` (or ``tflite_runtime``).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        delegate: str | None = None,
        sidecar: str | Path | None = None,
        num_threads: int | None = None,
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such .tflite file")
        self.description = read_description(self.path, sidecar)
        d = self.description
        self.input_keys: tuple[str, ...] = tuple(d["input_keys"])
        self.frame_shapes: dict[str, tuple[int, int, int]] = {}
        for k in self.input_keys:
            c, h, w = (int(v) for v in d["frame_shapes"][k])
            self.frame_shapes[k] = (c, h, w)
        self.frame_layout: str = d.get("frame_layout", "NCHW")
        self.num_frames = int(d["num_frames"])
        self.num_steps = int(d["num_steps"])
        self.num_classes = int(d["num_classes"])
        self.class_names: list[str] = list(d.get("class_names") or [])
        self.schedule = np.asarray(d["schedule"], dtype=np.float32).reshape(self.num_steps, -1)
        Interpreter, load_delegate = _interpreter_api()
        delegates = None
        if delegate is not None:
            library = _DELEGATE_LIBRARIES.get(sys.platform, "libedgetpu.so.1")
            library = library if delegate == "edgetpu" else delegate
            try:
                delegates = [load_delegate(library)]
            except (OSError, ValueError, RuntimeError) as err:
                raise RuntimeError(
                    f"{self.path}: cannot load the Edge TPU delegate {library!r} ({err}); install "
                    "the Coral runtime (libedgetpu1-std) and plug in the device, or use "
                    "delegate=None for the CPU"
                ) from err
        self.interpreter = Interpreter(
            model_path=str(self.path), experimental_delegates=delegates, num_threads=num_threads
        )
        self.interpreter.allocate_tensors()
        self._inputs = self._match(d["inputs"], self.interpreter.get_input_details(), "input")
        self._outputs = self._match(d["outputs"], self.interpreter.get_output_details(), "output")
        self._frame_in = [self._role(self._inputs, "frame", key=k) for k in self.input_keys]
        self._gates_in = self._role(self._inputs, "gates")
        n_states = len(d["states"])
        self._state_in = [self._role(self._inputs, "state", state=i) for i in range(n_states)]
        self._state_out = [self._role(self._outputs, "state", state=i) for i in range(n_states)]
        head = d.get("classifier") or {"placement": "tpu"}
        self.classifier: str = head["placement"]
        #: float layers run on the host after the int8 graph: ``(weight, bias, relu)``.
        self.host_layers: list[tuple[np.ndarray, np.ndarray, bool]] = []
        if self.classifier != "tpu":
            entries = head.get("layers") or [dict(head, relu=False)]  # format 1: one Linear
            for e in entries:
                shape = [int(v) for v in e["weight_shape"]]
                self.host_layers.append(
                    (
                        _from_b64(e["weight"], shape),
                        _from_b64(e["bias"], shape[:1]),
                        bool(e["relu"]),
                    )
                )
            self._logits_out = self._role(self._outputs, "features")
        else:
            self._logits_out = self._role(self._outputs, "logits")
        self._step = 0
        self._states: list[np.ndarray] = []
        self.reset()

    # ------------------------------------------------------------------ wiring
    def _match(
        self, entries: Sequence[Mapping[str, Any]], details: Sequence[dict[str, Any]], what: str
    ) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """Pair each described tensor with the interpreter's, by name, else by position."""
        by_name = {det["name"]: det for det in details}
        if all(e["name"] in by_name for e in entries):
            pairs = [(dict(e), by_name[e["name"]]) for e in entries]
        elif len(entries) == len(details):
            pairs = [(dict(e), det) for e, det in zip(entries, details, strict=True)]
        else:
            raise ValueError(
                f"{self.path}: its {len(details)} {what} tensors do not match the description's "
                f"{len(entries)} ({[e['name'] for e in entries]}); wrong sidecar?"
            )
        for e, det in pairs:
            if [int(s) for s in det["shape"]] != [int(s) for s in e["shape"]]:
                raise ValueError(
                    f"{self.path}: {what} {det['name']!r} has shape {list(det['shape'])}, the "
                    f"description says {e['shape']} ({e['role']})"
                )
        return pairs

    @staticmethod
    def _role(
        pairs: Sequence[tuple[dict[str, Any], dict[str, Any]]], role: str, **match: Any
    ) -> dict[str, Any]:
        for e, det in pairs:
            if e["role"] == role and all(e.get(k) == v for k, v in match.items()):
                return det
        raise ValueError(f"the description lists no {role} tensor {match or ''}")

    @staticmethod
    def _qparams(det: Mapping[str, Any]) -> tuple[float, int]:
        scale, zero_point = det["quantization"]
        return float(scale), int(zero_point)

    def _feed(self, det: Mapping[str, Any], x: np.ndarray) -> None:
        scale, zp = self._qparams(det)
        self.interpreter.set_tensor(det["index"], _quantize(x, det["dtype"], scale, zp))

    # ------------------------------------------------------------------ stepping
    def reset(self) -> None:
        """Zero the states (quantized zeros) and go back to step 0."""
        self._step = 0
        self._states = [
            _quantize(
                np.zeros([int(s) for s in det["shape"]], np.float32),
                det["dtype"],
                *self._qparams(det),
            )
            for det in self._state_in
        ]

    @property
    def step_index(self) -> int:
        """Steps run since the last :meth:`reset`."""
        return self._step

    def step(self, *frames: Any) -> np.ndarray:
        """One invocation: frames ``(C, H, W)`` (or ``(1, C, H, W)``), one per input key, floats.

        Uses gate row ``schedule[min(step, num_steps - 1)]`` and the carried states.

        Returns:
            This step's logits, float ``(num_classes,)``.
        """
        if len(frames) != len(self.input_keys):
            raise ValueError(
                f"{self.path}: step() takes {len(self.input_keys)} frames {self.input_keys}, "
                f"got {len(frames)}"
            )
        for key, det, frame in zip(self.input_keys, self._frame_in, frames, strict=True):
            x = _to_numpy(frame)
            c, h, w = self.frame_shapes[key]
            if x.shape not in ((c, h, w), (1, c, h, w)):
                raise ValueError(
                    f"{self.path}: frame {key!r} must be (C, H, W) = {(c, h, w)}, got {x.shape}"
                )
            x = x.reshape(1, c, h, w)
            if self.frame_layout == "NHWC":
                x = x.transpose(0, 2, 3, 1)
            self._feed(det, x)
        row = self.schedule[min(self._step, self.num_steps - 1)][None]
        self._feed(self._gates_in, row.reshape([int(s) for s in self._gates_in["shape"]]))
        for det, q in zip(self._state_in, self._states, strict=True):
            self.interpreter.set_tensor(det["index"], q)
        self.interpreter.invoke()
        new_states = []
        for out, inp in zip(self._state_out, self._state_in, strict=True):
            q = self.interpreter.get_tensor(out["index"])
            if self._qparams(out) != self._qparams(inp) or q.dtype != inp["dtype"]:
                q = _quantize(
                    _dequantize(q, *self._qparams(out)), inp["dtype"], *self._qparams(inp)
                )
            new_states.append(np.array(q, copy=True))
        self._states = new_states
        self._step += 1
        raw = self.interpreter.get_tensor(self._logits_out["index"])
        values = _dequantize(raw, *self._qparams(self._logits_out)).reshape(-1)
        for weight, bias, relu in self.host_layers:  # the head on the host CPU
            values = (weight @ values + bias).astype(np.float32)
            if relu:
                values = np.maximum(values, 0.0)
        return values

    def run_clip(self, *clips: Any) -> np.ndarray:
        """Clip logits, float ``(num_classes,)``.

        Args:
            *clips: one per input key, numpy or torch, ``(C, T, H, W)`` or ``(1, C, T, H, W)``
                with ``T == num_frames``, normalised like the PyTorch model's inputs.
        """
        if len(clips) != len(self.input_keys):
            raise ValueError(
                f"{self.path}: run_clip() takes {len(self.input_keys)} clips {self.input_keys}, "
                f"got {len(clips)}"
            )
        arrays = []
        for key, clip in zip(self.input_keys, clips, strict=True):
            x = _to_numpy(clip)
            if x.ndim == 5 and x.shape[0] == 1:
                x = x[0]
            c, h, w = self.frame_shapes[key]
            if x.ndim != 4 or (x.shape[0], x.shape[2], x.shape[3]) != (c, h, w):
                raise ValueError(
                    f"{self.path}: clip {key!r} must be (C, T, H, W) = ({c}, {self.num_frames}, "
                    f"{h}, {w}) or with a leading batch of 1, got {x.shape}"
                )
            if x.shape[1] != self.num_frames:
                raise ValueError(
                    f"{self.path}: clip {key!r} has {x.shape[1]} frames, the model was exported "
                    f"for {self.num_frames}"
                )
            if not np.isfinite(x).all():
                raise ValueError(f"{self.path}: clip {key!r} contains NaN or infinite values")
            arrays.append(x)
        self.reset()
        logits = np.zeros(self.num_classes, np.float32)
        for s in range(self.num_steps):
            frames = [
                a[:, s] if s < a.shape[1] else np.zeros((a.shape[0], *a.shape[2:]), np.float32)
                for a in arrays
            ]
            logits = self.step(*frames)
        return logits

    __call__ = run_clip

    def predict(self, *clips: Any, top_k: int = 5) -> list[tuple[str, float]]:
        """The ``top_k`` ``(class name, softmax probability)`` pairs of :meth:`run_clip`."""
        logits = self.run_clip(*clips).astype(np.float64)
        p = np.exp(logits - logits.max())
        p /= p.sum()
        names = self.class_names or [f"class_{i}" for i in range(self.num_classes)]
        order = np.argsort(-p)[:top_k]
        return [(names[i], float(p[i])) for i in order]

    def __repr__(self) -> str:
        return (
            f"EdgeTPURunner({str(self.path)!r}, inputs={self.input_keys}, "
            f"states={len(self._state_in)}, steps={self.num_steps}, classes={self.num_classes})"
        )


# =========================================================================== parity helpers
def _clip_tuple(clip: Any, keys: Sequence[str]) -> tuple[Tensor, ...]:
    """Normalise one calibration/check clip to a tuple of float ``(1, C, T, H, W)`` tensors."""
    import torch

    if isinstance(clip, Mapping):
        clip = tuple(clip[k] for k in keys)
    elif not isinstance(clip, (tuple, list)):
        clip = (clip,)
    if len(clip) != len(keys):
        raise ValueError(f"a clip needs {len(keys)} tensors {tuple(keys)}, got {len(clip)}")
    out = []
    for key, x in zip(keys, clip, strict=True):
        t = torch.as_tensor(x, dtype=torch.float32)
        if t.dim() == 4:
            t = t[None]
        if t.dim() != 5 or t.shape[0] != 1:
            raise ValueError(
                f"clip {key!r} must be (1, C, T, H, W) or (C, T, H, W), got {tuple(t.shape)}"
            )
        out.append(t)
    return tuple(out)


def streaming_parity(
    model: nn.Module,
    streaming: nn.Module,
    clips: Iterable[Any] | None = None,
    *,
    num_clips: int = 2,
    seed: int = 0,
) -> float:
    """Max abs difference between ``streaming.run_clip`` and the clip model's logits.

    Args:
        model: the clip model (``forward(*clips) -> (B, num_classes)``).
        streaming: its ``StreamingModel``.
        clips: tuples of ``(1, C, T, H, W)`` tensors in ``input_keys`` order; default
            ``num_clips`` standard-normal clips of the streaming model's frame shapes and
            ``num_frames``.
        num_clips, seed: the random clips' count and generator seed.

    Returns:
        The largest ``|float streaming - clip model|`` over all clips and classes.
    """
    import torch

    sm: Any = streaming
    keys = tuple(getattr(streaming, "input_keys", getattr(model, "input_keys", ())))
    if clips is None:
        gen = torch.Generator().manual_seed(seed)
        t = int(sm.num_frames)
        shapes = sm.frame_shapes
        clips = [
            tuple(torch.randn((1, shapes[k][0], t, *shapes[k][1:]), generator=gen) for k in keys)
            for _ in range(num_clips)
        ]
    worst = 0.0
    model.eval()
    streaming.eval()
    with torch.no_grad():
        for clip in clips:
            xs = _clip_tuple(clip, keys)
            ref = model(*xs)
            got = sm.run_clip(*xs)
            worst = max(worst, float((ref - got).abs().max()))
    return worst


def int8_agreement(runner: EdgeTPURunner, model: nn.Module, clips: Iterable[Any]) -> float:
    """Fraction of clips whose int8 top-1 (``runner``) equals the float clip model's top-1.

    Args:
        runner: an :class:`EdgeTPURunner`.
        model: the float clip model.
        clips: tuples of ``(1, C, T, H, W)`` (or ``(C, T, H, W)``) tensors in ``input_keys``
            order, or batch dicts keyed by the input keys.

    Raises:
        ValueError: no clips.
    """
    import torch

    model.eval()
    same = total = 0
    with torch.no_grad():
        for clip in clips:
            xs = _clip_tuple(clip, runner.input_keys)
            ref = int(model(*xs)[0].argmax())
            got = int(np.argmax(runner.run_clip(*xs)))
            same += int(ref == got)
            total += 1
    if total == 0:
        raise ValueError("int8_agreement needs at least one clip")
    return same / total


# =========================================================================== export
@dataclass
class EdgeTPUReport:
    """What :func:`to_edgetpu` produced and measured.

    Attributes:
        path: the int8 ``.tflite``.
        sidecar: its JSON description.
        float_path: the float streaming ``.tflite`` when kept, else ``None``.
        check: the :class:`EdgeTPUCheck` of ``path``.
        classifier: ``"tpu"`` (the graph outputs the logits), ``"cpu"`` (final Linear on the
            host, the graph outputs its input features) or ``"cpu_mlp"`` (the fully connected
            head on the host).
        streaming_max_abs_diff: float streaming graph vs clip model, max abs logit difference
            over the check clips.
        int8_agreement: top-1 agreement of the int8 file with the float clip model on the
            ``int8_clips`` check clips (calibration clips: in-sample for the ranges).
        int8_clips: clips behind ``int8_agreement``.
        int8_max_abs_diff: max abs logit difference int8 vs float clip model on those clips.
        int8_logit_corr: Pearson correlation of int8 and float logits over those clips.
        calibration_source: ``"datamodule:<split>"``, ``"iterable"`` or ``"random"``.
        num_calibration_clips: clips run through the float streaming model.
        num_calibration_samples: steps fed to the calibrator (clips × (``num_steps`` + 1): every
            step, plus the final states fed back once).
        size_bytes: size of ``path``.
        op_counts: ops of the int8 graph.
        seconds: wall time per stage.
        equalized: whether the model's activation ranges were equalised before quantization
            (:meth:`~lowres_har.models.msn.MSN.equalize_ranges`).
    """

    path: Path
    sidecar: Path
    float_path: Path | None
    check: EdgeTPUCheck
    classifier: str
    streaming_max_abs_diff: float
    int8_agreement: float | None
    int8_clips: int
    int8_max_abs_diff: float | None
    int8_logit_corr: float | None
    calibration_source: str
    num_calibration_clips: int
    num_calibration_samples: int
    size_bytes: int
    op_counts: dict[str, int]
    seconds: dict[str, float]
    equalized: bool = False

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields (the check as its problems, warnings and op counts)."""
        out = asdict(self)
        out["check"] = {
            "ok": self.check.ok,
            "problems": self.check.problems,
            "warnings": self.check.warnings,
        }
        return json.loads(json.dumps(out, default=str))

    def summary(self) -> str:
        """A few readable lines."""
        agree = "n/a" if self.int8_agreement is None else f"{self.int8_agreement:.1%}"
        lines = [
            f"Edge TPU export {self.path} ({self.size_bytes / 1024:.1f} KiB), sidecar {self.sidecar}",
            f"  checker: {'passes' if self.check.ok else 'FAILS'}; classifier on the "
            f"{self.classifier.upper()}; ops "
            + ", ".join(f"{k}×{v}" for k, v in self.op_counts.items()),
            f"  float streaming vs clip model: max |Δlogit| = {self.streaming_max_abs_diff:.2e}",
            f"  int8 vs float clip model on {self.int8_clips} clips: top-1 agreement {agree}"
            + (
                ""
                if self.int8_max_abs_diff is None
                else f", max |Δlogit| {self.int8_max_abs_diff:.3f}, corr {self.int8_logit_corr:.4f}"
            ),
            f"  calibration: {self.num_calibration_clips} clips / "
            f"{self.num_calibration_samples} steps ({self.calibration_source})"
            + ("; activation ranges equalised" if self.equalized else ""),
            "  seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in self.seconds.items()),
        ]
        return "\n".join(lines)


def _require_export_tools() -> None:
    import importlib

    for module in ("litert_torch", "ai_edge_litert"):
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise ImportError(f"Edge TPU export needs {module} ({_EXTRA_HINT})") from err


class _LitertQuiet:
    """Turn litert-torch's progress printing off for a block (it reads an environment variable)."""

    key = "LITERT_TORCH_SHOW_PROGRESS"

    def __init__(self, show: bool) -> None:
        self.show = show
        self.previous: str | None = None

    def __enter__(self) -> None:
        self.previous = os.environ.get(self.key)
        os.environ[self.key] = "y" if self.show else "n"

    def __exit__(self, *exc: object) -> None:
        if self.previous is None:
            os.environ.pop(self.key, None)
        else:
            os.environ[self.key] = self.previous


def _datamodule_clips(
    datamodule: Any, keys: Sequence[str], n: int
) -> tuple[list[tuple[Tensor, ...]], str]:
    """Up to ``n`` single clips, evenly spread over the validation (else test) split."""
    import torch

    errors = []
    for split, stage in (("val", "validate"), ("test", "test")):
        try:
            if hasattr(datamodule, "prepare_data"):
                datamodule.prepare_data()
            if hasattr(datamodule, "setup"):
                datamodule.setup(stage)
            loader = getattr(datamodule, f"{split}_dataloader")()
        except Exception as err:  # a data module may lack a split in many ways
            errors.append(f"{split}: {type(err).__name__}: {err}")
            continue
        if loader is None:
            continue
        dataset = getattr(loader, "dataset", None)
        clips: list[tuple[Tensor, ...]] = []
        try:
            size = len(dataset)  # type: ignore[arg-type]
            picks = np.unique(np.linspace(0, size - 1, min(n, size)).round().astype(int))
            for i in picks:
                item = dataset[int(i)]  # type: ignore[index]
                clips.append(
                    tuple(torch.as_tensor(item[k], dtype=torch.float32)[None] for k in keys)
                )
        except (TypeError, KeyError, NotImplementedError):
            clips = []
            for batch in loader:
                b = len(batch[keys[0]])
                for j in range(b):
                    clips.append(tuple(batch[k][j : j + 1].float() for k in keys))
                    if len(clips) >= n:
                        break
                if len(clips) >= n:
                    break
        if clips:
            return clips, f"datamodule:{split}"
    raise ValueError(
        f"{type(datamodule).__name__}: no clips for calibration from its val or test dataloader"
        + (f" ({'; '.join(errors)})" if errors else "")
    )


def _steps(
    streaming: nn.Module, clip: tuple[Tensor, ...], *, final_states: bool = False
) -> Iterator[tuple[Tensor, ...]]:
    """Each step's forward arguments ``(*frames, gates, *states)`` of the float streaming model.

    ``final_states``: one more set after the last step, whose states are the last step's output
    states (zero frames, the last gate row). For calibration: a state whose producer writes it
    only on the last step (a global accumulator fed once) is otherwise never seen as an input
    with anything but zeros, and would get a zero quantization scale.
    """
    import torch

    sm: Any = streaming
    states = list(sm.init_states(1))
    schedule = sm.schedule
    t = clip[0].shape[2]
    n = int(sm.num_steps)
    for s in range(n):
        frames = [c[:, :, s] if s < t else torch.zeros_like(c[:, :, 0]) for c in clip]
        args = (*frames, schedule[s : s + 1].float(), *states)
        yield args
        out = streaming(*args)
        states = list(out[1:])
    if final_states:
        frames = [torch.zeros_like(c[:, :, 0]) for c in clip]
        yield (*frames, schedule[n - 1 : n].float(), *states)


def _convert_float(streaming: nn.Module, sample: tuple[Tensor, ...], verbose: bool) -> bytes:
    import litert_torch
    import torch

    try:
        with _LitertQuiet(verbose), torch.no_grad():
            edge = litert_torch.convert(streaming, sample)
    except Exception as err:  # the converter raises many error types
        raise RuntimeError(
            f"litert-torch could not convert the streaming {type(streaming).__name__} with "
            f"inputs {[tuple(t.shape) for t in sample]}: {type(err).__name__}: {err}"
        ) from err
    return bytes(edge.model_content())


def _signature_order(content: bytes) -> tuple[list[int], dict[str, int], dict[str, int]]:
    """``(perm, in_index, out_index)``: subgraph input ``p`` is forward arg ``perm[p]``; tensor
    indices of signature entries ``args_i`` / ``output_j``."""
    Interpreter, _ = _interpreter_api()
    it = Interpreter(model_content=content)
    runner = it.get_signature_runner()
    ins = {k: int(v["index"]) for k, v in runner.get_input_details().items()}
    outs = {k: int(v["index"]) for k, v in runner.get_output_details().items()}
    arg_of = {index: int(name.rsplit("_", 1)[1]) for name, index in ins.items()}
    perm = [arg_of[int(d["index"])] for d in it.get_input_details()]
    return perm, ins, outs


def _quantize_model(
    content: bytes,
    samples: Iterable[Sequence[np.ndarray]],
    perm: Sequence[int],
    *,
    per_channel: bool,
) -> tuple[bytes, int]:
    """Full-integer PTQ with TFLite's calibrator: int8 in/out, int8 activations, int32 bias."""
    try:
        from ai_edge_litert import _pywrap_tensorflow_lite_calibration_wrapper as calibration
    except ImportError as err:
        raise ImportError(
            "full-integer quantization needs ai-edge-litert's TFLite calibrator "
            f"(_pywrap_tensorflow_lite_calibration_wrapper; {_EXTRA_HINT})"
        ) from err
    wrapper = calibration.CalibrationWrapper(content, [], [])
    count = 0
    for sample in samples:
        ordered = [np.ascontiguousarray(sample[i], dtype=np.float32) for i in perm]
        if count == 0:
            wrapper.Prepare([list(a.shape) for a in ordered])
        wrapper.FeedTensor(ordered)
        count += 1
    if count == 0:
        raise ValueError("full-integer quantization needs at least one calibration sample")
    int8 = np.dtype(np.int8).num
    out = wrapper.QuantizeModel(
        int8,  # input type
        int8,  # output type
        False,  # allow_float: every op must have an int8 kernel
        int8,  # activations
        np.dtype(np.int32).num,  # bias
        not per_channel,  # disable_per_channel
        False,  # disable_per_channel_quantization_for_dense_layers
    )
    return bytes(out), count


def _finalise(
    content: bytes, names_in: Mapping[int, str], names_out: Mapping[int, str], desc_fn: Any
) -> tuple[bytes, dict[str, Any]]:
    """Rename I/O tensors (and signature entries), then embed the description as metadata.

    ``desc_fn(interpreter_details)`` builds the description once names and quantization are final.
    """
    from ai_edge_litert.tools import flatbuffer_utils

    schema = _schema()
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    main = model.subgraphs[0]
    renames = {**names_in, **names_out}
    for index, name in renames.items():
        main.tensors[index].name = name.encode()
    for signature in model.signatureDefs or []:
        for entry in [*(signature.inputs or []), *(signature.outputs or [])]:
            if int(entry.tensorIndex) in renames:
                entry.name = renames[int(entry.tensorIndex)].encode()
    renamed = bytes(flatbuffer_utils.convert_object_to_bytearray(model))
    Interpreter, _ = _interpreter_api()
    it = Interpreter(model_content=renamed)
    desc = desc_fn(it.get_input_details(), it.get_output_details())
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(renamed))
    if not model.buffers:
        model.buffers = [schema.BufferT()]
    payload = schema.BufferT()
    payload.data = np.frombuffer(json.dumps(desc).encode("utf-8"), dtype=np.uint8)
    model.buffers.append(payload)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME.encode()
    entry.buffer = len(model.buffers) - 1
    model.metadata = [
        m for m in (model.metadata or []) if (m.name or b"") != METADATA_NAME.encode()
    ] + [entry]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)), desc


def _io_entry(det: Mapping[str, Any], role: str, **extra: Any) -> dict[str, Any]:
    scale, zp = det["quantization"]
    return {
        "name": det["name"],
        "role": role,
        **extra,
        "shape": [int(s) for s in det["shape"]],
        "dtype": np.dtype(det["dtype"]).name,
        "scale": float(scale),
        "zero_point": int(zp),
    }


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _logit_stats(ref: np.ndarray, got: np.ndarray) -> tuple[float, float]:
    diff = float(np.abs(ref - got).max())
    a, b = ref.ravel() - ref.mean(), got.ravel() - got.mean()
    denom = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return diff, float((a * b).sum() / denom) if denom > 0 else float("nan")


def _final_linear(loaded: LoadedModel) -> tuple[str, nn.Linear | None]:
    """``(attribute path, module)`` of the model's final classifier ``Linear`` (card's
    ``classifier`` entry, else ``fc``); ``None`` when there is no such ``nn.Linear``."""
    from torch import nn

    from lowres_har.registry import model_card

    names = list(model_card(loaded.name).classifier) if loaded.name else ["fc"]
    path = names[-1] if names else "fc"
    try:
        module = loaded.model.get_submodule(path)
    except AttributeError:
        return path, None
    if not isinstance(module, nn.Linear) or module.out_features != loaded.num_classes:
        return path, None
    return path, module


def _dense_stack(module: nn.Module) -> HostLayers | None:
    """The ``(Linear, relu)`` layers of a Sequential made only of Linear / ReLU / Dropout /
    Identity (dropout is the identity at inference), else ``None``."""
    from torch import nn

    if not isinstance(module, nn.Sequential):
        return None
    layers: HostLayers = []
    for m in module:
        if isinstance(m, nn.Linear):
            layers.append((m, False))
        elif isinstance(m, nn.ReLU):
            if not layers or layers[-1][1]:
                return None
            layers[-1] = (layers[-1][0], True)
        elif not isinstance(m, nn.Dropout | nn.Identity):
            return None
    return layers or None


def _host_head(loaded: LoadedModel, mode: str) -> tuple[list[str], HostLayers]:
    """Modules to cut from the int8 graph and the float layers that replace them on the host.

    ``"cpu"``: the final classifier ``Linear``. ``"cpu_mlp"``: also the fully connected stack
    registered just before it in the same parent module (MSN's ``mlp``). The caller checks the
    result against the clip model (streaming parity), so a stack that is not in fact applied
    right before the classifier is caught there.
    """
    name = loaded.name or type(loaded.model).__name__
    path, fc = _final_linear(loaded)
    if fc is None:
        raise ValueError(
            f"{name}: no final nn.Linear classifier found ({path}); use classifier='tpu'"
        )
    if mode == "cpu":
        return [path], [(fc, False)]
    parent_path, _, leaf = path.rpartition(".")
    parent = loaded.model.get_submodule(parent_path) if parent_path else loaded.model
    children = list(parent.named_children())
    at = [n for n, _ in children].index(leaf)
    stack = _dense_stack(children[at - 1][1]) if at > 0 else None
    if stack is None or stack[-1][0].out_features != fc.in_features or not stack[-1][1]:
        raise ValueError(
            f"{name}: no fully connected stack (Linear/ReLU/Dropout Sequential ending in ReLU) "
            f"right before its classifier {path!r}; use classifier='cpu'"
        )
    before = f"{parent_path}.{children[at - 1][0]}" if parent_path else children[at - 1][0]
    return [before, path], [*stack, (fc, False)]


def _feature_model(model: nn.Module, paths: Sequence[str], in_features: int) -> nn.Module:
    """A copy of ``model`` whose modules at ``paths`` are ``Identity``: it returns the host
    head's input features ``(B, F)``; ``num_classes`` is ``F`` for the streaming rewrite."""
    import copy

    from torch import nn

    class FeatureModel(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = copy.deepcopy(model)
            for path in paths:
                parent, _, leaf = path.rpartition(".")
                owner = self.net.get_submodule(parent) if parent else self.net
                setattr(owner, leaf, nn.Identity())
            self.input_keys = tuple(model.input_keys)  # type: ignore[arg-type]
            self.num_classes = int(in_features)

        def forward(self, *xs: Tensor) -> Tensor:
            return self.net(*xs)  # type: ignore[no-any-return]

    return FeatureModel().eval()


def _apply_host(layers: HostLayers, x: Tensor) -> Tensor:
    for linear, relu in layers:
        x = linear(x)
        if relu:
            x = x.clamp_min(0)
    return x


def _with_head(streaming: nn.Module, layers: HostLayers | None) -> nn.Module:
    """``streaming`` whose ``run_clip`` ends with the float host ``layers`` (parity checks)."""
    if not layers:
        return streaming
    from torch import nn

    inner: Any = streaming
    host = list(layers)

    class WithHead(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = inner
            self.head = nn.ModuleList([m for m, _ in host])
            self.input_keys = inner.input_keys
            self.frame_shapes = inner.frame_shapes
            self.num_frames = inner.num_frames

        def run_clip(self, *clips: Tensor) -> Tensor:
            return _apply_host(host, inner.run_clip(*clips))

    return WithHead().eval()


def _b64(a: np.ndarray) -> str:
    import base64

    return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode("ascii")


def _from_b64(text: str, shape: Sequence[int]) -> np.ndarray:
    import base64

    return np.frombuffer(base64.b64decode(text), dtype="<f4").reshape(shape).astype(np.float32)


def _head_description(placement: str, layers: HostLayers | None) -> dict[str, Any]:
    if not layers:
        return {"placement": "tpu"}
    entries = []
    for linear, relu in layers:
        weight = linear.weight.detach().cpu().numpy()
        bias = (
            linear.bias.detach().cpu().numpy()
            if linear.bias is not None
            else np.zeros(weight.shape[0], np.float32)
        )
        entries.append(
            {
                "weight_shape": list(weight.shape),
                "weight": _b64(weight),
                "bias": _b64(bias),
                "relu": relu,
            }
        )
    return {
        "placement": placement,
        "input": "features",
        "layers": entries,
        "encoding": (
            "base64 of little-endian float32, row-major; per layer x = weight @ x + bias, then "
            "max(x, 0) when relu; the last layer gives the logits"
        ),
    }


def to_edgetpu(
    model_or_checkpoint: nn.Module | str | Path | LoadedModel,
    path: str | Path,
    *,
    datamodule: Any = None,
    calibration: Iterable[Any] | None = None,
    num_calibration_clips: int = 64,
    num_frames: int | None = None,
    size: tuple[int, int] | None = None,
    check: bool = True,
    num_check_clips: int = 8,
    per_channel: bool = True,
    float_path: str | Path | None = None,
    streaming: nn.Module | None = None,
    fuse_taps: bool = True,
    classifier: str | None = None,
    equalize: bool = True,
    verbose: bool = False,
    progress: bool = True,
    **model_kwargs: Any,
) -> EdgeTPUReport:
    """Export a clip model as a full-integer streaming ``.tflite`` for the Edge TPU.

    See the module docstring for the pipeline and how to compile/run the result on a Coral.

    Args:
        model_or_checkpoint: a lowres-har model, registered name or task checkpoint
            (:func:`~lowres_har.export.common.load_model`); Conv3d / BatchNorm3d / MaxPool3d /
            AvgPool3d / ReLU / Linear networks (MSN with every fusion, the R3D family).
        path: the int8 ``.tflite`` to write; the sidecar goes to :func:`sidecar_path`.
        datamodule: a ``LightningDataModule`` whose val (else test) dataloader yields dicts of
            ``(B, C, T, H, W)`` tensors keyed by the model's ``input_keys``: the representative
            dataset (``num_calibration_clips`` clips spread over the split).
        calibration: clips to calibrate with instead: an iterable of tuples of
            ``(1, C, T, H, W)`` tensors in ``input_keys`` order (the first
            ``num_calibration_clips`` are used). With neither, standard-normal random clips
            (fine for an architecture check, poor ranges for real data).
        num_calibration_clips: clips whose every step feeds the calibrator.
        num_frames, size: clip length ``T`` and ``(H, W)``; default from the model/card.
        check: run :func:`check_edgetpu` and raise :class:`EdgeTPUCheckError` on problems
            (the files are written first, for inspection).
        num_check_clips: calibration clips (at most) the int8 file is compared on with the
            float clip model (top-1 agreement, logit error).
        per_channel: per-output-channel weight scales (Edge TPU compiler ≥ 14 takes them).
        float_path: also write the float32 streaming ``.tflite`` there.
        streaming: a ready ``StreamingModel`` of the model (default:
            :func:`~lowres_har.export.streaming.to_streaming`), e.g. a hand-written one.
        fuse_taps: build each Conv3d as one ``conv2d`` over its channel-concatenated frame
            window (default) rather than a sum of per-tap ``conv2d``: fewer ops, and one int32
            accumulation instead of adding separately requantized int8 partial sums.
        classifier: where the classifier runs (:data:`CLASSIFIER_PLACEMENTS`). ``"tpu"`` or
            ``None`` (default): the whole network, logits included, in the int8 graph (output
            ``logits``). ``"cpu"``: the int8 graph ends with the final ``Linear``'s input
            features (output ``features``) and the runtime applies that layer, stored in the
            description, in float on the host CPU - Coral's own pattern for the last layer
            (pycoral's imprinting / softmax-regression engines). It removes the int8 logits'
            rounding step, which alone flips the top-1 of near-tie clips (see
            :func:`evaluate_edgetpu`'s ``near_ties``). ``"cpu_mlp"``: the fully connected stack
            right before the classifier (MSN's ``mlp``) moves to the host too, so the int8 graph
            ends with the pooled convolutional features; the dense layers' int8 rounding goes
            with it (a few dense products, negligible next to the 3D convolutions). The host
            part is checked against the clip model like the streaming graph.
        equalize: let a model's ``int8_form`` equalise the activation ranges on the
            calibration clips (:meth:`~lowres_har.models.msn.MSN.equalize_ranges`: per-channel
            factors folded into the weights, the float function unchanged); models without it
            ignore this. On five MSN-S checkpoints (one per fusion) it raised the mean top-1
            agreement with the dense head on the host from 96.8 to 97.2 % on the validation
            split and from 95.6 to 96.5 % on the test split, though not on every checkpoint
            (see the deployment guide). For other exponents, export
            ``model.int8_form(clips, channels=..., tensors=...)`` with ``equalize=False``.
        verbose: show litert-torch's conversion progress.
        progress: a rich progress bar over the calibration clips.
        **model_kwargs: architecture options for a name / overrides of a checkpoint's.

    Returns:
        An :class:`EdgeTPUReport`.

    Raises:
        ImportError: litert-torch / ai-edge-litert missing (``lowres-har[tflite]``).
        RuntimeError: the streaming graph cannot be converted or quantized.
        EdgeTPUCheckError: ``check=True`` and the result is not Edge TPU compatible.
    """
    import torch

    from lowres_har.export.common import input_shapes, load_model

    _require_export_tools()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    loaded = load_model(model_or_checkpoint, **model_kwargs)
    model = loaded.model.eval()
    keys = tuple(loaded.input_keys)
    shapes = input_shapes(loaded, num_frames=num_frames, size=size)
    t_frames = next(iter(shapes.values()))[1]
    hw = (int(next(iter(shapes.values()))[2]), int(next(iter(shapes.values()))[3]))
    if classifier not in CLASSIFIER_PLACEMENTS and classifier is not None:
        raise ValueError(
            f"classifier must be one of {CLASSIFIER_PLACEMENTS} or None, got {classifier!r}"
        )
    placement = classifier or "tpu"

    # ---- calibration clips (also what int8_form equalises the ranges on)
    source = "random"
    if calibration is not None:
        clips = []
        for clip in calibration:
            clips.append(_clip_tuple(clip, keys))
            if len(clips) >= num_calibration_clips:
                break
        source = "iterable"
    elif datamodule is not None:
        clips, source = _datamodule_clips(datamodule, keys, num_calibration_clips)
    else:
        gen = torch.Generator().manual_seed(0)
        clips = [
            tuple(torch.randn((1, *shapes[k]), generator=gen) for k in keys)
            for _ in range(num_calibration_clips)
        ]
    if not clips:
        raise ValueError("to_edgetpu: the calibration iterable yielded no clips")
    for clip in clips:
        for key, x in zip(keys, clip, strict=True):
            if tuple(x.shape[1:]) != tuple(shapes[key]):
                raise ValueError(
                    f"calibration clip {key!r} is {tuple(x.shape)}, the export is for "
                    f"(1, {', '.join(map(str, shapes[key]))})"
                )
    timings["data"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    reference = model  # what the parity and int8 checks compare against
    equalized = False
    int8_form = getattr(model, "int8_form", None)
    if callable(int8_form):  # MSN: multilayer as one conv per block, ranges equalised
        if equalize and "calibration" in inspect.signature(int8_form).parameters:
            model = cast("nn.Module", int8_form(calibration=clips))
            equalized = True
        else:
            model = cast("nn.Module", int8_form())
        model = model.eval()
        loaded = replace(loaded, model=model)
    head: HostLayers | None = None
    cut: list[str] = []
    if placement != "tpu":
        if streaming is not None:
            raise ValueError(
                f"classifier={placement!r} needs the streaming model built here (its output must "
                "be the host head's input); pass classifier='tpu' with a ready streaming model"
            )
        cut, head = _host_head(loaded, placement)
    if streaming is None:
        from lowres_har.export.streaming import to_streaming

        net = _feature_model(model, cut, head[0][0].in_features) if head else loaded
        streaming = to_streaming(net, num_frames=t_frames, size=hw, fuse_taps=fuse_taps)
    streaming = streaming.eval()
    sm: Any = streaming
    timings["streaming"] = time.perf_counter() - t0

    # ---- float parity of the streaming graph
    t0 = time.perf_counter()
    check_clips = clips[: max(0, num_check_clips)]
    parity = streaming_parity(
        reference, _with_head(streaming, head), check_clips or None, num_clips=1
    )
    if head and parity > 1e-3:  # the host head is not what the clip model applies
        raise RuntimeError(
            f"classifier={placement!r}: the streaming features followed by the host layers "
            f"differ from the clip model by {parity:.3g}; this model's head is not a plain "
            "fully connected stack before its classifier (use classifier='cpu' or 'tpu')"
        )
    if parity > 1e-4:
        log.warning("streaming graph differs from the clip model by %.3g (> 1e-4)", parity)
    timings["parity"] = time.perf_counter() - t0

    # ---- float TFLite of one step
    t0 = time.perf_counter()
    with torch.no_grad():
        sample = next(_steps(streaming, clips[0]))
    float_content = _convert_float(streaming, tuple(a.detach() for a in sample), verbose)
    if float_path is not None:
        Path(float_path).parent.mkdir(parents=True, exist_ok=True)
        Path(float_path).write_bytes(float_content)
    perm, sig_in, sig_out = _signature_order(float_content)
    timings["convert"] = time.perf_counter() - t0

    # ---- full-integer quantization, calibrated on every step of every clip
    t0 = time.perf_counter()

    def samples() -> Iterator[list[np.ndarray]]:
        from rich.progress import Progress

        with Progress(disable=not progress, transient=True) as bar, torch.no_grad():
            task = bar.add_task("Edge TPU calibration", total=len(clips))
            for clip in clips:
                for args in _steps(streaming, clip, final_states=True):
                    yield [a.detach().cpu().numpy() for a in args]
                bar.advance(task)

    try:
        int8_content, n_samples = _quantize_model(
            float_content, samples(), perm, per_channel=per_channel
        )
    except (RuntimeError, ValueError) as err:
        raise RuntimeError(
            f"full-integer quantization of the streaming graph failed: {err}"
        ) from err
    timings["quantize"] = time.perf_counter() - t0

    # ---- names, description, files
    n_frames_in = len(keys)
    n_states = len(sm.state_shapes)
    names_in: dict[int, str] = {}
    roles_in: dict[str, dict[str, Any]] = {}
    role: dict[str, Any]
    for i in range(n_frames_in + 1 + n_states):
        if i < n_frames_in:
            name, role = keys[i], {"role": "frame", "key": keys[i]}
        elif i == n_frames_in:
            name, role = "gates", {"role": "gates"}
        else:
            j = i - n_frames_in - 1
            name, role = f"state_{j}", {"role": "state", "state": j}
        names_in[sig_in[f"args_{i}"]] = name
        roles_in[name] = role
    names_out: dict[int, str] = {}
    roles_out: dict[str, dict[str, Any]] = {}
    for j in range(1 + n_states):
        if j == 0:
            name = "features" if placement != "tpu" else "logits"
            role = {"role": name}
        else:
            name, role = f"state_{j - 1}_out", {"role": "state", "state": j - 1}
        names_out[sig_out[f"output_{j}"]] = name
        roles_out[name] = role
    if set(names_in) & set(names_out):
        raise RuntimeError(
            "a state of the streaming graph is returned unchanged (the same TFLite tensor is an "
            "input and an output); the runtime needs every state output to be its own tensor"
        )
    # the quantizer keeps the float graph's I/O tensor indices; check before trusting them
    _, q_in, q_out = _signature_order(int8_content)
    if q_in != sig_in or q_out != sig_out:
        raise RuntimeError("quantization changed the I/O tensor indices; cannot name them")

    def describe(ins: Sequence[dict[str, Any]], outs: Sequence[dict[str, Any]]) -> dict[str, Any]:
        in_entries = sorted(
            (_io_entry(d, **roles_in[d["name"]]) for d in ins),
            key=lambda e: list(roles_in).index(e["name"]),
        )
        out_entries = sorted(
            (_io_entry(d, **roles_out[d["name"]]) for d in outs),
            key=lambda e: list(roles_out).index(e["name"]),
        )
        return _jsonable(
            {
                "format": _FORMAT,
                "format_version": _FORMAT_VERSION,
                "model": loaded.name,
                "model_kwargs": loaded.model_kwargs,
                "source": loaded.source,
                "input_keys": list(keys),
                "frame_shapes": {k: list(sm.frame_shapes[k]) for k in keys},
                "frame_layout": "NCHW",
                "num_frames": int(sm.num_frames),
                "num_steps": int(sm.num_steps),
                "num_gates": int(sm.num_gates),
                "schedule": sm.schedule.detach().cpu().float().tolist(),
                "num_classes": int(loaded.num_classes),
                "classifier": _head_description(placement, head),
                "class_names": list(loaded.class_names),
                "states": [
                    {
                        "index": j,
                        "input": f"state_{j}",
                        "output": f"state_{j}_out",
                        "shape": list(sm.state_shapes[j]),
                    }
                    for j in range(n_states)
                ],
                "inputs": in_entries,
                "outputs": out_entries,
                "normalisation": loaded.extra.get("pipeline") or _NORMALISATION,
                "quantization": "full-integer post-training (TFLite calibrator): int8 weights "
                f"({'per-channel' if per_channel else 'per-tensor'}), int8 activations and "
                "I/O, int32 biases",
                "calibration": {"source": source, "clips": len(clips), "samples": n_samples},
                "usage": "EdgeTPURunner(path).run_clip(*clips) with clips (C, T, H, W) per "
                "input key; see lowres_har.export.edgetpu",
            }
        )

    t0 = time.perf_counter()
    final, desc = _finalise(int8_content, names_in, names_out, describe)
    out_path = Path(path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(final)
    side = sidecar_path(out_path)
    side.write_text(json.dumps(desc, indent=2) + "\n", encoding="utf-8")
    timings["write"] = time.perf_counter() - t0

    # ---- checks: graph, int8 vs float
    t0 = time.perf_counter()
    result = check_edgetpu(out_path)
    agreement = max_diff = corr = None
    if check_clips:
        runner = EdgeTPURunner(out_path)
        refs, gots = [], []
        with torch.no_grad():
            for clip in check_clips:
                refs.append(reference(*clip)[0].numpy())
                gots.append(runner.run_clip(*clip))
        ref, got = np.stack(refs), np.stack(gots)
        agreement = float((ref.argmax(1) == got.argmax(1)).mean())
        max_diff, corr = _logit_stats(ref, got)
    timings["check"] = time.perf_counter() - t0
    report = EdgeTPUReport(
        path=out_path,
        sidecar=side,
        float_path=Path(float_path) if float_path is not None else None,
        check=result,
        classifier=placement,
        streaming_max_abs_diff=parity,
        int8_agreement=agreement,
        int8_clips=len(check_clips),
        int8_max_abs_diff=max_diff,
        int8_logit_corr=corr,
        calibration_source=source,
        num_calibration_clips=len(clips),
        num_calibration_samples=n_samples,
        size_bytes=out_path.stat().st_size,
        op_counts=result.op_counts,
        seconds=timings,
        equalized=equalized,
    )
    if check:
        result.raise_if_failed()
    return report


# =========================================================================== evaluation
def evaluate_edgetpu(
    ckpt_or_model: nn.Module | str | Path | LoadedModel,
    datamodule: Any,
    *,
    path: str | Path | None = None,
    split: str = "test",
    max_clips: int | None = None,
    num_calibration_clips: int = 64,
    classifier: str | None = None,
    equalize: bool = True,
    tie_margin: float = 0.05,
    delegate: str | None = None,
    progress: bool = True,
    **model_kwargs: Any,
) -> dict[str, Any]:
    """Int8-vs-float top-1 agreement of an Edge TPU export over a whole split.

    Exports first (calibrating on the data module's validation split, :func:`to_edgetpu`) unless
    ``path`` names an existing export, then runs every clip of ``split`` through the float clip
    model (batched) and the int8 file (:class:`EdgeTPURunner`, one clip at a time).

    Args:
        ckpt_or_model: the float model (checkpoint, name or module), as for :func:`to_edgetpu`.
        datamodule: a ``LightningDataModule`` yielding dicts keyed by the model's input keys
            (plus ``label`` for accuracies).
        path: an existing int8 export to evaluate, or where to write a new one; ``None``
            exports into a temporary folder (deleted afterwards).
        split: ``"test"`` or ``"val"``.
        max_clips: stop after this many clips (``None``: the whole split).
        num_calibration_clips: for the export.
        classifier: for the export (``"tpu"`` / ``"cpu"`` / ``"cpu_mlp"``, see :func:`to_edgetpu`).
        equalize: for the export (:func:`to_edgetpu`).
        tie_margin: float top-1 minus top-2 logit below which a clip counts as a near tie
            (``near_ties``; ``agreement_decisive`` is the agreement over the other clips).
        delegate: runner delegate (``"edgetpu"`` on a Coral with a compiled file).
        progress: rich progress bar.
        **model_kwargs: architecture overrides for :func:`~lowres_har.export.common.load_model`.

    Returns:
        ``{"path", "clips", "agreement", "float_top1", "int8_top1", "max_abs_logit_diff",
        "mean_abs_logit_diff", "near_ties", "agreement_decisive", "classifier", "export"}``
        (``path`` ``None`` for a temporary export;
        accuracies ``None`` without single-label ``label``; ``export`` is
        :meth:`EdgeTPUReport.as_dict` when this call exported, else ``None``).

    Example::

        from lowres_har.cli import build_datamodule
        dm = build_datamodule("msn_synth")
        evaluate_edgetpu("best.ckpt", dm)["agreement"]   # fraction of test clips, 0..1
    """
    from lowres_har.export.common import load_model

    loaded = load_model(ckpt_or_model, **model_kwargs)
    if split not in ("test", "val"):
        raise ValueError(f"split must be 'test' or 'val', got {split!r}")
    export: dict[str, Any] | None = None
    scratch: tempfile.TemporaryDirectory[str] | None = None
    if path is None or not Path(path).is_file():
        if path is None:
            scratch = tempfile.TemporaryDirectory(prefix="lowres_har_edgetpu_")
            path = Path(scratch.name) / "model_int8.tflite"
        export = to_edgetpu(
            loaded,
            path,
            datamodule=datamodule,
            num_calibration_clips=num_calibration_clips,
            classifier=classifier,
            equalize=equalize,
            progress=progress,
        ).as_dict()
    try:
        return _evaluate(
            tie_margin,
            loaded,
            datamodule,
            Path(path),
            split,
            max_clips,
            delegate,
            progress,
            export,
            keep=scratch is None,
        )
    finally:
        if scratch is not None:
            scratch.cleanup()


def _evaluate(
    tie_margin: float,
    loaded: LoadedModel,
    datamodule: Any,
    path: Path,
    split: str,
    max_clips: int | None,
    delegate: str | None,
    progress: bool,
    export: dict[str, Any] | None,
    keep: bool,
) -> dict[str, Any]:
    import torch
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    model = loaded.model.eval()
    keys = tuple(loaded.input_keys)
    runner = EdgeTPURunner(path, delegate=delegate)
    if hasattr(datamodule, "prepare_data"):
        datamodule.prepare_data()
    if hasattr(datamodule, "setup"):
        datamodule.setup("test" if split == "test" else "validate")
    loader = getattr(datamodule, f"{split}_dataloader")()
    total = len(loader.dataset) if hasattr(loader, "dataset") else None  # type: ignore[arg-type]
    if max_clips is not None and total is not None:
        total = min(total, max_clips)
    agree = n = float_ok = int8_ok = labelled = ties = decisive_agree = 0
    diffs: list[float] = []
    max_diff = 0.0
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, disable=not progress) as bar, torch.no_grad():
        task = bar.add_task(f"int8 vs float ({split})", total=total)
        for batch in loader:
            xs = [batch[k].float() for k in keys]
            ref = model(*xs).numpy()
            labels = batch.get("label") if isinstance(batch, Mapping) else None
            single = labels is not None and labels.dim() == 1
            for i in range(ref.shape[0]):
                if max_clips is not None and n >= max_clips:
                    break
                got = runner.run_clip(*[x[i] for x in xs])
                r, g = int(ref[i].argmax()), int(got.argmax())
                agree += int(r == g)
                top2 = np.sort(ref[i])[-2:] if ref.shape[1] > 1 else np.zeros(2)
                if float(top2[1] - top2[0]) < tie_margin:
                    ties += 1
                else:
                    decisive_agree += int(r == g)
                d = np.abs(ref[i] - got)
                max_diff = max(max_diff, float(d.max()))
                diffs.append(float(d.mean()))
                if single:
                    y = int(labels[i])  # type: ignore[index]
                    float_ok += int(r == y)
                    int8_ok += int(g == y)
                    labelled += 1
                n += 1
                bar.advance(task)
            if max_clips is not None and n >= max_clips:
                break
    if n == 0:
        raise ValueError(f"{type(datamodule).__name__}: the {split} split has no clips")
    return {
        "path": str(path) if keep else None,
        "clips": n,
        "agreement": agree / n,
        "float_top1": float_ok / labelled if labelled else None,
        "int8_top1": int8_ok / labelled if labelled else None,
        "max_abs_logit_diff": max_diff,
        "mean_abs_logit_diff": float(np.mean(diffs)),
        "near_ties": ties,
        "agreement_decisive": decisive_agree / (n - ties) if n > ties else None,
        "classifier": runner.classifier,
        "export": export,
    }
