"""Physics features of every layer class, and device constants estimated from measurements.

``add_physics_features`` extends a feature table (the output of ``build_features`` or a
``data/04_feature`` / ``05_model_input`` table) with what a GPU kernel's cost depends on:
traffic, the GEMM view of the layer (batch enters through its rows), per-item (batch-invariant)
sizes, depthwise / grouped flags, the pooling kind and window. It needs no measurement, so
prediction computes the very same columns. Existing columns (``batch_size``, ``flops``,
``input_bytes``, ``output_bytes``, ``weight_bytes``, ``arithmetic_intensity``) are reused,
never recomputed.

``fit_device_constants`` estimates the device from a *training* table (nothing is typed in):
the peak throughput and bandwidth as the upper envelopes of what the layers achieved, the
launch-overhead floor as a low quantile of the runtimes, and the device runtime trend
``floor + a·flops/peak + b·bytes/bandwidth`` fitted in log space over all layer classes.
``add_roofline_terms`` turns the constants into the roofline terms ``flops / peak`` and
``bytes / bandwidth``. The constants are a flat JSON-able ``{name: float}`` dict; the
estimators store the ones they were fitted with (``device_constants_``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Columns ``add_physics_features`` adds. Flags are 0/1 floats (0 where they do not apply),
#: sizes NaN where they do not apply, ``pooling_kind`` None outside pooling.
PHYSICS_COLUMNS = (
    "bytes_read",  # input + weights
    "bytes_written",  # output
    "bytes_total",  # read + written: the traffic of the roofline
    "element_bytes",  # bytes per input element (2 = FP16): a domain categorical
    "gemm_rows",  # M of the GEMM view: N·P·Q (conv, pool), gemm_m (dense); grows with batch
    "out_channels",  # N of the GEMM view: K (conv), C (pool), gemm_n (dense)
    "reduction_size",  # K of the GEMM view: C/groups·kh·kw (conv), kh·kw (pool), gemm_k (dense)
    "kernel_area",  # kh·kw (the pooling window for pooling; 1 for dense)
    "flops_per_item",  # per batch item: shape features, the same at any batch size
    "input_bytes_per_item",
    "output_bytes_per_item",
    "rows_per_item",  # gemm_rows / batch_size
    "activation_intensity",  # flops / (input + output bytes), per item (batch-invariant)
    "intensity_per_item",  # flops / (input + output + weight bytes), per item
    "in_alignment",  # largest power of two (<= 128) dividing C_in (conv, pool) / gemm_k
    "out_alignment",  # the same of the output channels / gemm_n: vector and tile widths
    "depthwise",  # 1 when groups == input channels > 1
    "grouped",  # 1 when 1 < groups < input channels
    "pool_max",
    "pool_avg",
    "pool_global",  # the window covers the whole input plane (output 1x1)
    "pool_adaptive",
    "pooling_kind",  # "MAX 3x3", "AVG 2x2", "AVG global" (pooling rows only)
    "conv_kind",  # "3x3", "3x3 depthwise", "1x1 grouped" (convolution rows only)
)
ROOFLINE_COLUMNS = ("t_compute_ms", "t_memory_ms", "roofline_ms")
#: Keys of ``fit_device_constants``' result that the estimators read.
DEVICE_CONSTANT_KEYS = (
    "peak_flops_per_ms",
    "bandwidth_bytes_per_ms",
    "launch_floor_ms",
    "trend_floor_ms",
    "trend_compute_factor",
    "trend_memory_factor",
)

_POOLING_TYPES = (("MAX", "max"), ("AVG", "av"), ("LP", "lp"))  # (label, lower-case marker)
#: The feature columns the physics features (and estimators) start from.
REQUIRED_COLUMNS = (
    "layer_class",
    "batch_size",
    "flops",
    "input_bytes",
    "output_bytes",
    "weight_bytes",
)


def add_physics_features(features: pd.DataFrame) -> pd.DataFrame:
    """``features`` plus :data:`PHYSICS_COLUMNS` (replaced if present); same index and rows.

    Needs ``layer_class``, ``batch_size``, ``flops``, ``input_bytes``, ``output_bytes``,
    ``weight_bytes`` and each class's geometry (NCHW ``input_size_0..2``, ``output_size_0..2``,
    ``kernel_0/1``, ``groups`` for convolutions and pooling; ``input_size``, ``gemm_m|k|n`` for
    dense). ``pooling_type`` / ``adaptive`` (engine description columns) are used when
    present, else the pooling type is read from ``layer_type`` (``MaxPool2d``,
    ``AdaptiveAvgPool2d``, ...).
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in features.columns]
    if missing:
        raise KeyError(
            f"add_physics_features: column(s) {missing} missing; expected a build_features "
            f"table, got columns {list(features.columns)}"
        )
    frame = features.drop(columns=[c for c in PHYSICS_COLUMNS if c in features.columns])
    layer_class = frame["layer_class"].astype(str).to_numpy()
    conv, pool, dense = (layer_class == name for name in ("convolutional", "pooling", "dense"))
    spatial = conv | pool

    def column(name: str) -> np.ndarray:
        if name not in frame.columns:
            return np.full(len(frame), np.nan)
        return pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype="float64")

    batch = column("batch_size")
    weight_bytes = np.nan_to_num(column("weight_bytes"))
    input_bytes, output_bytes, flops = (
        column("input_bytes"),
        column("output_bytes"),
        column("flops"),
    )
    channels_in = column("input_size_0")
    kernel_area = column("kernel_0") * column("kernel_1")
    groups = np.where(np.isnan(column("groups")), 1.0, column("groups"))
    input_elements = np.select(
        [spatial, dense],
        [
            batch * channels_in * column("input_size_1") * column("input_size_2"),
            batch * column("input_size"),
        ],
        default=np.nan,
    )
    rows = np.select(
        [spatial, dense],
        [batch * column("output_size_1") * column("output_size_2"), column("gemm_m")],
        default=np.nan,
    )
    per_item = {
        name: _ratio(values, batch)
        for name, values in (
            ("flops_per_item", flops),
            ("input_bytes_per_item", input_bytes),
            ("output_bytes_per_item", output_bytes),
            ("rows_per_item", rows),
        )
    }
    activation_bytes = per_item["input_bytes_per_item"] + per_item["output_bytes_per_item"]
    added = {
        "bytes_read": input_bytes + weight_bytes,
        "bytes_written": output_bytes,
        "bytes_total": input_bytes + weight_bytes + output_bytes,
        "element_bytes": _ratio(input_bytes, input_elements),
        "gemm_rows": rows,
        "out_channels": np.select(
            [conv, pool, dense], [column("output_size_0"), channels_in, column("gemm_n")], np.nan
        ),
        "reduction_size": np.select(
            [conv, pool, dense],
            [channels_in / groups * kernel_area, kernel_area, column("gemm_k")],
            np.nan,
        ),
        "kernel_area": np.where(dense, 1.0, kernel_area),
        **per_item,
        "activation_intensity": _ratio(per_item["flops_per_item"], activation_bytes),
        "intensity_per_item": _ratio(per_item["flops_per_item"], activation_bytes + weight_bytes),
        "in_alignment": _alignment(np.where(dense, column("gemm_k"), channels_in)),
        "out_alignment": _alignment(
            np.select([conv, pool, dense], [column("output_size_0"), channels_in, column("gemm_n")])
        ),
        "depthwise": (conv & (groups > 1) & (groups == channels_in)).astype("float64"),
        "grouped": (conv & (groups > 1) & (groups < channels_in)).astype("float64"),
        **_pooling_kinds(frame, pool, column),
        "conv_kind": _conv_kinds(frame, conv, groups, channels_in, column),
    }
    return frame.assign(**added)


def with_physics_features(features: pd.DataFrame) -> pd.DataFrame:
    """``features`` with the physics columns, added only when absent (every model and the
    domain read them: computed once per table, not once per model)."""
    needed = ("bytes_total", "conv_kind", "pooling_kind", "element_bytes")
    if all(c in features.columns for c in needed):
        return features
    if not set(PHYSICS_COLUMNS) & set(features.columns) or "layer_class" in features.columns:
        return add_physics_features(features)
    return features


#: Largest alignment :func:`_alignment` tells apart (wider tiles are rare).
MAX_ALIGNMENT = 128


def _alignment(channels: np.ndarray) -> np.ndarray:
    """The largest power of two dividing each channel count, at most :data:`MAX_ALIGNMENT`
    (NaN where unknown). GPU libraries pick kernels by it: on the bundled H200 data 3x3
    depthwise convolutions with 576 channels run in 0.0025 ms, with 672 (aligned to 32, not
    64) in 0.0070 ms. As a runtime shape feature it cut grouped-CV convolution runtime RMSPE
    from 22.9 to 21.4 % (1.0-1.9 points over three seeds) and leave-one-CNN-out runtime from
    13.2 to 12.8 %; holding out whole families it changed nothing (25.7 / 25.8 %)."""
    values = np.asarray(channels, dtype="float64")
    known = np.isfinite(values) & (values >= 1)
    whole = np.where(known, values, 1).astype(np.int64)
    return np.where(known, np.minimum(whole & -whole, MAX_ALIGNMENT), np.nan).astype("float64")


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator``, NaN where the denominator is not positive."""
    return numerator / np.where(denominator > 0, denominator, np.nan)


def _window_labels(column) -> np.ndarray:
    """``"3x3"`` from ``kernel_0/1`` (``"?x?"`` when unknown)."""
    k0, k1 = column("kernel_0"), column("kernel_1")
    known = np.isfinite(k0) & np.isfinite(k1)
    labels = np.char.add(
        np.char.add(np.nan_to_num(k0).astype(int).astype(str), "x"),
        np.nan_to_num(k1).astype(int).astype(str),
    )
    return np.where(known, labels, "?x?").astype(object)


def _pooling_kinds(frame: pd.DataFrame, pool: np.ndarray, column) -> dict[str, object]:
    """Pooling type flags, global / adaptive flags and the ``pooling_kind`` label."""
    layer_type = _lower_text(frame, "layer_type")
    declared = _lower_text(frame, "pooling_type")
    text = np.where(declared != "", declared, layer_type).astype(str)
    type_name = np.full(len(frame), "POOL", dtype=object)
    for label, marker in reversed(_POOLING_TYPES):  # first listed wins ("maxaverage" = MAX)
        type_name = np.where(np.char.find(text, marker) >= 0, label, type_name)
    if "adaptive" in frame.columns:
        adaptive = frame["adaptive"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    else:
        adaptive = np.zeros(len(frame), dtype=bool)
    adaptive = pool & (adaptive | (np.char.find(layer_type.astype(str), "adaptive") >= 0))
    out_plane = column("output_size_1") * column("output_size_2")
    in_plane = column("input_size_1") * column("input_size_2")
    is_global = pool & (out_plane == 1) & (in_plane > 1)
    kind = np.where(is_global, type_name + " global", type_name + " " + _window_labels(column))
    return {
        "pool_max": (pool & (type_name == "MAX")).astype("float64"),
        "pool_avg": (pool & (type_name == "AVG")).astype("float64"),
        "pool_global": is_global.astype("float64"),
        "pool_adaptive": adaptive.astype("float64"),
        "pooling_kind": pd.Series(np.where(pool, kind, None), index=frame.index, dtype=object),
    }


def _conv_kinds(
    frame: pd.DataFrame, conv: np.ndarray, groups: np.ndarray, channels_in: np.ndarray, column
) -> pd.Series:
    """``"3x3"``, ``"3x3 depthwise"``, ``"3x3 grouped"`` for convolutions, else None."""
    suffix = np.where(
        groups > 1, np.where(groups == channels_in, " depthwise", " grouped"), ""
    ).astype(object)
    kind = _window_labels(column) + suffix
    return pd.Series(np.where(conv, kind, None), index=frame.index, dtype=object)


def _lower_text(frame: pd.DataFrame, name: str) -> np.ndarray:
    """Lower-cased strings of a column (``""`` when missing or absent)."""
    if name not in frame.columns:
        return np.full(len(frame), "", dtype=object)
    values = frame[name].astype(object).where(frame[name].notna(), "")
    return values.astype(str).str.lower().to_numpy(dtype=object)


#: Least marginal cost of work, relative to the training envelope: the device trend may
#: not assume extra FLOPs or bytes run more than 2x faster than the best rate any training
#: layer achieved. Without it the trend of small layers alone (all near the launch floor)
#: leaves compute nearly free: holding VGG out, its compute factor fell from 0.81 to 0.075
#: (a marginal 2,800 TFLOP/s, beyond the H200's hardware peak) and VGG's convolutions were
#: predicted 37 % too fast. With it: leave-one-family-out runtime RMSPE 27.7 -> 25.7 %
#: (VGG 36.9 -> 26.8 %), leave-one-CNN-out unchanged (13.2 %); 1.0 (no headroom) gave VGG
#: 34.7 % and leave-one-CNN-out 14.7 %.
MIN_MARGINAL_FACTOR = 0.5


def fit_device_constants(
    train_table: pd.DataFrame,
    runtime_column: str = "runtime",
    envelope_quantile: float = 1.0,
    floor_quantile: float = 0.01,
    min_marginal_factor: float = MIN_MARGINAL_FACTOR,
) -> dict[str, float]:
    """Device constants from measured layers of any classes (a flat JSON-able dict).

    - ``peak_flops_per_ms``: the ``envelope_quantile`` of the achieved ``flops / runtime``
      (the upper envelope: the fastest any training layer computed);
    - ``bandwidth_bytes_per_ms``: the same of ``bytes_total / runtime``;
    - ``launch_floor_ms``: the ``floor_quantile`` of the runtimes (launch and scheduling
      overhead: no kernel ran faster);
    - ``trend_floor_ms``, ``trend_compute_factor`` (a), ``trend_memory_factor`` (b): the device
      runtime trend ``floor + a·flops/peak + b·bytes/bandwidth`` fitted by robust least
      squares on log runtime (``soft_l1``: a few odd kernels do not pull it). ``a`` and ``b``
      are the marginal cost of work relative to the envelope: extra work (a larger batch)
      costs ``a·Δflops/peak + b·Δbytes/bandwidth`` on top of a layer's fixed cost. Both are
      at least ``min_marginal_factor`` (:data:`MIN_MARGINAL_FACTOR`).

    Rows without a positive runtime are ignored; ``ValueError`` when fewer than 4 are left.
    """
    table = train_table if "bytes_total" in train_table else add_physics_features(train_table)
    if runtime_column not in table.columns:
        raise KeyError(f"fit_device_constants: no '{runtime_column}' column in the table")
    runtime = pd.to_numeric(table[runtime_column], errors="coerce").to_numpy(dtype="float64")
    flops = table["flops"].to_numpy(dtype="float64")
    traffic = table["bytes_total"].to_numpy(dtype="float64")
    usable = np.isfinite(runtime) & (runtime > 0) & np.isfinite(flops) & np.isfinite(traffic)
    if usable.sum() < 4:
        raise ValueError(
            f"fit_device_constants: {int(usable.sum())} row(s) with a positive "
            f"'{runtime_column}' among {len(table)}; need at least 4"
        )
    runtime, flops, traffic = runtime[usable], flops[usable], traffic[usable]
    constants = {
        "peak_flops_per_ms": float(np.quantile(flops / runtime, envelope_quantile)),
        "bandwidth_bytes_per_ms": float(np.quantile(traffic / runtime, envelope_quantile)),
        "launch_floor_ms": float(np.quantile(runtime, floor_quantile)),
    }
    compute, memory = roofline_terms(flops, traffic, constants)
    floor, a, b = _fit_trend(
        compute, memory, runtime, constants["launch_floor_ms"], min_marginal_factor
    )
    return {
        **constants,
        "trend_floor_ms": floor,
        "trend_compute_factor": a,
        "trend_memory_factor": b,
        "envelope_quantile": float(envelope_quantile),
        "floor_quantile": float(floor_quantile),
        "n_layers": float(usable.sum()),
    }


def _fit_trend(
    compute: np.ndarray,
    memory: np.ndarray,
    runtime: np.ndarray,
    floor_guess: float,
    min_factor: float,
) -> tuple[float, float, float]:
    """``(floor, a, b)`` of ``log runtime ≈ log(floor + a·compute + b·memory)``, floor > 0,
    ``a, b >= min_factor``."""
    from scipy.optimize import least_squares  # noqa: PLC0415 (fitting only; prediction: no SciPy)

    log_runtime = np.log(runtime)

    def residuals(theta: np.ndarray) -> np.ndarray:
        floor, a, b = np.exp(theta)
        return np.log(floor + a * compute + b * memory) - log_runtime

    start = np.array([np.log(floor_guess), 0.0, 0.0])
    fit = least_squares(residuals, start, loss="soft_l1", f_scale=0.2)
    least = np.log(min_factor)
    if fit.x[1:].min() < least:
        # refitted within the bound only when it binds: a bounded solve of the same problem
        # lands ~1e-5 away, enough to flip tree splits on near-ties downstream
        start = np.maximum(fit.x, [-np.inf, least, least])
        bounds = ([-np.inf, least, least], [np.inf, np.inf, np.inf])
        fit = least_squares(residuals, start, loss="soft_l1", f_scale=0.2, bounds=bounds)
    floor, a, b = np.exp(fit.x)
    return float(floor), float(a), float(b)


def device_trend(
    flops: np.ndarray, traffic: np.ndarray, constants: dict[str, float]
) -> tuple[np.ndarray, np.ndarray]:
    """``(marginal work time, trend runtime)`` in ms: ``a·flops/peak + b·bytes/bandwidth`` and
    the same plus ``trend_floor_ms``."""
    compute, memory = roofline_terms(flops, traffic, constants)
    work = (
        float(constants["trend_compute_factor"]) * compute
        + float(constants["trend_memory_factor"]) * memory
    )
    return work, work + float(constants["trend_floor_ms"])


def add_roofline_terms(table: pd.DataFrame, constants: dict[str, float]) -> pd.DataFrame:
    """``table`` plus :data:`ROOFLINE_COLUMNS` (ms): ``t_compute_ms = flops / peak``,
    ``t_memory_ms = bytes_total / bandwidth`` and ``roofline_ms = max(launch floor, t_compute,
    t_memory)``, the fastest the device runs the layer by its training envelope."""
    frame = table if "bytes_total" in table else add_physics_features(table)
    compute, memory = roofline_terms(
        frame["flops"].to_numpy(dtype="float64"),
        frame["bytes_total"].to_numpy(dtype="float64"),
        constants,
    )
    floor = float(constants["launch_floor_ms"])
    return frame.assign(
        t_compute_ms=compute,
        t_memory_ms=memory,
        roofline_ms=np.fmax(floor, np.fmax(compute, memory)),
    )


def roofline_terms(
    flops: np.ndarray, traffic: np.ndarray, constants: dict[str, float]
) -> tuple[np.ndarray, np.ndarray]:
    """``(flops / peak, bytes / bandwidth)`` in ms."""
    return (
        np.asarray(flops, dtype="float64") / float(constants["peak_flops_per_ms"]),
        np.asarray(traffic, dtype="float64") / float(constants["bandwidth_bytes_per_ms"]),
    )
