"""The engine reader: TensorRT inspector JSON (or the NVML/PyTorch dialect) → layer rows.

``describe_layers`` is the one place that reads an engine description; ingestion and
prediction both call it (``parse_engine`` from the file's bytes). Schema:
``layer_descriptions`` in docs/data-contracts.md.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import pandas as pd

logger = logging.getLogger(__name__)

DESCRIPTION_COLUMNS = (
    "layer_name",
    "layer_type",
    "parameter_type",
    "input_dims",
    "output_dims",
    "input_dtype",
    "output_dtype",
    "weights_dtype",
    "weights_count",
    "kernel",
    "pre_padding",
    "post_padding",
    "stride",
    "dilation",
    "groups",
    "out_maps",
    "in_features",
    "pooling_type",
    "adaptive",
    "count",
)
_NULLABLE_INT_COLUMNS = ("weights_count", "out_maps", "in_features")
_OBJECT_COLUMNS = ("input_dims", "output_dims", "kernel", "pre_padding", "post_padding")


def describe_layers(engine: dict, source: str) -> pd.DataFrame:
    """One row per layer of an engine description, in the ``layer_descriptions`` schema.

    Args:
        engine: the parsed JSON: ``{"Layers": [layer, ...], ...}``.
        source: where it came from (file path), used in error messages.

    Raises:
        ValueError: no ``Layers`` list, a layer that is not an object (engine built without
            detailed profiling verbosity), or a layer without input/output ``Dimensions``.
    """
    if not isinstance(engine, Mapping) or not isinstance(engine.get("Layers"), list):
        raise ValueError(
            f"{source}: expected an engine description with a 'Layers' list "
            "(TensorRT IEngineInspector JSON, detailed verbosity)"
        )
    rows = [_describe_layer(layer, index, source) for index, layer in enumerate(engine["Layers"])]
    frame = pd.DataFrame(rows, columns=list(DESCRIPTION_COLUMNS))
    for column in _NULLABLE_INT_COLUMNS:
        frame[column] = frame[column].astype("Int64")
    for column in ("groups", "count"):
        frame[column] = frame[column].astype("int64")
    frame["adaptive"] = frame["adaptive"].astype(bool)
    for column in ("stride", "dilation", "weights_dtype", "pooling_type", *_OBJECT_COLUMNS):
        frame[column] = frame[column].astype(object)
    return frame


def _describe_layer(layer: Any, index: int, source: str) -> dict[str, Any]:
    """The ``layer_descriptions`` row of one engine layer."""
    if not isinstance(layer, Mapping):
        raise ValueError(
            f"{source}: layer #{index} is {type(layer).__name__} {str(layer)[:80]!r}, expected "
            "an object with Name, LayerType, Inputs, Outputs (build the engine with detailed "
            "profiling verbosity)"
        )
    name = str(layer.get("Name", f"#{index}"))
    input_dims, input_dtype = _first_tensor(layer, "Inputs", name, source)
    output_dims, output_dtype = _first_tensor(layer, "Outputs", name, source)
    weights = layer.get("Weights") if isinstance(layer.get("Weights"), Mapping) else {}
    return {
        "layer_name": name,
        "layer_type": str(layer.get("LayerType") or "Unknown"),
        "parameter_type": layer.get("ParameterType"),
        "input_dims": input_dims,
        "output_dims": output_dims,
        "input_dtype": input_dtype,
        "output_dtype": output_dtype,
        "weights_dtype": weights.get("Type"),
        "weights_count": weights.get("Count"),
        "kernel": _int_list(layer.get("Kernel", layer.get("WindowSize")), "Kernel", name, source),
        "pre_padding": _int_list(layer.get("PrePadding"), "PrePadding", name, source),
        "post_padding": _int_list(layer.get("PostPadding"), "PostPadding", name, source),
        "stride": _int_list(layer.get("Stride"), "Stride", name, source),
        "dilation": _int_list(layer.get("Dilation"), "Dilation", name, source),
        "groups": _positive_int(layer.get("Groups"), "Groups", name, source, default=1),
        "out_maps": _positive_int(layer.get("OutMaps"), "OutMaps", name, source),
        "in_features": _positive_int(layer.get("InFeatures"), "InFeatures", name, source),
        "pooling_type": layer.get("PoolingType"),
        "adaptive": bool(layer.get("Adaptive", False)),
        # how many identical layers the row stands for (NVML dialect); a sum weight downstream
        "count": _positive_int(layer.get("Count"), "Count", name, source, default=1),
    }


def _first_tensor(layer: Mapping, key: str, name: str, source: str) -> tuple[list[int], str | None]:
    """``Dimensions`` and ``Format/Datatype`` of the first tensor under ``Inputs``/``Outputs``."""
    tensors = layer.get(key)
    first = tensors[0] if isinstance(tensors, list) and tensors else None
    if not isinstance(first, Mapping) or first.get("Dimensions") is None:
        raise ValueError(
            f"{source}: layer '{name}' has no {key}[0].Dimensions "
            f"(expected {key}: [{{'Dimensions': [...], 'Format/Datatype': ...}}])"
        )
    dims = _int_list(first["Dimensions"], f"{key}[0].Dimensions", name, source)
    if not dims or min(dims) <= 0:
        # a zero or negative size would predict NaN (or a negative cost) far from the cause;
        # -1 marks a dynamic dimension
        raise ValueError(
            f"{source}: layer '{name}': {key}[0].Dimensions must be a non-empty list of "
            f"positive integers, got {first['Dimensions']!r} (build the engine with fixed "
            "input shapes)"
        )
    dtype = first.get("Format/Datatype", first.get("Datatype", first.get("Format")))
    return dims, None if dtype is None else str(dtype)


def _int_list(value: Any, key: str, name: str, source: str) -> list[int] | None:
    """A JSON list of integers (or a scalar, taken as a 1-element list); ``None`` stays."""
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    if not all(_is_integer(item) for item in items):
        raise ValueError(
            f"{source}: layer '{name}': {key} must be a list of integers, got {value!r}"
        )
    return [int(item) for item in items]


def _positive_int(
    value: Any, key: str, name: str, source: str, default: int | None = None
) -> int | None:
    """A JSON integer ≥ 1; ``default`` when the key is absent or null."""
    if value is None:
        return default
    if not _is_integer(value) or value < 1:
        raise ValueError(
            f"{source}: layer '{name}': {key} must be a positive integer (1, 2, ...), got {value!r}"
        )
    return int(value)


def _is_integer(value: Any) -> bool:
    """An integer or a float with an integral value (``2.0``); not a bool, string or list
    (``int()`` would take ``True``, ``"3"`` and truncate ``2.5``)."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def parse_engine(text: str | bytes, source: str) -> pd.DataFrame:
    """``layer_descriptions`` rows of one engine file; ``ValueError`` naming the file (and the
    layer) when it is not JSON, has no ``Layers`` or a layer lacks dimensions."""
    try:
        engine = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(
            f"{source}: not valid JSON ({exc}); expected a TensorRT engine-inspector JSON "
            "or the NVML/PyTorch dialect, {'Layers': [...]}"
        ) from exc
    return describe_layers(engine, source)
