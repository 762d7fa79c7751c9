"""The engine reader: TensorRT inspector JSON (or the NVML/PyTorch dialect) → layer rows.

``describe_layers`` is the one place that reads an engine description; ingestion and
prediction both call it (``parse_engine`` from the file's bytes). Schema:
``layer_descriptions`` in docs/data-contracts.md.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
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
#: Columns kept as objects whatever they hold (lists, or text that may be missing).
_LOOSE_COLUMNS = ("stride", "dilation", "weights_dtype", "pooling_type")
_INT = {int}


def describe_layers(engine: dict, source: str) -> pd.DataFrame:
    """One row per layer of an engine description, in the ``layer_descriptions`` schema.

    Args:
        engine: the parsed JSON: ``{"Layers": [layer, ...], ...}``.
        source: where it came from (file path), used in error messages.

    Raises:
        ValueError: no ``Layers`` list, a layer that is not an object (engine built without
            detailed profiling verbosity), or a layer without input/output ``Dimensions``.
    """
    return description_frame(layer_rows(engine, source))


def layer_rows(engine: Any, source: str) -> list[tuple]:
    """The rows of ``describe_layers`` as tuples (``DESCRIPTION_COLUMNS`` order), checked the
    same way: the rows of many engines make one table at once (``description_frame``), which
    is what reading thousands of networks costs least."""
    if not isinstance(engine, Mapping) or not isinstance(engine.get("Layers"), list):
        raise ValueError(
            f"{source}: expected an engine description with a 'Layers' list "
            "(TensorRT IEngineInspector JSON, detailed verbosity)"
        )
    return [_describe_layer(layer, index, source) for index, layer in enumerate(engine["Layers"])]


def description_frame(rows: list[tuple], **extra: Any) -> pd.DataFrame:
    """Rows of ``layer_rows`` (of one engine or many, concatenated) → the typed
    ``layer_descriptions`` table; ``extra`` columns (a ``network`` per row) come first."""
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(DESCRIPTION_COLUMNS)
    data: dict[str, Any] = dict(extra)
    for name, values in zip(DESCRIPTION_COLUMNS, columns, strict=True):
        if name in _NULLABLE_INT_COLUMNS:
            data[name] = pd.array(values, dtype="Int64")
        elif name in ("groups", "count"):
            data[name] = np.fromiter(values, dtype=np.int64, count=len(values))
        elif name == "adaptive":
            data[name] = np.fromiter(values, dtype=bool, count=len(values))
        elif name in _OBJECT_COLUMNS or name in _LOOSE_COLUMNS:
            # inferred first (missing text becomes NaN, as in a frame built from records)
            data[name] = pd.Series(object_array(values)).astype(object)
        else:  # text, or None where a layer has none
            data[name] = pd.Series(object_array(values))
    return pd.DataFrame(data)


def object_array(values: Sequence[Any]) -> np.ndarray:
    """``values`` in a 1-D object array, lists kept as list cells (``np.array`` would nest)."""
    return np.fromiter(values, dtype=object, count=len(values))


def _describe_layer(layer: Any, index: int, source: str) -> tuple:
    """The ``layer_descriptions`` row of one engine layer (``DESCRIPTION_COLUMNS`` order)."""
    if layer.__class__ is not dict and not isinstance(layer, Mapping):
        raise ValueError(
            f"{source}: layer #{index} is {type(layer).__name__} {str(layer)[:80]!r}, expected "
            "an object with Name, LayerType, Inputs, Outputs (build the engine with detailed "
            "profiling verbosity)"
        )
    get = layer.get
    name = str(get("Name", f"#{index}"))
    input_dims, input_dtype = _first_tensor(layer, "Inputs", name, source)
    output_dims, output_dtype = _first_tensor(layer, "Outputs", name, source)
    weights = get("Weights")
    weights = weights if weights.__class__ is dict or isinstance(weights, Mapping) else {}
    return (
        name,
        str(get("LayerType") or "Unknown"),
        get("ParameterType"),
        input_dims,
        output_dims,
        input_dtype,
        output_dtype,
        weights.get("Type"),
        weights.get("Count"),
        _int_list(
            layer["Kernel"] if "Kernel" in layer else get("WindowSize"), "Kernel", name, source
        ),
        _int_list(get("PrePadding"), "PrePadding", name, source),
        _int_list(get("PostPadding"), "PostPadding", name, source),
        _int_list(get("Stride"), "Stride", name, source),
        _int_list(get("Dilation"), "Dilation", name, source),
        _positive_int(get("Groups"), "Groups", name, source, default=1),
        _positive_int(get("OutMaps"), "OutMaps", name, source),
        _positive_int(get("InFeatures"), "InFeatures", name, source),
        get("PoolingType"),
        bool(get("Adaptive", False)),
        # how many identical layers the row stands for (NVML dialect); a sum weight downstream
        _positive_int(get("Count"), "Count", name, source, default=1),
    )


def _first_tensor(layer: Mapping, key: str, name: str, source: str) -> tuple[list[int], str | None]:
    """``Dimensions`` and ``Format/Datatype`` of the first tensor under ``Inputs``/``Outputs``."""
    tensors = layer.get(key)
    first = tensors[0] if isinstance(tensors, list) and tensors else None
    if first.__class__ is not dict and not isinstance(first, Mapping):
        first = None
    dims = None if first is None else first.get("Dimensions")
    if dims is None:
        raise ValueError(
            f"{source}: layer '{name}' has no {key}[0].Dimensions "
            f"(expected {key}: [{{'Dimensions': [...], 'Format/Datatype': ...}}])"
        )
    if dims.__class__ is list and dims and set(map(type, dims)) <= _INT and min(dims) > 0:
        dims = list(dims)  # the usual case, checked quickly
    else:
        dims = _int_list(dims, f"{key}[0].Dimensions", name, source)
        if not dims or min(dims) <= 0:
            # a zero or negative size would predict NaN (or a negative cost) far from the
            # cause; -1 marks a dynamic dimension
            raise ValueError(
                f"{source}: layer '{name}': {key}[0].Dimensions must be a non-empty list of "
                f"positive integers, got {first['Dimensions']!r} (build the engine with fixed "
                "input shapes)"
            )
    if "Format/Datatype" in first:
        dtype = first["Format/Datatype"]
    else:
        dtype = first.get("Datatype", first.get("Format"))
    return dims, None if dtype is None else str(dtype)


def _int_list(value: Any, key: str, name: str, source: str) -> list[int] | None:
    """A JSON list of integers (or a scalar, taken as a 1-element list); ``None`` stays."""
    if value is None:
        return None
    if value.__class__ is list and set(map(type, value)) <= _INT:  # the usual case, quickly
        return list(value)
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
    if value.__class__ is int and value >= 1:
        return value
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
    return description_frame(parse_engine_rows(text, source))


def parse_engine_rows(text: str | bytes, source: str) -> list[tuple]:
    """``parse_engine`` as ``layer_rows`` (many files make one ``description_frame``)."""
    try:
        engine = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(
            f"{source}: not valid JSON ({exc}); expected a TensorRT engine-inspector JSON "
            "or the NVML/PyTorch dialect, {'Layers': [...]}"
        ) from exc
    return layer_rows(engine, source)
