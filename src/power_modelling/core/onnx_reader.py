"""ONNX models → ``layer_descriptions`` rows, before any TensorRT engine exists.

An ONNX graph is translated into the NVML/PyTorch engine dialect (docs/raw-data-format.md:
one entry per *unique* layer configuration with its ``Count``) and read by the same
``describe_layers`` as engine files, so the table, its dtypes and conventions are those of
engines by construction. Only the ``onnx`` package is used: its shape inference gives every
tensor's dimensions; no ONNX Runtime, no GPU and no weight values are needed (weights stored
as absent external data work; only their shapes are read).

Mapping (``LayerType`` is the ONNX op type):

- ``Conv`` → ``ParameterType`` ``Convolution`` (``group`` kept: depthwise / grouped);
- ``MaxPool`` / ``AveragePool`` / ``GlobalMaxPool`` / ``GlobalAveragePool`` → ``Pooling``
  (window, stride, padding; the global ones get the input's spatial size as window and
  stride and ``Adaptive``, as the bundled engine files record ``AdaptiveAvgPool2d``: the
  convention the models were trained on; TensorRT's own inspector writes stride 1 there);
- ``Gemm``, and ``MatMul`` whose second operand is a constant 2-D weight → ``MatrixMultiply``
  (``InFeatures`` / ``OutMaps`` as PyTorch ``Linear``);
- every other op → ``ParameterType`` = its op type, so it classifies as ``other`` (never by
  the op-name heuristic for untyped engine layers: ``LpPool`` is not a pooling layer here).
  Nodes computed from constants only (``Constant``, weight ``Identity``...) are folded by
  TensorRT and are not layers.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from math import prod
from pathlib import Path
from typing import Any

import onnx
import pandas as pd
from google.protobuf.message import DecodeError
from onnx import helper, shape_inference

from power_modelling.core.engines import describe_layers

logger = logging.getLogger(__name__)

#: Default-domain opsets read. 7 is the oldest opset with today's Conv/Pool/Gemm semantics
#: (no ``broadcast`` / ``consumed_inputs`` attributes) and the oldest torch.onnx writes; the
#: newest is what the installed ``onnx`` can infer shapes for.
MIN_OPSET = 7
MAX_OPSET = onnx.defs.onnx_opset_version()
#: Deployment precisions, written as the engines write data types (``dtype_bytes`` reads them).
PRECISIONS = ("FP32", "TF32", "FP16", "BF16", "FP8", "INT8")

_DEFAULT_DOMAINS = ("", "ai.onnx")
_FLOAT_TYPES = frozenset(
    {
        onnx.TensorProto.FLOAT,
        onnx.TensorProto.FLOAT16,
        onnx.TensorProto.BFLOAT16,
        onnx.TensorProto.DOUBLE,
    }
)
_POOLING_TYPES = {
    "MaxPool": "MAX",
    "AveragePool": "AVERAGE",
    "GlobalMaxPool": "MAX",
    "GlobalAveragePool": "AVERAGE",
}
_SHAPE_OPS = frozenset({"Shape", "Size"})
#: Ops that only forward a tensor: a weight behind them is still a constant weight.
_PASS_THROUGH = frozenset({"Identity", "Cast"})


def describe_onnx(
    data: bytes | str | os.PathLike[str],
    source: str,
    batch_size: int = 1,
    precision: str = "FP16",
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``layer_descriptions`` rows of an ONNX model, and how they were obtained.

    Args:
        data: the serialized model, or the path of a ``.onnx`` file.
        source: where it came from (file path), used in error messages.
        batch_size: the batch used when the graph's batch dimension is symbolic (dynamic).
        precision: the precision the model will be deployed in (an ONNX file is float32,
            TensorRT engines usually run FP16): the data type of every floating tensor.

    Returns:
        ``(descriptions, info)``: the table of ``describe_layers`` (identical layers merged,
        ``count``), and ``{"batch_size", "batch_source": "graph" | "parameter",
        "precision", "opset", "producer"}``.

    Raises:
        ValueError: naming the file (and node) when the input is not an ONNX model, is
            truncated, uses an opset outside ``MIN_OPSET..MAX_OPSET``, has a symbolic
            dimension other than the batch, or a layer whose shapes cannot be inferred.
    """
    engine, info = onnx_engine(data, source, batch_size, precision)
    return describe_layers(engine, source), info


def onnx_engine(
    data: bytes | str | os.PathLike[str],
    source: str,
    batch_size: int = 1,
    precision: str = "FP16",
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ONNX model as an engine description in the NVML/PyTorch dialect
    (``{"Layers": [...]}``, what ``describe_layers`` reads), and the info of
    ``describe_onnx``. Written as JSON, it is a file the prediction pipeline reads as is."""
    dtype = _precision(precision, source)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"{source}: batch_size must be a positive integer, got {batch_size!r}")
    model = _parse(data, source)
    opset = _opset(model, source)
    batch, batch_source = _fix_batch(model.graph, batch_size, source)
    graph = _Graph.of(_infer_shapes(model, source), dtype, source)
    layers = _merge(_name_layers(graph.layers()))
    info = {
        "batch_size": batch,
        "batch_source": batch_source,
        "precision": dtype,
        "opset": opset,
        "producer": f"{model.producer_name} {model.producer_version}".strip() or None,
    }
    logger.info(
        "%s: %d ONNX nodes → %d unique layers (batch %d from the %s, %s, opset %d)",
        source,
        len(model.graph.node),
        len(layers),
        batch,
        batch_source,
        dtype,
        opset,
    )
    return {"Layers": layers}, info


# ----------------------------------------------------------------------------- loading
def _precision(precision: str, source: str) -> str:
    name = str(precision).strip().upper()
    if name not in PRECISIONS:
        raise ValueError(
            f"{source}: unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}"
        )
    return name


def _parse(data: bytes | str | os.PathLike[str], source: str) -> onnx.ModelProto:
    """The ModelProto of ``data``; external data is never loaded (weights are not needed)."""
    if isinstance(data, bytes | bytearray | memoryview):
        raw = bytes(data)
    else:
        try:
            raw = Path(data).read_bytes()
        except OSError as exc:
            raise ValueError(f"{source}: cannot be read ({exc})") from exc
    try:
        model = onnx.load_model_from_string(raw)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise ValueError(
            f"{source}: not an ONNX model, or a truncated one ({exc}); expected a serialized "
            "onnx.ModelProto (torch.onnx.export writes one)"
        ) from exc
    # Protobuf parses many byte strings (an empty file, a prefix cut at a field boundary)
    # into a valid but empty message: a model has a graph with nodes and an opset.
    if model.ir_version <= 0 or not model.graph.node:
        raise ValueError(
            f"{source}: not an ONNX model, or a truncated one (no IR version or no graph "
            f"nodes in {len(raw)} bytes)"
        )
    return model


def _opset(model: onnx.ModelProto, source: str) -> int:
    versions = [o.version for o in model.opset_import if o.domain in _DEFAULT_DOMAINS]
    if not versions:
        raise ValueError(
            f"{source}: no default-domain (ai.onnx) opset import; the file is truncated or "
            "not a model of standard ONNX operators"
        )
    opset = max(versions)
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ValueError(
            f"{source}: opset {opset} is not supported (supported: {MIN_OPSET} to "
            f"{MAX_OPSET}, the newest the installed onnx {onnx.__version__} knows); re-export "
            "with torch.onnx.export(..., opset_version=17) or convert with "
            "onnx.version_converter"
        )
    return opset


def _fix_batch(graph: onnx.GraphProto, batch_size: int, source: str) -> tuple[int, str]:
    """Give symbolic batch dimensions the value ``batch_size`` (in place): ``(batch used,
    "graph" | "parameter")``. Any other symbolic dimension is an error: the layer sizes
    depend on it."""
    constants = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in constants]
    if not inputs:
        raise ValueError(f"{source}: the graph has no input")
    batches, symbols = [], set()
    for tensor in inputs:
        if not tensor.type.HasField("tensor_type"):
            raise ValueError(f"{source}: graph input '{tensor.name}' is not a tensor")
        dims = tensor.type.tensor_type.shape.dim
        if not tensor.type.tensor_type.HasField("shape") or not dims:
            raise ValueError(
                f"{source}: graph input '{tensor.name}' has no shape; export with a fixed "
                "input shape (only the batch dimension may be dynamic)"
            )
        for axis, dim in enumerate(dims[1:], start=1):
            if not dim.HasField("dim_value"):
                raise ValueError(
                    f"{source}: graph input '{tensor.name}' dimension {axis} is symbolic "
                    f"({dim.dim_param or '?'!r}); only the batch dimension (0) may be dynamic, "
                    "export with a fixed input size"
                )
        if dims[0].HasField("dim_value") and dims[0].dim_value > 0:
            batches.append((dims[0].dim_value, "graph"))
        else:
            symbols.add(dims[0].dim_param)
            dims[0].dim_value = batch_size  # clears dim_param (a oneof)
            batches.append((batch_size, "parameter"))
    # The same symbol in declared outputs / value_info ("N" of [N, 1000]) is that batch too.
    for info in (*graph.output, *graph.value_info):
        for dim in info.type.tensor_type.shape.dim:
            if dim.HasField("dim_param") and dim.dim_param in symbols - {""}:
                dim.dim_value = batch_size
    return batches[0]


def _infer_shapes(model: onnx.ModelProto, source: str) -> onnx.ModelProto:
    try:
        return shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except (shape_inference.InferenceError, onnx.checker.ValidationError, RuntimeError) as exc:
        # onnx's message names the node: "(op_type:Conv, node name: /conv1/Conv): ..."
        raise ValueError(f"{source}: shape inference failed: {str(exc).strip()}") from exc


# ----------------------------------------------------------------------------- the graph
@dataclass(frozen=True)
class _Tensor:
    dims: list[int | str | None] | None  # None: unknown rank; str: symbolic; None item: unknown
    elem_type: int


@dataclass(frozen=True)
class _Graph:
    """The inferred graph: tensor shapes, which tensors are constants, the data type strings."""

    nodes: list[onnx.NodeProto]
    tensors: dict[str, _Tensor]
    constants: dict[str, _Tensor]  # initializers, Constant outputs, and what folds from them
    producers: dict[str, onnx.NodeProto]
    dtype: str
    source: str

    @classmethod
    def of(cls, model: onnx.ModelProto, dtype: str, source: str) -> _Graph:
        graph = model.graph
        tensors = {
            info.name: _tensor_of(info.type)
            for info in (*graph.input, *graph.value_info, *graph.output)
            if info.type.HasField("tensor_type")
        }
        constants = {t.name: _Tensor(list(t.dims), t.data_type) for t in graph.initializer}
        tensors.update(constants)
        producers = {}
        for node in graph.node:
            producers.update(dict.fromkeys(node.output, node))
            # Folded when the engine is built: no input (Constant...), constant inputs only,
            # or the shape of a static tensor (a dynamic-batch export's Shape → Gather...).
            static = node.op_type in _SHAPE_OPS and _is_static(tensors.get(node.input[0]))
            if static or all(not name or name in constants for name in node.input):
                constants.update(
                    {name: tensors.get(name, _Tensor(None, 0)) for name in node.output}
                )
        return cls(list(graph.node), tensors, constants, producers, dtype, source)

    def layers(self) -> Iterable[tuple[onnx.NodeProto, dict[str, Any]]]:
        """``(node, dialect layer without Name)`` of every node that runs on the device."""
        for node in self.nodes:
            if any(name in self.constants for name in node.output):
                continue  # folded by TensorRT at build time
            yield node, self._layer(node)

    def _layer(self, node: onnx.NodeProto) -> dict[str, Any]:
        op = node.op_type
        if node.domain in _DEFAULT_DOMAINS:
            if op == "Conv":
                return self._convolution(node)
            if op in _POOLING_TYPES:
                return self._pooling(node)
            if op == "Gemm" or (op == "MatMul" and self._weight(node, 1, rank=2) is not None):
                return self._dense(node)
        layer_type = op if node.domain in _DEFAULT_DOMAINS else f"{node.domain}.{op}"
        # The first activation (an Add's bias may come first); a node has one, or it is folded.
        activation = next(n for n in node.input if n and n not in self.constants)
        return {
            "LayerType": layer_type,
            "ParameterType": layer_type,
            "Inputs": [self._io(node, activation, strict=False)],
            "Outputs": [self._io(node, node.output[0], strict=False)],
        }

    def _convolution(self, node: onnx.NodeProto) -> dict[str, Any]:
        attrs = _attributes(node)
        inputs = self._io(node, node.input[0])
        outputs = self._io(node, node.output[0])
        weight = self._shape(node, node.input[1])
        spatial = len(inputs["Dimensions"]) - 2
        kernel = attrs.get("kernel_shape") or weight[2:]
        stride = attrs.get("strides") or [1] * spatial
        dilation = attrs.get("dilations") or [1] * spatial
        sizes = (inputs["Dimensions"], outputs["Dimensions"])
        pre, post = _padding(attrs, sizes=sizes, kernel=kernel, stride=stride, dilation=dilation)
        self._check_window(node, inputs["Dimensions"][2:], (pre, post), kernel, dilation)
        return {
            "LayerType": node.op_type,
            "ParameterType": "Convolution",
            "Inputs": [inputs],
            "Outputs": [outputs],
            "Weights": {"Type": self.dtype, "Count": prod(weight)},
            "Kernel": kernel,
            "PrePadding": pre,
            "PostPadding": post,
            "Stride": stride,
            "Dilation": dilation,
            "OutMaps": weight[0],
            "Groups": attrs.get("group", 1),
        }

    def _pooling(self, node: onnx.NodeProto) -> dict[str, Any]:
        attrs = _attributes(node)
        inputs = self._io(node, node.input[0])
        outputs = self._io(node, node.output[0])
        spatial = len(inputs["Dimensions"]) - 2
        is_global = node.op_type.startswith("Global")
        if is_global:  # the whole input, stride = window: the training data's convention
            window = stride = inputs["Dimensions"][2:]
            dilation = None
        else:
            window = attrs["kernel_shape"]
            stride = attrs.get("strides") or [1] * spatial
            dilation = attrs.get("dilations")
        pre, post = _padding(
            attrs,
            sizes=(inputs["Dimensions"], outputs["Dimensions"]),
            kernel=window,
            stride=stride,
            dilation=dilation or [1] * spatial,
        )
        self._check_window(node, inputs["Dimensions"][2:], (pre, post), window, dilation)
        layer = {
            "LayerType": node.op_type,
            "ParameterType": "Pooling",
            "Inputs": [inputs],
            "Outputs": [outputs],
            "PoolingType": _POOLING_TYPES[node.op_type],
            "WindowSize": window,
            "PrePadding": pre,
            "PostPadding": post,
            "Stride": stride,
            "Adaptive": int(is_global),
        }
        if dilation and any(d != 1 for d in dilation):  # engines write none for poolings
            layer["Dilation"] = dilation
        return layer

    def _check_window(
        self,
        node: onnx.NodeProto,
        spatial: list[int],
        padding: tuple[list[int], list[int]],
        window: list[int],
        dilation: list[int] | None,
    ) -> None:
        """The window fits in the padded input: ONNX's shape inference does not check it
        (a 4-wide kernel on 3 pixels gets output 1), PyTorch and TensorRT refuse it."""
        dilation = dilation or [1] * len(window)
        padded = [s + a + b for s, a, b in zip(spatial, *padding, strict=False)]
        extent = [d * (k - 1) + 1 for k, d in zip(window, dilation, strict=False)]
        if len(padded) != len(extent) or any(p < e for p, e in zip(padded, extent, strict=True)):
            raise ValueError(
                f"{self.source}: node '{node.name or node.output[0]}' ({node.op_type}): the "
                f"window {window} (dilation {dilation}) does not fit the padded input "
                f"{padded}"
            )

    def _dense(self, node: onnx.NodeProto) -> dict[str, Any]:
        """``Y = A·B``: ``[..., K] x [K, N]``. A ``Gemm`` with ``transA`` is written ``[M, K]``
        like a ``Linear`` input (batch first)."""
        attrs = _attributes(node) if node.op_type == "Gemm" else {}
        inputs = self._io(node, node.input[0])
        if attrs.get("transA"):
            inputs = {**inputs, "Dimensions": inputs["Dimensions"][::-1]}
        weight = self._shape(node, node.input[1])
        k, n = weight[::-1] if attrs.get("transB") else weight
        layer = {
            "LayerType": node.op_type,
            "ParameterType": "MatrixMultiply",
            "Inputs": [inputs],
            "Outputs": [self._io(node, node.output[0])],
            "OutMaps": n,
            "InFeatures": k,
        }
        if self._weight(node, 1, rank=2) is not None:
            layer["Weights"] = {"Type": self.dtype, "Count": k * n}
        return layer

    def _weight(self, node: onnx.NodeProto, index: int, rank: int) -> _Tensor | None:
        """The constant of rank ``rank`` at input ``index`` (through Identity / Cast)."""
        name = node.input[index] if len(node.input) > index else ""
        while name and name not in self.constants and name in self.producers:
            producer = self.producers[name]
            if producer.op_type not in _PASS_THROUGH:
                return None
            name = producer.input[0]
        tensor = self.constants.get(name)
        if tensor is None or tensor.dims is None or len(tensor.dims) != rank:
            return None
        return tensor

    def _io(self, node: onnx.NodeProto, name: str, strict: bool = True) -> dict[str, Any]:
        """``{"Dimensions", "Format/Datatype"}`` of a tensor. Layers that are predicted need
        every dimension (``strict``); other layers get -1 for an unknown one, as TensorRT
        writes dynamic dimensions."""
        tensor = self.tensors.get(name)
        if strict:
            dims = self._shape(node, name)
        elif tensor is None or tensor.dims is None:
            dims = []
        else:
            dims = [d if isinstance(d, int) else -1 for d in tensor.dims]
        elem_type = tensor.elem_type if tensor else onnx.TensorProto.FLOAT
        return {"Dimensions": dims, "Format/Datatype": self._dtype(elem_type)}

    def _shape(self, node: onnx.NodeProto, name: str) -> list[int]:
        tensor = self.tensors.get(name)
        if not _is_static(tensor):
            got = "no shape" if tensor is None or tensor.dims is None else tensor.dims
            raise ValueError(
                f"{self.source}: node '{node.name or node.output[0]}' ({node.op_type}): the "
                f"shape of '{name}' could not be inferred ({got}); a layer needs static "
                "dimensions (export with a fixed input size; only the batch may be dynamic)"
            )
        if any(d <= 0 for d in tensor.dims):
            # ONNX infers these for a window larger than its padded input instead of failing.
            raise ValueError(
                f"{self.source}: node '{node.name or node.output[0]}' ({node.op_type}): "
                f"'{name}' has dimensions {tensor.dims}; a layer needs positive dimensions "
                "(is the kernel or window larger than the padded input?)"
            )
        return list(tensor.dims)

    def _dtype(self, elem_type: int) -> str:
        """Floating tensors run in the deployment precision; others keep their type
        (``INT64``, ``BOOL``...)."""
        if elem_type in _FLOAT_TYPES or elem_type == onnx.TensorProto.UNDEFINED:
            return self.dtype
        return helper.tensor_dtype_to_string(elem_type).removeprefix("TensorProto.")


def _tensor_of(type_proto: onnx.TypeProto) -> _Tensor:
    tensor_type = type_proto.tensor_type
    if not tensor_type.HasField("shape"):
        return _Tensor(None, tensor_type.elem_type)
    dims = [
        d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
        for d in tensor_type.shape.dim
    ]
    return _Tensor(dims, tensor_type.elem_type)


def _is_static(tensor: _Tensor | None) -> bool:
    return bool(tensor and tensor.dims is not None and all(isinstance(d, int) for d in tensor.dims))


def _attributes(node: onnx.NodeProto) -> dict[str, Any]:
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    return {k: (list(v) if isinstance(v, list | tuple) else v) for k, v in attrs.items()}


def _padding(
    attrs: Mapping[str, Any],
    *,
    sizes: tuple[list[int], list[int]],
    kernel: list[int],
    stride: list[int],
    dilation: list[int],
) -> tuple[list[int], list[int]]:
    """``(pre, post)`` padding per spatial axis; ``auto_pad`` resolved as ONNX defines it from
    ``sizes``, the (input, output) dimensions."""
    spatial = len(kernel)
    auto_pad = attrs.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else str(auto_pad)
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        axes = zip(sizes[0][2:], sizes[1][2:], kernel, stride, dilation, strict=False)
        total = [max((o - 1) * s + (k - 1) * d + 1 - i, 0) for i, o, k, s, d in axes]
        small, large = [t // 2 for t in total], [t - t // 2 for t in total]
        return (small, large) if auto_pad == "SAME_UPPER" else (large, small)
    pads = attrs.get("pads") or [0] * (2 * spatial)
    return pads[:spatial], pads[spatial:]


# ----------------------------------------------------------------------------- names, merging
def module_path(node_name: str) -> str | None:
    """The PyTorch module of a node named by torch.onnx: ``/layer1/layer1.0/conv1/Conv`` →
    ``layer1.0.conv1``; ``None`` when the name carries no module scope.

    torch.onnx names each scope by the module's qualified name from its last non-numeric
    atom on (``features.1.0`` → ``features.1.0``, ``features.1.0.block.3`` → ``block.3``), so
    a scope of k atoms replaces the last k - 1 atoms of its parent's path.
    """
    if not node_name.startswith("/"):
        return None
    scopes = node_name.split("/")[1:-1]
    if not scopes or not all(scopes):
        return None
    path: list[str] = []
    for scope in scopes:
        atoms = scope.split(".")
        keep = len(path) + 1 - len(atoms)
        if keep < 0 or path[keep:] != atoms[:-1]:
            return None  # not torch.onnx's scheme
        path = path[:keep] + atoms
    return ".".join(path)


def _name_layers(nodes: Iterable[tuple[onnx.NodeProto, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Name each layer by its module path (else the node name). Several nodes of one module
    (a Linear's MatMul and bias Add, a block's functional Add): the one predicted layer keeps
    the module's name, the others get ``<module>/<op>``."""
    layers = list(nodes)
    paths = [module_path(node.name) for node, _ in layers]
    by_path: dict[str, list[int]] = {}
    for index, path in enumerate(paths):
        if path is not None:
            by_path.setdefault(path, []).append(index)
    named = []
    for index, ((node, layer), path) in enumerate(zip(layers, paths, strict=True)):
        fallback = node.name or f"{node.op_type}:{node.output[0]}"
        if path is None:
            name = fallback
        else:
            sharing = by_path[path]
            predicted = [i for i in sharing if _is_predicted(layers[i][1])]
            own = predicted == [index] or (len(sharing) == 1)
            name = path if own else f"{path}/{node.name.rsplit('/', 1)[-1]}"
        named.append({"Name": name, **layer})
    return named


def _is_predicted(layer: Mapping[str, Any]) -> bool:
    return layer["ParameterType"] in ("Convolution", "Pooling", "MatrixMultiply")


def _merge(layers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per unique layer configuration, in first-occurrence order, with ``Count`` and
    ``InstanceNames``, as the NVML/PyTorch engine files hold them."""
    unique: dict[str, dict[str, Any]] = {}
    for layer in layers:
        key = json.dumps({k: v for k, v in layer.items() if k != "Name"}, sort_keys=True)
        if key in unique:
            unique[key]["Count"] += 1
            unique[key]["InstanceNames"].append(layer["Name"])
        else:
            unique[key] = {**layer, "Count": 1, "InstanceNames": [layer["Name"]]}
    return list(unique.values())
