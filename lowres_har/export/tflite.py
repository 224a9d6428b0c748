"""Float32 and dynamic-range int8 TFLite export, checked under the LiteRT interpreter.

:func:`to_tflite` converts a lowres-har model (a module, a registered name or a task checkpoint)
with `litert-torch <https://github.com/google-ai-edge/litert-torch>`_, writes the ``.tflite``
flatbuffer and runs it under ``ai_edge_litert.interpreter.Interpreter`` next to the PyTorch model
on random (and optionally real) inputs; :class:`TFLiteRunner` is the small callable wrapper the
parity check, the benchmark and the Edge TPU runtime run artefacts through; :func:`op_list` lists
a flatbuffer's operators.

The artefact:

- one signature (``serving_default``) whose inputs are named after the model's ``input_keys``
  (subgraph input order = ``forward`` order) in PyTorch layout ``(B, C, T, H, W)`` float32, and
  one output ``logits`` ``(B, num_classes)``;
- a **static batch** (``batch``, default 1: the Edge TPU takes batch 1 only, and litert-torch
  cannot lower the flatten of a dynamic batch); :class:`TFLiteRunner` runs other batch sizes as
  consecutive invocations;
- a JSON description in the flatbuffer's own ``metadata`` table under the name
  ``"lowres_har"`` (:data:`METADATA_NAME`, read back with :func:`read_metadata`): model name,
  architecture options, class names, input keys and shapes, layout, ``num_classes``,
  quantisation mode, and the lowres-har / litert-torch versions. No sidecar file is written.

Quantisation (``quantize=``):

- ``None``: float32 throughout.
- ``"dynamic"``: int8 weights, float32 activations. ai-edge-quantizer's ``dynamic_wi8_afp32``
  recipe (per-channel symmetric int8) turns every op it supports into a hybrid kernel that
  quantises its activations on the fly: in these networks that is ``FULLY_CONNECTED`` (and
  ``CONV_2D`` where a model has one). TFLite's ``CONV_3D`` has **no** int8 or hybrid kernel and
  neither quantiser touches it, so the exporter then stores each ``CONV_3D`` filter as int8
  (per output channel, symmetric) behind a ``DEQUANTIZE`` op, as TensorFlow's classic
  dynamic-range converter does for ops without hybrid kernels: the file shrinks about 4× but
  **every 3-D convolution still computes in float32** (the runtime dequantises the constant
  filters once, on the first invocation, and keeps the float copies). :attr:`TFLiteReport.int8_weight_ops` and
  :attr:`TFLiteReport.dequantized_weight_ops` say which ops ended up where. For int8 3-D
  convolutions, see the Edge TPU streaming export (per-tap ``CONV_2D``).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from lowres_har.export.common import LoadedModel, example_inputs, load_model, real_inputs

__all__ = [
    "DYNAMIC_MAX_RELATIVE_DIFF",
    "DYNAMIC_MIN_TOP1",
    "METADATA_NAME",
    "QUANTIZE_MODES",
    "TFLiteParityError",
    "TFLiteReport",
    "TFLiteRunner",
    "op_list",
    "read_metadata",
    "to_tflite",
]

#: Accepted values of ``to_tflite(quantize=...)``.
QUANTIZE_MODES: tuple[str | None, ...] = (None, "dynamic")
#: Name of the flatbuffer metadata entry holding the lowres-har JSON description.
METADATA_NAME = "lowres_har"
#: ``quantize="dynamic"`` with ``check=True`` fails below this top-1 agreement with PyTorch
#: on the random clips ...
DYNAMIC_MIN_TOP1 = 0.75
#: ... or above this max abs logits difference relative to the largest |PyTorch logit|
#: (random-weight networks often give every random clip the same top-1, so agreement alone
#: would miss a broken quantisation).
DYNAMIC_MAX_RELATIVE_DIFF = 0.1

_EXTRA_HINT = 'pip install "lowres-har[tflite]"'
_OUTPUT_NAME = "logits"
# TFLite op version of DEQUANTIZE with a per-channel int8 input (tflite/tools/versioning).
_DEQUANTIZE_PER_CHANNEL_VERSION = 5


class TFLiteParityError(AssertionError):
    """The converted model's logits differ from PyTorch's beyond the allowed bound.

    Attributes:
        report: the :class:`TFLiteReport` with the figures (``None`` when raised before one
            existed); the ``.tflite`` file it names has been written.
    """

    def __init__(self, message: str, report: TFLiteReport | None = None) -> None:
        super().__init__(message)
        self.report = report


def _require(*modules: str) -> None:
    """Import-check the optional TFLite stack; ImportError naming the extra when missing."""
    import importlib

    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise ImportError(
                f"TFLite export needs the optional package providing {module!r} "
                f"({err}); install it with: {_EXTRA_HINT}"
            ) from err


def _schema() -> Any:
    _require("ai_edge_litert")
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


def _op_names() -> dict[int, str]:
    schema = _schema()
    return {
        value: name
        for name, value in vars(schema.BuiltinOperator).items()
        if not name.startswith("_") and isinstance(value, int)
    }


def _builtin_code(opcode: Any) -> int:
    """Builtin code of an ``OperatorCode`` (flatbuffer accessor or object API)."""
    if hasattr(opcode, "BuiltinCode"):
        return max(int(opcode.BuiltinCode()), int(opcode.DeprecatedBuiltinCode()))
    return max(int(opcode.builtinCode), int(opcode.deprecatedBuiltinCode))


def _read_bytes(path: str | Path) -> bytes:
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"{file}: no such TFLite file")
    data = file.read_bytes()
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ValueError(f"{file}: not a TFLite flatbuffer (no 'TFL3' identifier)")
    return data


def op_list(path: str | Path) -> list[str]:
    """Operator names of a ``.tflite`` file, in execution order, read from the flatbuffer.

    Builtin operators come as the schema's names (``"CONV_3D"``, ``"FULLY_CONNECTED"``,
    ``"DEQUANTIZE"``, ...); custom operators as ``"CUSTOM:<custom code>"``. The main subgraph
    comes first, then any further subgraphs. What a delegate (XNNPACK) takes over at run time
    does not change this list.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a TFLite flatbuffer.
    """
    schema = _schema()
    data = _read_bytes(path)
    model = schema.Model.GetRootAs(data, 0)
    names = _op_names()
    codes: list[str] = []
    for i in range(model.OperatorCodesLength()):
        opcode = model.OperatorCodes(i)
        code = _builtin_code(opcode)
        if code == schema.BuiltinOperator.CUSTOM:
            custom = opcode.CustomCode()
            codes.append(f"CUSTOM:{custom.decode() if custom else '?'}")
        else:
            codes.append(names.get(code, f"BUILTIN_{code}"))
    ops: list[str] = []
    for s in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(s)
        for k in range(subgraph.OperatorsLength()):
            ops.append(codes[subgraph.Operators(k).OpcodeIndex()])
    return ops


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The lowres-har JSON description stored in a ``.tflite`` (``{}`` when it has none).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a TFLite flatbuffer, or an unreadable ``lowres_har`` entry.
    """
    schema = _schema()
    data = _read_bytes(path)
    model = schema.Model.GetRootAs(data, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if (entry.Name() or b"").decode() != METADATA_NAME:
            continue
        buffer = model.Buffers(entry.Buffer())
        if buffer.Offset():
            raw = data[buffer.Offset() : buffer.Offset() + buffer.Size()]
        else:
            raw = buffer.DataAsNumpy().tobytes() if buffer.DataLength() else b""
        try:
            value = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"{path}: unreadable {METADATA_NAME!r} metadata ({err})") from err
        if not isinstance(value, dict):
            raise ValueError(f"{path}: {METADATA_NAME!r} metadata is not a JSON object")
        return value
    return {}


def _weight_ops(path: str | Path) -> tuple[dict[str, int], dict[str, int]]:
    """``(int8_weight_ops, dequantized_weight_ops)``: op name → count.

    The first counts ops that read an int8 constant directly (hybrid or integer kernels); the
    second ops that read a float tensor produced by ``DEQUANTIZE`` of an int8 constant
    (int8 storage, float compute).
    """
    schema = _schema()
    data = _read_bytes(path)
    model = schema.Model.GetRootAs(data, 0)
    names = _op_names()
    direct: Counter[str] = Counter()
    dequantized: Counter[str] = Counter()
    int8 = schema.TensorType.INT8
    dequantize = schema.BuiltinOperator.DEQUANTIZE
    for s in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(s)

        def is_int8_constant(index: int, subgraph: Any = subgraph) -> bool:
            tensor = subgraph.Tensors(index)
            buffer = model.Buffers(tensor.Buffer())
            has_data = buffer.DataLength() > 0 or buffer.Size() > 0
            return bool(tensor.Type() == int8 and has_data)

        from_dequantize: set[int] = set()
        for k in range(subgraph.OperatorsLength()):
            op = subgraph.Operators(k)
            code = _builtin_code(model.OperatorCodes(op.OpcodeIndex()))
            if code == dequantize and is_int8_constant(int(op.Inputs(0))):
                from_dequantize.update(int(op.Outputs(j)) for j in range(op.OutputsLength()))
        for k in range(subgraph.OperatorsLength()):
            op = subgraph.Operators(k)
            code = _builtin_code(model.OperatorCodes(op.OpcodeIndex()))
            if code == dequantize:
                continue
            inputs = [int(op.Inputs(j)) for j in range(op.InputsLength()) if op.Inputs(j) >= 0]
            name = names.get(code, f"BUILTIN_{code}")
            if any(is_int8_constant(i) for i in inputs):
                direct[name] += 1
            elif any(i in from_dequantize for i in inputs):
                dequantized[name] += 1
    return dict(direct), dict(dequantized)


# --------------------------------------------------------------------------- runner
def _to_input(arr: np.ndarray, detail: Mapping[str, Any]) -> np.ndarray:
    """``arr`` as the interpreter input described by ``detail`` (quantising floats for an
    integer input that carries a scale)."""
    dtype = np.dtype(detail["dtype"])
    scale, zero = detail["quantization"]
    if np.issubdtype(dtype, np.integer) and scale and np.issubdtype(arr.dtype, np.floating):
        info = np.iinfo(dtype)
        arr = np.clip(np.round(arr / np.float32(scale) + zero), info.min, info.max)
    return np.ascontiguousarray(arr, dtype=dtype)


class TFLiteRunner:
    """Run a ``.tflite`` classifier like the PyTorch model: ``runner(*clips) -> logits``.

    Inputs are taken positionally in the artefact's subgraph input order (for files written by
    :func:`to_tflite`, the model's ``input_keys`` / ``forward`` order, see :attr:`input_names`)
    or by name as keywords. Each is an array or CPU tensor in the model's layout
    ``(B, C, T, H, W)`` (or one clip ``(C, T, H, W)``, given a batch axis); values are cast to
    the input dtype, and float values for an integer input with quantisation parameters
    (a full-integer model) are quantised with its scale and zero point, an integer output
    dequantised likewise. Artefacts have a static batch: a batch of another size runs as
    consecutive invocations of the artefact's batch (the last one zero-padded), so any
    ``B >= 1`` works.

    Args:
        path: the ``.tflite`` file.
        num_threads: interpreter CPU threads (``None``: the runtime's default).

    Attributes:
        path: the file.
        metadata: :func:`read_metadata` of the file (``{}`` for foreign files).
        input_names: subgraph input names, in positional order.
        input_shapes: ``{name: shape}`` each including the static batch axis.
        batch: the artefact's batch size.
    """

    def __init__(self, path: str | Path, num_threads: int | None = None) -> None:
        _require("ai_edge_litert")
        from ai_edge_litert.interpreter import Interpreter

        self.path = Path(path)
        self.metadata = read_metadata(self.path)
        if num_threads is not None and int(num_threads) < 1:
            raise ValueError(f"num_threads must be >= 1 or None, got {num_threads}")
        try:
            self._interpreter = Interpreter(model_path=str(self.path), num_threads=num_threads)
            self._interpreter.allocate_tensors()
        except (RuntimeError, ValueError) as err:
            raise RuntimeError(
                f"{self.path}: the LiteRT interpreter cannot load it: {err}"
            ) from err
        self._inputs = list(self._interpreter.get_input_details())
        outputs = list(self._interpreter.get_output_details())
        if len(outputs) != 1:
            raise ValueError(f"{self.path}: expected one output (logits), found {len(outputs)}")
        self._output = outputs[0]
        self.input_names: list[str] = [str(d["name"]) for d in self._inputs]
        self.input_shapes: dict[str, tuple[int, ...]] = {
            str(d["name"]): tuple(int(v) for v in d["shape"]) for d in self._inputs
        }
        batches = {int(d["shape"][0]) for d in self._inputs if len(d["shape"])}
        self.batch = batches.pop() if len(batches) == 1 else 1

    @property
    def input_details(self) -> list[dict[str, Any]]:
        """The interpreter's input details (name, index, shape, dtype, quantization, ...)."""
        return list(self._inputs)

    @property
    def output_details(self) -> dict[str, Any]:
        """The interpreter's details of the single (logits) output."""
        return dict(self._output)

    def _arrays(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> list[np.ndarray]:
        if args and kwargs:
            raise TypeError(f"{self.path}: pass inputs either positionally or by name, not both")
        if kwargs:
            unknown = sorted(set(kwargs) - set(self.input_names))
            missing = [n for n in self.input_names if n not in kwargs]
            if unknown or missing:
                raise TypeError(
                    f"{self.path}: inputs are {self.input_names}; unknown {unknown}, "
                    f"missing {missing}"
                )
            args = [kwargs[n] for n in self.input_names]
        if len(args) != len(self._inputs):
            raise TypeError(
                f"{self.path}: takes {len(self._inputs)} inputs {self.input_names}, got {len(args)}"
            )
        arrays: list[np.ndarray] = []
        for value, detail in zip(args, self._inputs, strict=True):
            arr = value.detach().cpu().numpy() if isinstance(value, Tensor) else np.asarray(value)
            want = tuple(int(v) for v in detail["shape"])
            if arr.ndim == len(want) - 1:
                arr = arr[None]
            if arr.ndim != len(want) or arr.shape[1:] != want[1:]:
                dims = ", ".join(map(str, want[1:]))
                raise ValueError(
                    f"{self.path}: input {detail['name']!r} must be (B, {dims}) (the model's "
                    f"layout, for clips (B, C, T, H, W)), got {tuple(arr.shape)}"
                )
            arrays.append(_to_input(arr, detail))
        sizes = {a.shape[0] for a in arrays}
        if len(sizes) != 1:
            raise ValueError(f"{self.path}: inputs disagree on the batch size: {sorted(sizes)}")
        if 0 in sizes:
            raise ValueError(f"{self.path}: empty batch")
        return arrays

    def __call__(self, *args: Any, **kwargs: Any) -> np.ndarray:
        """Logits ``(B, num_classes)`` float32 for inputs ``(B, C, T, H, W)`` (see class doc)."""
        arrays = self._arrays(args, kwargs)
        total = arrays[0].shape[0]
        step = self.batch
        chunks: list[np.ndarray] = []
        for start in range(0, total, step):
            parts = [a[start : start + step] for a in arrays]
            n = parts[0].shape[0]
            if n < step:
                parts = [
                    np.concatenate([p, np.zeros((step - n, *p.shape[1:]), p.dtype)]) for p in parts
                ]
            for part, detail in zip(parts, self._inputs, strict=True):
                self._interpreter.set_tensor(detail["index"], part)
            self._interpreter.invoke()
            out = self._interpreter.get_tensor(self._output["index"])[:n]
            scale, zero = self._output["quantization"]
            if np.issubdtype(out.dtype, np.integer) and scale:
                out = (out.astype(np.float32) - zero) * np.float32(scale)
            chunks.append(np.array(out, dtype=np.float32))
        return np.concatenate(chunks, axis=0)

    def __repr__(self) -> str:
        return f"TFLiteRunner({str(self.path)!r}, inputs={self.input_shapes})"


# --------------------------------------------------------------------------- report
@dataclass
class TFLiteReport:
    """What :func:`to_tflite` wrote and how well it matches PyTorch.

    Attributes:
        path: the ``.tflite`` file.
        model: registry name of the model (``None`` for a plain module).
        quantize: ``None`` (float32) or ``"dynamic"``.
        input_names: signature input names = the model's ``input_keys``, in ``forward`` order.
        input_shapes: ``{name: [B, C, T, H, W]}`` (static batch ``B``).
        num_classes: logits per clip.
        max_abs_diff_random: max |TFLite − PyTorch| logits over the random inputs.
        max_abs_diff_real: the same on the real clip (``None`` without ``real_video``).
        top1_agreement_random: fraction of random clips whose TFLite top-1 equals PyTorch's.
        max_abs_logit_random: the largest |PyTorch logit| on the random clips (the scale
            :data:`DYNAMIC_MAX_RELATIVE_DIFF` is relative to).
        top1_agreement_real: the same on the real clip (``None`` without ``real_video``).
        num_random: random clips compared.
        atol: the bound the check used (float: ``atol``; ``None`` for ``"dynamic"``, whose
            check is top-1 agreement ≥ :data:`DYNAMIC_MIN_TOP1` and a difference ≤
            :data:`DYNAMIC_MAX_RELATIVE_DIFF` × ``max_abs_logit_random`` instead).
        checked: whether the bound was enforced (``check=True``).
        op_counts: operator name → count in the flatbuffer (:func:`op_list`).
        int8_weight_ops: ops reading int8 weights directly (hybrid int8 kernels).
        dequantized_weight_ops: ops whose int8-stored weights are dequantised to float32
            (``CONV_3D`` under ``"dynamic"``: int8 storage, float compute).
        convert_seconds: wall time of conversion + quantisation + writing the file.
        file_bytes: size of the ``.tflite`` file.
        metadata: the JSON description stored in the file (:func:`read_metadata`).
    """

    path: str
    model: str | None
    quantize: str | None
    input_names: list[str]
    input_shapes: dict[str, list[int]]
    num_classes: int
    max_abs_diff_random: float
    max_abs_diff_real: float | None
    top1_agreement_random: float
    max_abs_logit_random: float
    top1_agreement_real: float | None
    num_random: int
    atol: float | None
    checked: bool
    op_counts: dict[str, int]
    int8_weight_ops: dict[str, int]
    dequantized_weight_ops: dict[str, int]
    convert_seconds: float
    file_bytes: int
    metadata: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of every field."""
        return asdict(self)

    def summary(self) -> str:
        """A few human-readable lines: file, size, parity figures and operators."""
        kind = "float32" if self.quantize is None else f"{self.quantize} int8"
        shapes = ", ".join(f"{k} {tuple(v)}" for k, v in self.input_shapes.items())
        lines = [
            f"TFLite {kind}: {self.path} ({self.file_bytes / 1024:.1f} KiB, "
            f"converted in {self.convert_seconds:.1f} s)",
            f"  model {self.model or '<module>'}: {shapes} -> logits ({self.num_classes})",
            f"  max |TFLite - PyTorch| logits: random {self.max_abs_diff_random:.3g} "
            f"({self.num_random} clips, largest |logit| {self.max_abs_logit_random:.3g}, "
            f"top-1 agreement {self.top1_agreement_random:.0%})"
            + (
                f", real {self.max_abs_diff_real:.3g}" if self.max_abs_diff_real is not None else ""
            ),
            "  ops: " + ", ".join(f"{k}×{v}" for k, v in sorted(self.op_counts.items())),
        ]
        if self.quantize is not None:
            direct = ", ".join(f"{k}×{v}" for k, v in sorted(self.int8_weight_ops.items()))
            deq = ", ".join(f"{k}×{v}" for k, v in sorted(self.dequantized_weight_ops.items()))
            lines.append(f"  int8 weights, hybrid int8 compute: {direct or 'none'}")
            lines.append(f"  int8 weights stored, float32 compute: {deq or 'none'}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- conversion
@contextlib.contextmanager
def _litert_progress(show: bool) -> Iterator[None]:
    """Turn litert-torch's progress printing on/off for the block (it reads an env var)."""
    key = "LITERT_TORCH_SHOW_PROGRESS"
    previous = os.environ.get(key)
    os.environ[key] = "y" if show else "n"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = previous


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _metadata(
    loaded: LoadedModel,
    shapes: Mapping[str, Sequence[int]],
    quantize: str | None,
) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    from lowres_har import __version__

    try:
        converter = version("litert-torch")
    except PackageNotFoundError:  # pragma: no cover - installed under another name
        converter = "unknown"
    return _json_safe(
        {
            "format": "lowres-har tflite v1",
            "lowres_har_version": __version__,
            "litert_torch_version": converter,
            "model": loaded.name,
            "model_kwargs": loaded.model_kwargs,
            "num_classes": loaded.num_classes,
            "class_names": loaded.class_names,
            "input_keys": list(loaded.input_keys),
            "input_shapes": {k: list(v) for k, v in shapes.items()},
            "layout": "NCTHW",
            "output": _OUTPUT_NAME,
            "quantize": quantize,
            "source": loaded.source,
        }
    )


def _dequantize_opcode(model: Any, schema: Any) -> int:
    code = schema.BuiltinOperator.DEQUANTIZE
    for i, opcode in enumerate(model.operatorCodes):
        if _builtin_code(opcode) == code and opcode.version == _DEQUANTIZE_PER_CHANNEL_VERSION:
            return i
    opcode = schema.OperatorCodeT()
    opcode.builtinCode = code
    opcode.deprecatedBuiltinCode = code
    opcode.version = _DEQUANTIZE_PER_CHANNEL_VERSION
    model.operatorCodes.append(opcode)
    return len(model.operatorCodes) - 1


def _conv3d_filters_to_int8(model: Any, schema: Any) -> int:
    """Store every constant float32 ``CONV_3D`` filter as per-channel int8 + ``DEQUANTIZE``.

    TFLite filters are ``(D, H, W, C_in, C_out)``; scales are per output channel (last axis),
    symmetric (zero point 0, range ±127). The float filter tensor becomes the ``DEQUANTIZE``
    output, so the convolution itself is unchanged. Returns the number of filters rewritten.
    """
    conv3d = schema.BuiltinOperator.CONV_3D
    float32 = schema.TensorType.FLOAT32
    done = 0
    for subgraph in model.subgraphs:
        users: Counter[int] = Counter(t.buffer for sg in model.subgraphs for t in sg.tensors)
        new_ops = []
        seen: set[int] = set()
        for op in subgraph.operators:
            if _builtin_code(model.operatorCodes[op.opcodeIndex]) != conv3d:
                continue
            index = int(op.inputs[1])
            if index in seen:
                continue
            tensor = subgraph.tensors[index]
            buffer = model.buffers[tensor.buffer] if tensor.buffer else None
            if tensor.type != float32 or buffer is None or buffer.data is None:
                continue  # not a constant float filter
            shape = tuple(int(v) for v in tensor.shape)
            weights = np.frombuffer(bytes(buffer.data), dtype="<f4").reshape(shape)
            reduce_axes = tuple(range(weights.ndim - 1))
            peak = np.abs(weights).max(axis=reduce_axes).astype(np.float64)
            scale = np.where(peak > 0, peak / 127.0, 1.0)
            q = np.clip(np.round(weights / scale), -127, 127).astype(np.int8)

            int8_buffer = schema.BufferT()
            int8_buffer.data = np.frombuffer(q.tobytes(), dtype=np.uint8)
            model.buffers.append(int8_buffer)
            qparams = schema.QuantizationParametersT()
            qparams.scale = [float(s) for s in scale]
            qparams.zeroPoint = [0] * len(scale)
            qparams.quantizedDimension = weights.ndim - 1
            int8_tensor = schema.TensorT()
            int8_tensor.shape = list(shape)
            int8_tensor.type = schema.TensorType.INT8
            int8_tensor.buffer = len(model.buffers) - 1
            name = tensor.name if isinstance(tensor.name, bytes) else str(tensor.name).encode()
            int8_tensor.name = name + b"_int8"
            int8_tensor.quantization = qparams
            subgraph.tensors.append(int8_tensor)

            if users[tensor.buffer] == 1:
                buffer.data = None  # the float copy is no longer referenced
            tensor.buffer = 0  # buffer 0 is the empty sentinel: now a runtime tensor
            dequant = schema.OperatorT()
            dequant.opcodeIndex = _dequantize_opcode(model, schema)
            dequant.inputs = [len(subgraph.tensors) - 1]
            dequant.outputs = [index]
            new_ops.append(dequant)
            seen.add(index)
            done += 1
        subgraph.operators[:0] = new_ops  # constants only: valid at the start of the graph
    return done


def _finalise(
    content: bytes,
    loaded: LoadedModel,
    metadata: Mapping[str, Any],
    *,
    conv3d_int8: bool,
) -> bytes:
    """Name inputs/outputs, add the metadata entry, optionally int8-store CONV_3D filters."""
    from ai_edge_litert.tools import flatbuffer_utils

    schema = _schema()
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    if not model.buffers:
        model.buffers = [schema.BufferT()]
    main = model.subgraphs[0]
    keys = list(loaded.input_keys)
    if len(main.inputs) != len(keys):
        raise RuntimeError(
            f"converted {loaded.name or type(loaded.model).__name__} has {len(main.inputs)} "
            f"inputs, the model's input_keys are {keys}"
        )
    renames = {int(t): k for t, k in zip(main.inputs, keys, strict=True)}
    renames.update({int(t): _OUTPUT_NAME for t in main.outputs[:1]})
    for index, name in renames.items():
        main.tensors[index].name = name.encode()
    for signature in model.signatureDefs or []:
        for entry in [*(signature.inputs or []), *(signature.outputs or [])]:
            if int(entry.tensorIndex) in renames:
                entry.name = renames[int(entry.tensorIndex)].encode()
    if conv3d_int8:
        _conv3d_filters_to_int8(model, schema)
    payload = schema.BufferT()
    payload.data = np.frombuffer(json.dumps(dict(metadata)).encode("utf-8"), dtype=np.uint8)
    model.buffers.append(payload)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME.encode()
    entry.buffer = len(model.buffers) - 1
    model.metadata = [
        m for m in (model.metadata or []) if (m.name or b"") != METADATA_NAME.encode()
    ] + [entry]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _convert(loaded: LoadedModel, sample: tuple[Tensor, ...], *, verbose: bool) -> bytes:
    import litert_torch

    label = loaded.name or type(loaded.model).__name__
    try:
        with _litert_progress(verbose), torch.no_grad():
            edge_model = litert_torch.convert(loaded.model, sample)
            return bytes(edge_model.model_content())
    except Exception as err:  # the converter raises many error types
        raise RuntimeError(
            f"litert-torch could not convert {label} with inputs "
            f"{[tuple(t.shape) for t in sample]}: {type(err).__name__}: {err}"
        ) from err


def _dynamic_range(content: bytes, label: str, *, verbose: bool) -> bytes:
    from ai_edge_quantizer import quantizer, recipe

    try:
        with contextlib.ExitStack() as stack:
            if not verbose:
                devnull = stack.enter_context(open(os.devnull, "w"))  # noqa: SIM115
                stack.enter_context(contextlib.redirect_stdout(devnull))
                stack.enter_context(contextlib.redirect_stderr(devnull))  # its progress bar
            result = quantizer.Quantizer(bytearray(content), recipe.dynamic_wi8_afp32()).quantize()
    except Exception as err:  # the quantiser raises many error types
        raise RuntimeError(
            f"ai-edge-quantizer could not quantize {label} (dynamic_wi8_afp32): "
            f"{type(err).__name__}: {err}"
        ) from err
    if result.quantized_model is None:
        raise RuntimeError(f"ai-edge-quantizer returned no model for {label}")
    return bytes(result.quantized_model)


def _compare(
    loaded: LoadedModel, runner: TFLiteRunner, inputs: Sequence[tuple[Tensor, ...]]
) -> tuple[float, float, float]:
    """``(max abs logits difference, top-1 agreement, max |PyTorch logit|)`` of TFLite vs
    PyTorch over ``inputs``."""
    worst = 0.0
    peak = 0.0
    agree = 0
    total = 0
    for clips in inputs:
        with torch.no_grad():
            ref = loaded.model(*clips).float().numpy()
        out = runner(*clips)
        if out.shape != ref.shape:
            raise RuntimeError(f"{runner.path}: logits {out.shape}, PyTorch gives {ref.shape}")
        if not np.isfinite(out).all():
            raise TFLiteParityError(f"{runner.path}: TFLite logits are not finite")
        worst = max(worst, float(np.abs(out - ref).max()))
        peak = max(peak, float(np.abs(ref).max()))
        agree += int((out.argmax(axis=1) == ref.argmax(axis=1)).sum())
        total += ref.shape[0]
    return worst, agree / max(total, 1), peak


def to_tflite(
    model_or_checkpoint: nn.Module | str | Path | LoadedModel,
    path: str | Path,
    *,
    quantize: str | None = None,
    num_frames: int | None = None,
    size: tuple[int, int] | None = None,
    real_video: str | Path | None = None,
    atol: float = 1e-3,
    check: bool = True,
    batch: int = 1,
    num_random: int = 4,
    verbose: bool = False,
    **model_kwargs: Any,
) -> TFLiteReport:
    """Convert a model to a ``.tflite`` file with litert-torch and check it against PyTorch.

    Args:
        model_or_checkpoint: a module with ``input_keys``, a registered model name (random
            weights) or a lowres-har task checkpoint (see :func:`~.common.load_model`).
        path: the ``.tflite`` to write (parent folders are created).
        quantize: ``None`` for float32; ``"dynamic"`` for int8 weights with float32
            activations (hybrid int8 ``FULLY_CONNECTED``; ``CONV_3D`` filters stored int8 and
            dequantised, computing in float32, see the module doc).
        num_frames: clip length ``T`` baked into the artefact (default: the model's).
        size: clip ``(H, W)`` baked into the artefact (default: the model's). Both are input
            shapes, not architecture options: to build e.g. MSN's head for another ``T``, pass
            a module or :func:`~.common.load_model`'s result built with its ``num_frames``.
        real_video: a video file; its first ``T`` frames, degraded as an eLR camera would
            (:func:`~.common.real_inputs`), are compared too.
        atol: float32 bound on the max absolute logits difference (random and real inputs).
        check: raise :class:`TFLiteParityError` when the artefact misses its bound: for
            float32 ``atol``; for ``"dynamic"`` (whose weight rounding moves logits by far more
            than 1e-3) a top-1 agreement with PyTorch below :data:`DYNAMIC_MIN_TOP1` on the
            random clips, or a max abs difference above :data:`DYNAMIC_MAX_RELATIVE_DIFF`
            times the largest |PyTorch logit| (the real clip's figures are reported, not
            enforced: one clip of a model with near-tied logits is no evidence either way).
        batch: static batch size of the artefact (1 for the Edge TPU and streaming use).
        num_random: random input batches compared (seeds 1..num_random; the conversion
            traces with seed 0).
        verbose: show litert-torch's progress and ai-edge-quantizer's messages.
        **model_kwargs: architecture options for a name, or overrides of a checkpoint's.

    Returns:
        A :class:`TFLiteReport` (also when ``check=False`` and the bound is missed).

    Raises:
        ImportError: litert-torch / ai-edge-litert / ai-edge-quantizer missing (names the
            ``lowres-har[tflite]`` extra).
        FileNotFoundError: ``real_video`` (or a checkpoint path) does not exist.
        ValueError: an unknown ``quantize`` mode, ``batch``/``num_random`` < 1, ``atol`` < 0.
        RuntimeError: the converter or quantiser failed (names the model).
        TFLiteParityError: with ``check=True``, the bound above was missed (names the model,
            the file and the difference).
    """
    if quantize not in QUANTIZE_MODES:
        raise ValueError(f"quantize must be one of {list(QUANTIZE_MODES)}, got {quantize!r}")
    if int(batch) < 1 or int(num_random) < 1:
        raise ValueError(f"batch and num_random must be >= 1, got {batch}, {num_random}")
    if not (atol >= 0 and math.isfinite(atol)):
        raise ValueError(f"atol must be a finite number >= 0, got {atol}")
    if real_video is not None and not Path(real_video).expanduser().is_file():
        raise FileNotFoundError(f"real_video {str(real_video)!r}: no such file")
    _require("litert_torch", "ai_edge_litert")
    if quantize == "dynamic":
        _require("ai_edge_quantizer")

    loaded = load_model(model_or_checkpoint, **model_kwargs)
    label = loaded.name or type(loaded.model).__name__
    out_path = Path(path).expanduser()
    sample = example_inputs(loaded, batch=int(batch), seed=0, num_frames=num_frames, size=size)
    shapes = {k: list(t.shape) for k, t in zip(loaded.input_keys, sample, strict=True)}

    start = time.perf_counter()
    content = _convert(loaded, sample, verbose=verbose)
    if quantize == "dynamic":
        content = _dynamic_range(content, label, verbose=verbose)
    content = _finalise(
        content,
        loaded,
        _metadata(loaded, shapes, quantize),
        conv3d_int8=quantize == "dynamic",
    )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(content)
    convert_seconds = time.perf_counter() - start

    runner = TFLiteRunner(out_path)
    random_batches = [
        example_inputs(loaded, batch=int(batch), seed=seed, num_frames=num_frames, size=size)
        for seed in range(1, int(num_random) + 1)
    ]
    diff_random, top1_random, peak_random = _compare(loaded, runner, random_batches)
    diff_real: float | None = None
    top1_real: float | None = None
    if real_video is not None:
        clips = real_inputs(loaded, Path(real_video).expanduser(), num_frames=num_frames, size=size)
        diff_real, top1_real, _ = _compare(loaded, runner, [clips])

    direct, dequantized = _weight_ops(out_path)
    report = TFLiteReport(
        path=str(out_path),
        model=loaded.name,
        quantize=quantize,
        input_names=list(runner.input_names),
        input_shapes=shapes,
        num_classes=loaded.num_classes,
        max_abs_diff_random=diff_random,
        max_abs_diff_real=diff_real,
        top1_agreement_random=top1_random,
        max_abs_logit_random=peak_random,
        top1_agreement_real=top1_real,
        num_random=int(num_random),
        atol=float(atol) if quantize is None else None,
        checked=bool(check),
        op_counts=dict(Counter(op_list(out_path))),
        int8_weight_ops=direct,
        dequantized_weight_ops=dequantized,
        convert_seconds=convert_seconds,
        file_bytes=out_path.stat().st_size,
        metadata=read_metadata(out_path),
    )
    if check:
        _check(report, label)
    return report


def _check(report: TFLiteReport, label: str) -> None:
    if report.quantize is None:
        assert report.atol is not None
        worst = max(report.max_abs_diff_random, report.max_abs_diff_real or 0.0)
        if worst > report.atol:
            raise TFLiteParityError(
                f"{label}: TFLite float32 logits differ from PyTorch by {worst:.3g} "
                f"(random {report.max_abs_diff_random:.3g}, real "
                f"{report.max_abs_diff_real if report.max_abs_diff_real is not None else 'n/a'})"
                f" > atol {report.atol:g} in {report.path}",
                report,
            )
        return
    bound = DYNAMIC_MAX_RELATIVE_DIFF * report.max_abs_logit_random
    if report.top1_agreement_random < DYNAMIC_MIN_TOP1 or report.max_abs_diff_random > bound:
        raise TFLiteParityError(
            f"{label}: dynamic-range int8 TFLite top-1 agrees with PyTorch on "
            f"{report.top1_agreement_random:.0%} of {report.num_random} random input batches "
            f"(minimum {DYNAMIC_MIN_TOP1:.0%}) and its logits differ by up to "
            f"{report.max_abs_diff_random:.3g} (maximum {DYNAMIC_MAX_RELATIVE_DIFF:.0%} of the "
            f"largest |logit| {report.max_abs_logit_random:.3g}) in {report.path}",
            report,
        )
