"""Layer classification and physically meaningful features, from layer descriptions only.

``build_features`` needs no measurement: the prediction pipeline calls it on a new network's
``layer_descriptions``. Definitions and formulas: docs/feature_engineering.md.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from itertools import chain
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from power_modelling.core.layers import OTHER

logger = logging.getLogger(__name__)


#: TensorRT runs these convolutions as a GEMM (fully-connected and 1x1 layers): dense, as upstream.
GEMM_CONVOLUTION_TYPES = frozenset({"caskgemmconvolution"})
#: Bytes per element when a data type string is missing or unrecognised (TensorRT's default FP32).
DEFAULT_DTYPE_BYTES = 4
_DTYPE_PATTERNS = (  # first match wins; searched in the upper-cased string
    (re.compile(r"FP16|HALF|BF16|FLOAT16"), 2),
    (re.compile(r"INT8|FP8|UINT8|BOOL"), 1),
    (re.compile(r"FP32|TF32|FLOAT|INT32"), 4),
    (re.compile(r"INT64|FP64|DOUBLE"), 8),
)

_GEOMETRY = [
    "batch_size",
    "input_size_0",
    "input_size_1",
    "input_size_2",
    "output_size_0",
    "output_size_1",
    "output_size_2",
    "kernel_0",
    "kernel_1",
]
_DERIVED = ["flops", "input_bytes", "output_bytes", "weight_bytes", "arithmetic_intensity"]
#: The feature columns of each layer class (upstream's names first, then the derived ones).
FEATURE_COLUMNS: dict[str, list[str]] = {
    "convolutional": [
        *_GEOMETRY,
        "padding_0",
        "padding_1",
        "stride_0",
        "stride_1",
        "groups",
        *_DERIVED,
    ],
    "pooling": [*_GEOMETRY, "stride_0", "stride_1", *_DERIVED],
    "dense": ["batch_size", "input_size", "output_size", "gemm_m", "gemm_k", "gemm_n", *_DERIVED],
}
ALL_FEATURE_COLUMNS = list(dict.fromkeys(c for cols in FEATURE_COLUMNS.values() for c in cols))


def classify_layers(descriptions: pd.DataFrame) -> pd.Series:
    """``convolutional`` / ``pooling`` / ``dense`` / ``other`` from what each layer does.

    ``ParameterType`` decides (``Convolution``, ``Pooling``, ``MatrixMultiply``), PyTorch
    ``Linear`` is dense, and TensorRT's GEMM-executed convolutions are dense. Without a
    ``ParameterType`` the ``LayerType`` name is used (``...Conv...``, ``...Pool...``).
    """
    parameter_type = _lower(descriptions["parameter_type"])
    layer_type = _lower(descriptions["layer_type"])
    unknown = parameter_type == ""
    is_conv = (parameter_type == "convolution") | (
        unknown & layer_type.str.contains("conv", regex=False) & descriptions["kernel"].notna()
    )
    is_pool = (parameter_type == "pooling") | (unknown & layer_type.str.contains("pool"))
    is_dense = (parameter_type == "matrixmultiply") | (layer_type == "linear")
    gemm_conv = is_conv & layer_type.isin(GEMM_CONVOLUTION_TYPES)
    classes = np.select(
        [gemm_conv | is_dense, is_conv, is_pool],
        ["dense", "convolutional", "pooling"],
        default=OTHER,
    )
    return pd.Series(classes, index=descriptions.index, name="layer_class")


#: Precision names by bytes per element (what a model card and a prediction summary say).
PRECISION_OF_BYTES = {1: "INT8", 2: "FP16", 4: "FP32", 8: "FP64"}


def precision_of(descriptions: pd.DataFrame) -> str | None:
    """The precision most of a network's layers run in (``FP16``, ``FP32``, ``INT8``), from
    their input data types; ``None`` without any layer."""
    if descriptions.empty:
        return None
    sizes = dtype_bytes(descriptions["input_dtype"])
    return PRECISION_OF_BYTES.get(int(sizes.mode().iloc[0]))


def dtype_bytes(dtypes: pd.Series) -> pd.Series:
    """Bytes per element of TensorRT / NVML data type strings (``FP16``, ``Float``, ``Int8``,
    ``Row major linear FP16 format``, ...); missing or unknown → ``DEFAULT_DTYPE_BYTES``
    (``build_features`` warns once, naming the layers)."""
    # each distinct name looked up once (a table of thousands of networks holds a handful)
    codes, names = pd.factorize(dtypes.astype(object))  # missing: -1
    by_code = np.array(
        [*(_bytes_of(name) or DEFAULT_DTYPE_BYTES for name in names), DEFAULT_DTYPE_BYTES]
    )
    return pd.Series(by_code[codes].astype("float64"), index=dtypes.index, name=dtypes.name)


def _dtype_names(dtypes: pd.Series) -> pd.Series:
    return dtypes.astype(object).where(dtypes.notna(), None)


def _tensor_dtypes(rows: pd.DataFrame) -> dict[str, pd.Series]:
    """The data type of each tensor the byte features count (weights default to the input's)."""
    weights = rows["weights_dtype"].where(rows["weights_dtype"].notna(), rows["input_dtype"])
    return {"input": rows["input_dtype"], "output": rows["output_dtype"], "weights": weights}


def _warn_unknown_dtypes(rows: pd.DataFrame, max_layers: int = 5) -> None:
    """One warning for every modelled layer whose byte features assumed
    ``DEFAULT_DTYPE_BYTES``, naming the data types, the tensors and the layers (per model or
    network)."""
    unknown = pd.Series("", index=rows.index)
    types: set[str] = set()
    for tensor, dtypes in _tensor_dtypes(rows).items():
        names = _dtype_names(dtypes)
        bad = names.map(lambda name: _bytes_of(name) is None).astype(bool)
        unknown[bad] += f"{tensor} "
        types.update("missing" if name is None else repr(name) for name in names[bad])
    unknown = unknown[unknown != ""]
    if unknown.empty:
        return
    owner_column = next((c for c in ("model", "network") if c in rows.columns), None)
    owners = rows.loc[unknown.index, owner_column] if owner_column else None
    layers = rows.loc[unknown.index, "layer_name"].astype(str)
    labels = layers + " (" + unknown.str.strip().str.replace(" ", ", ") + ")"
    groups = labels.groupby(owners.astype(str), sort=True) if owners is not None else [("", labels)]
    where = "; ".join(
        f"{owner + ': ' if owner else ''}{', '.join(items.head(max_layers))}"
        + (f" and {len(items) - max_layers} more" if len(items) > max_layers else "")
        for owner, items in groups
    )
    logger.warning(
        "Data type (%s) missing or unrecognised in %d layer(s), assuming %d bytes per element "
        "for their byte features: %s",
        ", ".join(sorted(types)),
        len(unknown),
        DEFAULT_DTYPE_BYTES,
        where,
    )


#: Sizes no device runs (docs/safety.md): one tensor of more than 1 TiB (an H200 holds 141 GB)
#: or one layer of more than 1e15 FLOPs (half a second of an H200's dense FP16 peak; the
#: largest layer of the bundled CNNs does 4e9 at batch 1). A layer beyond them is an input
#: error (1e9 channels, a size in bytes given as elements, ...), not something to predict.
MAX_TENSOR_BYTES = float(2**40)
MAX_LAYER_FLOPS = 1e15
#: Geometry lists a layer may carry, with the least value each item may take.
_GEOMETRY_LISTS = {
    "kernel": 1,
    "stride": 1,
    "dilation": 1,
    "pre_padding": 0,
    "post_padding": 0,
}


def layer_problems(descriptions: pd.DataFrame) -> pd.Series:
    """Why each layer is bad input, ``None`` where it is fine (same index as ``descriptions``).

    Checked, vectorised over all rows (each column exploded once, no loop per layer):
    ``input_dims``/``output_dims`` non-empty lists of positive integers; the geometry lists
    (``kernel``, ``stride``, ``dilation`` ≥ 1, paddings ≥ 0) integers where given;
    ``groups`` and ``count`` positive integers; input and output tensors within
    ``MAX_TENSOR_BYTES``. ``size_problems`` checks the computed FLOPs and weights. The first
    problem of a layer is reported, naming the column and its value.
    """
    index = descriptions.index
    descriptions = descriptions.reset_index(drop=True)
    problems = pd.Series(None, index=descriptions.index, dtype=object)

    def report(bad: pd.Series, column: str, expected: str) -> None:
        """``<column> <value>: <expected>`` for the rows newly found ``bad``."""
        new = bad.to_numpy(dtype=bool) & problems.isna().to_numpy()
        if new.any():
            values = descriptions.loc[new, column]
            problems[new] = [
                f"{column} {_shown(value)!r}: {expected.format(value=_product(value))}"
                for value in values
            ]

    elements = {}
    for column in ("input_dims", "output_dims"):
        bad, elements[column] = _bad_lists(descriptions[column], minimum=1, required=True)
        report(bad, column, "expected a non-empty list of positive integers")
    for column, minimum in _GEOMETRY_LISTS.items():
        if column in descriptions:
            bad, _ = _bad_lists(descriptions[column], minimum=minimum, required=False)
            report(bad, column, f"expected integers >= {minimum}")
    for column in ("groups", "count"):
        if column in descriptions:
            numbers = pd.to_numeric(descriptions[column], errors="coerce")
            report(
                ~(numbers >= 1) | (numbers != np.floor(numbers)), column, "expected an integer >= 1"
            )
    for tensor in ("input", "output"):
        dtype = dtype_bytes(descriptions[f"{tensor}_dtype"])
        report(
            elements[f"{tensor}_dims"] * dtype > MAX_TENSOR_BYTES,
            f"{tensor}_dims",
            f"a {{value:.3g}}-element tensor, beyond {MAX_TENSOR_BYTES:.3g} bytes (no device "
            "holds it)",
        )
    problems.index = index
    return problems


def size_problems(features: pd.DataFrame) -> pd.Series:
    """``build_features`` rows whose FLOPs or weights exceed ``MAX_LAYER_FLOPS`` /
    ``MAX_TENSOR_BYTES``: the problem, ``None`` elsewhere."""
    problems = pd.Series(None, index=features.index, dtype=object)
    flops, weights = features["flops"], features["weight_bytes"]
    too_many = (flops > MAX_LAYER_FLOPS).to_numpy()
    problems[too_many] = [
        f"{value:.3g} FLOPs, beyond {MAX_LAYER_FLOPS:.0e} per layer (no device runs that)"
        for value in flops[too_many]
    ]
    too_heavy = (weights > MAX_TENSOR_BYTES).to_numpy() & problems.isna().to_numpy()
    problems[too_heavy] = [
        f"{value:.3g} bytes of weights, beyond {MAX_TENSOR_BYTES:.3g} (more than any device holds)"
        for value in weights[too_heavy]
    ]
    return problems


def _bad_lists(values: pd.Series, minimum: int, required: bool) -> tuple[pd.Series, pd.Series]:
    """Rows of a list-valued column holding an item that is not an integer >= ``minimum``
    (with ``required``: also rows without a non-empty list), and each row's product of items.
    """
    exploded = values.explode()  # None and [] become one missing item
    numbers = pd.to_numeric(exploded, errors="coerce").astype("float64")
    given = exploded.notna()
    bad_item = given & (~(numbers >= minimum) | (numbers != np.floor(numbers)))
    if required:
        bad_item |= ~given
    by_row = bad_item.groupby(level=0, sort=False)
    product = numbers.where(given, 1.0).groupby(level=0, sort=False).prod()
    return by_row.any().reindex(values.index), product.reindex(values.index)


def _shown(value: Any) -> Any:
    """A cell as it reads in a message: arrays as lists, NumPy scalars as Python ones."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, list | tuple):
        return [_shown(item) for item in value]
    return value.item() if isinstance(value, np.generic) else value


def _product(value: Any) -> float:
    """The product of a list's items (NaN when it has none or they are not numbers)."""
    try:
        items = np.asarray(value, dtype="float64")
    except (TypeError, ValueError):
        return float("nan")
    return float(np.prod(items)) if items.size else float("nan")


def build_features(descriptions: pd.DataFrame) -> pd.DataFrame:
    """``descriptions`` plus ``layer_class`` and every feature column.

    Rows get the features of their class; the other classes' columns are NaN (all of them
    for ``other`` rows). Works on any ``layer_descriptions`` frame, measured or not.
    """
    frame = descriptions.reset_index(drop=True)
    layer_class = classify_layers(frame)
    features = pd.DataFrame(index=frame.index, columns=ALL_FEATURE_COLUMNS, dtype="float64")
    lists = _ListCells.of(frame)
    for name, compute in (
        ("convolutional", _convolution_features),
        ("pooling", _pooling_features),
        ("dense", _dense_features),
    ):
        rows = layer_class == name
        if rows.any():
            computed = compute(frame.loc[rows], lists.subset(rows.to_numpy()))
            features.loc[rows, computed.columns] = computed.to_numpy(dtype="float64")
    _log_classes(layer_class, frame["layer_type"])
    _warn_unknown_dtypes(frame[(layer_class != OTHER).to_numpy()])
    # ``groups`` is a description column already (1 unless grouped, every row): keep that one.
    features = features.drop(columns="groups")
    stale = [c for c in ("layer_class", *features.columns) if c in frame.columns]
    return pd.concat([frame.drop(columns=stale), layer_class, features], axis=1)


def _convolution_features(rows: pd.DataFrame, lists: _ListCells) -> pd.DataFrame:
    """Geometry, FLOPs and bytes of convolutions ``[N, C, H, W] → [N, K, P, Q]``."""
    geometry = _spatial_geometry(rows, lists, kernel=lists("kernel", 2))
    padding = lists("pre_padding", 2, fill=0) + lists("post_padding", 2, fill=0)
    stride = lists("stride", 2, fill=1)
    groups = rows["groups"].to_numpy(dtype="float64")
    kernel_area = geometry["kernel_0"] * geometry["kernel_1"]
    macs_per_output = geometry["input_size_0"] / groups * kernel_area
    outputs = _outputs(geometry)
    weights = _weight_elements(rows, geometry["output_size_0"] * macs_per_output)
    features = geometry.assign(
        padding_0=padding[:, 0],
        padding_1=padding[:, 1],
        stride_0=stride[:, 0],
        stride_1=stride[:, 1],
        groups=groups,
        flops=2.0 * outputs * macs_per_output,
    )
    return _with_bytes(features, rows, lists, weights)


def _pooling_features(rows: pd.DataFrame, lists: _ListCells) -> pd.DataFrame:
    """Pooling: the kernel is ``WindowSize``; without one, ``ceil(input / output)`` per axis
    (the input's spatial size for a global pooling). One operation per window element."""
    in_dims, out_dims = lists("input_dims", 4), lists("output_dims", 4)
    fallback = np.ceil(in_dims[:, 2:4] / np.where(out_dims[:, 2:4] > 0, out_dims[:, 2:4], 1))
    window = lists("kernel", 2)
    window = np.where(np.isnan(window), fallback, window)
    geometry = _spatial_geometry(rows, lists, kernel=window)
    stride = lists("stride", 2)
    stride = np.where(np.isnan(stride), window, stride)
    features = geometry.assign(
        stride_0=stride[:, 0],
        stride_1=stride[:, 1],
        flops=_outputs(geometry) * geometry["kernel_0"] * geometry["kernel_1"],
    )
    return _with_bytes(features, rows, lists, np.zeros(len(rows)))


def _dense_features(rows: pd.DataFrame, lists: _ListCells) -> pd.DataFrame:
    """Dense layers as a GEMM ``[M, K] x [K, N]``.

    PyTorch ``Linear`` on ``[..., K]``: M = product of the leading dimensions (``N*H*W`` for a
    4-D ``[N, H, W, C]``). TensorRT GEMM convolution ``[B, C, H, W] → [B, K, P, Q]``:
    M = ``B*P*Q``, K = ``C / groups * kh * kw``, N = ``K`` output maps.
    """
    in_dims, out_dims = lists("input_dims", 8), lists("output_dims", 8)
    in_rank, out_rank = lists.rank("input_dims"), lists.rank("output_dims")
    line = np.arange(len(rows))
    in_total, out_total = np.nanprod(in_dims, axis=1), np.nanprod(out_dims, axis=1)
    linear_k = _first_present(rows["in_features"], in_dims[line, in_rank - 1])
    linear_n = _first_present(rows["out_maps"], out_dims[line, out_rank - 1])
    kernel = lists("kernel", 2, fill=1)
    groups = rows["groups"].to_numpy(dtype="float64")
    conv_k = in_dims[:, 1] / groups * kernel[:, 0] * kernel[:, 1]
    conv_n = _first_present(rows["out_maps"], out_dims[:, 1])
    as_conv = _lower(rows["parameter_type"]).to_numpy() == "convolution"
    gemm_k = np.where(as_conv, conv_k, linear_k)
    gemm_n = np.where(as_conv, conv_n, linear_n)
    gemm_m = np.where(as_conv, out_total / out_dims[:, 1], in_total / linear_k)
    features = pd.DataFrame(
        {
            "batch_size": in_dims[:, 0],
            "input_size": in_total / in_dims[:, 0],
            "output_size": out_total / out_dims[:, 0],
            "gemm_m": gemm_m,
            "gemm_k": gemm_k,
            "gemm_n": gemm_n,
            "flops": 2.0 * gemm_m * gemm_k * gemm_n,
        },
        index=rows.index,
    )
    return _with_bytes(features, rows, lists, _weight_elements(rows, gemm_k * gemm_n))


def _spatial_geometry(rows: pd.DataFrame, lists: _ListCells, kernel: np.ndarray) -> pd.DataFrame:
    """Upstream's ``batch_size, input_size_0..2, output_size_0..2, kernel_0/1`` (NCHW)."""
    in_dims, out_dims = lists("input_dims", 4), lists("output_dims", 4)
    return pd.DataFrame(
        {
            "batch_size": in_dims[:, 0],
            "input_size_0": in_dims[:, 1],
            "input_size_1": in_dims[:, 2],
            "input_size_2": in_dims[:, 3],
            "output_size_0": out_dims[:, 1],
            "output_size_1": out_dims[:, 2],
            "output_size_2": out_dims[:, 3],
            "kernel_0": kernel[:, 0],
            "kernel_1": kernel[:, 1],
        },
        index=rows.index,
    )


def _outputs(geometry: pd.DataFrame) -> pd.Series:
    """Output elements of a NCHW layer, all batch items."""
    return (
        geometry["batch_size"]
        * geometry["output_size_0"]
        * geometry["output_size_1"]
        * geometry["output_size_2"]
    )


def _weight_elements(rows: pd.DataFrame, computed: np.ndarray | pd.Series) -> np.ndarray:
    """TensorRT's ``Weights.Count`` where present, else the count implied by the shape."""
    return _first_present(rows["weights_count"], np.asarray(computed, dtype="float64"))


def _with_bytes(
    features: pd.DataFrame, rows: pd.DataFrame, lists: _ListCells, weights: np.ndarray
) -> pd.DataFrame:
    """Add tensor sizes in bytes (at each tensor's data type) and the arithmetic intensity."""
    dtypes = _tensor_dtypes(rows)
    input_bytes = np.nanprod(lists("input_dims", 8), axis=1) * dtype_bytes(dtypes["input"])
    output_bytes = np.nanprod(lists("output_dims", 8), axis=1) * dtype_bytes(dtypes["output"])
    weight_bytes = np.asarray(weights, dtype="float64") * dtype_bytes(dtypes["weights"])
    moved = input_bytes + output_bytes + weight_bytes
    return features.assign(
        input_bytes=input_bytes,
        output_bytes=output_bytes,
        weight_bytes=weight_bytes,
        arithmetic_intensity=features["flops"] / moved.where(moved > 0),
    )


#: The list-valued columns the features read, and how many of their items.
_LIST_WIDTHS = {
    "input_dims": 8,
    "output_dims": 8,
    "kernel": 2,
    "pre_padding": 2,
    "post_padding": 2,
    "stride": 2,
}


class _ListCells:
    """The list-valued columns of some rows as NaN-padded float matrices, each converted from
    its Python lists once for the whole table (then sliced per layer class)."""

    def __init__(self, matrices: dict[str, np.ndarray]) -> None:
        self.matrices = matrices

    @classmethod
    def of(cls, frame: pd.DataFrame) -> _ListCells:
        return cls({column: _matrix(frame[column], w) for column, w in _LIST_WIDTHS.items()})

    def subset(self, rows: np.ndarray) -> _ListCells:
        return _ListCells({column: m[rows] for column, m in self.matrices.items()})

    def __call__(self, column: str, width: int, fill: float = np.nan) -> np.ndarray:
        """The first ``width`` items of ``column``'s lists, missing ones ``fill``."""
        values = self.matrices[column][:, :width]
        return values.copy() if np.isnan(fill) else np.where(np.isnan(values), fill, values)

    def rank(self, column: str) -> np.ndarray:
        """How many items each list has (up to its width)."""
        return np.count_nonzero(~np.isnan(self.matrices[column]), axis=1)


def _matrix(values: pd.Series, width: int, fill: float = np.nan) -> np.ndarray:
    """List-valued column (lists, tuples or arrays; ``None``/NaN allowed) → ``(n, width)``
    float array, padded with ``fill``. Arrow converts all cells at once (tables of many
    networks hold hundreds of thousands of rows)."""
    cells = values.to_numpy(dtype=object)
    out = np.full((len(cells), width), fill, dtype="float64")
    try:
        lists = pa.array(cells, type=pa.list_(pa.float64()), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        return _matrix_of_sequences(cells, out, width)
    offsets = lists.offsets.to_numpy()
    lengths = np.where(lists.is_null().to_numpy(zero_copy_only=False), 0, np.diff(offsets))
    flat = lists.values.to_numpy(zero_copy_only=False)
    rows = np.repeat(np.arange(len(cells)), lengths)
    columns = np.arange(rows.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    items = np.repeat(offsets[:-1], lengths) + columns
    keep = columns < width
    out[rows[keep], columns[keep]] = flat[items[keep]]
    return out


def _matrix_of_sequences(cells: np.ndarray, out: np.ndarray, width: int) -> np.ndarray:
    """``_matrix`` for cells Arrow cannot convert: those that are not sequences of numbers
    count as missing."""
    kinds = (isinstance(cell, list | tuple | np.ndarray) for cell in cells)
    present = np.fromiter(kinds, dtype=bool, count=len(cells))
    filled = [cell[:width] for cell in cells[present]]
    lengths = np.fromiter(map(len, filled), dtype=np.int64, count=len(filled))
    flat = np.fromiter(chain.from_iterable(filled), dtype="float64", count=int(lengths.sum()))
    rows = np.repeat(np.flatnonzero(present), lengths)
    columns = np.arange(flat.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    out[rows, columns] = flat
    return out


def _first_present(preferred: pd.Series, fallback: np.ndarray) -> np.ndarray:
    """``preferred`` where it is set, else ``fallback``."""
    values = pd.to_numeric(preferred, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    return np.where(np.isnan(values), fallback, values)


def _lower(values: pd.Series) -> pd.Series:
    """Lower-cased strings, missing → ``""``."""
    return values.astype(object).where(values.notna(), "").astype(str).str.lower()


def _bytes_of(name: object) -> int | None:
    """Bytes per element of one data type string, ``None`` if not recognised."""
    if name is None:
        return None
    text = str(name).upper()
    for pattern, size in _DTYPE_PATTERNS:
        if pattern.search(text):
            return size
    return None


def _log_classes(layer_class: pd.Series, layer_type: Iterable[str]) -> None:
    """Log how many layers fell in each class, and the raw types counted as ``other``."""
    counts = layer_class.value_counts().to_dict()
    if not isinstance(layer_type, pd.Series):
        layer_type = pd.Series(list(layer_type), index=layer_class.index)
    other = layer_type[(layer_class == OTHER).to_numpy()]
    logger.info(
        "Classified %d layers: %s; other by raw type: %s",
        len(layer_class),
        counts,
        other.value_counts().to_dict(),
    )
