"""Applicability domain: what the training set covered, and whether a new layer lies inside.

``fit_domain(train_features, groups)`` summarises a training feature table (all layer
classes, with the columns of ``add_physics_features``) per layer class in a JSON-able dict,
saved with the models:

- ``categories``: values seen of the categorical features (``batch_size``,
  ``element_bytes`` (bytes per element: the data type), ``conv_kind`` such as
  ``3x3 depthwise``, ``pooling_kind`` such as ``MAX 3x3`` or ``AVG global``);
- ``ranges``: ``[min, max]`` of the magnitude features (FLOPs, bytes, channels, ...);
- ``nn``: a nearest-neighbour distance scale in standardised ``log1p`` feature space. The
  threshold is calibrated by grouped cross-validation: the ``distance_quantile`` (0.99) of
  the distances from each CNN's layers to the nearest layer of the *other* CNNs, i.e. how far
  a layer of an unseen network usually is from the training set. The median of these is 0
  (the same layer configurations recur across a family), so lower quantiles would flag a
  third of the bundled CNNs' layers in leave-one-CNN-out; at 0.99 it flags 19 of 453 (LeNet's
  tiny layers, ConvNeXt-base's widest, AlexNet's 11x11), and 191 when whole families are
  held out.

``assess(features, domain)`` returns, vectorised, ``in_domain`` (bool per row) and
``domain_note`` (``""`` in domain, else the reasons joined by ``"; "``), e.g.
``batch_size 8 outside trained [1, 1]``, ``pooling_kind AVG 2x2 never seen``,
``flops 3.1× above trained max``, ``nearest trained layer 2.4× the usual distance``.
A magnitude outside the trained range by less than ``range_tolerance`` (×1.25) is not
flagged: the nearest-neighbour rule still applies there. ``nearest_distance`` gives the
distance ratio itself (used as the difficulty of the conformal intervals).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from power_modelling.core.compiled import log_matrix
from power_modelling.core.physics_features import with_physics_features

DOMAIN_VERSION = 1
CATEGORICAL: dict[str, tuple[str, ...]] = {
    "convolutional": ("batch_size", "element_bytes", "conv_kind"),
    "pooling": ("batch_size", "element_bytes", "pooling_kind"),
    "dense": ("batch_size", "element_bytes"),
}
#: Checked against the trained range (value ratio); batch size is reported as a range.
RANGES: dict[str, tuple[str, ...]] = {
    "convolutional": (
        "flops",
        "bytes_read",
        "bytes_written",
        "weight_bytes",
        "out_channels",
        "reduction_size",
    ),
    "pooling": ("flops", "bytes_read", "bytes_written", "out_channels", "kernel_area"),
    "dense": ("flops", "bytes_read", "bytes_written", "weight_bytes", "out_channels"),
}
#: Coordinates of the nearest-neighbour distance (``log1p``, standardised). Totals, not
#: per-item values: a larger batch moves a layer away from the batch-1 training set.
NEIGHBOUR: dict[str, tuple[str, ...]] = {
    "convolutional": (
        "flops",
        "bytes_read",
        "bytes_written",
        "weight_bytes",
        "gemm_rows",
        "out_channels",
        "reduction_size",
        "kernel_area",
        "stride_0",
    ),
    "pooling": (
        "flops",
        "bytes_read",
        "bytes_written",
        "gemm_rows",
        "out_channels",
        "kernel_area",
        "stride_0",
        "pool_max",
        "pool_global",
    ),
    "dense": (
        "flops",
        "bytes_read",
        "bytes_written",
        "weight_bytes",
        "gemm_rows",
        "out_channels",
        "reduction_size",
    ),
}
_LABELS = {"pooling_kind": "pooling_type", "conv_kind": "convolution"}


def fit_domain(
    train_features: pd.DataFrame,
    groups: Sequence[Any] | pd.Series,
    distance_quantile: float = 0.99,
    range_tolerance: float = 1.25,
) -> dict[str, Any]:
    """The applicability domain of a training table (see the module docstring).

    ``groups``: the CNN of each row (grouped calibration of the distance scale); a class
    with a single CNN falls back to leave-one-row-out distances.
    """
    frame = with_physics_features(train_features)
    groups = np.asarray(groups)
    if len(groups) != len(frame):
        raise ValueError(f"fit_domain: {len(groups)} groups for {len(frame)} rows")
    classes: dict[str, Any] = {}
    for layer_class in CATEGORICAL:
        rows = (frame["layer_class"] == layer_class).to_numpy()
        if rows.any():
            classes[layer_class] = _fit_class(
                frame.loc[rows], groups[rows], layer_class, distance_quantile
            )
    return {
        "version": DOMAIN_VERSION,
        "distance_quantile": float(distance_quantile),
        "range_tolerance": float(range_tolerance),
        "classes": classes,
    }


def _fit_class(
    frame: pd.DataFrame, groups: np.ndarray, layer_class: str, quantile: float
) -> dict[str, Any]:
    categories = {
        name: sorted({_category(v) for v in frame[name].dropna()}, key=_sort_key)
        for name in CATEGORICAL[layer_class]
    }
    ranges = {}
    for name in RANGES[layer_class]:
        values = pd.to_numeric(frame[name], errors="coerce").dropna()
        if len(values):
            ranges[name] = [float(values.min()), float(values.max())]
    features = NEIGHBOUR[layer_class]
    raw = log_matrix(frame, features)
    usable = np.isfinite(raw).all(axis=1)
    raw, kept_groups = raw[usable], groups[usable]
    center = raw.mean(axis=0)
    # a constant coordinate (all batch 1, no max pooling) still counts one log unit per step
    scale = np.where(raw.std(axis=0) > 1e-9, raw.std(axis=0), 1.0)
    points = (raw - center) / scale
    held_out = _grouped_nearest(points, kept_groups)
    finite = held_out[np.isfinite(held_out)]
    threshold = float(np.quantile(finite, quantile)) if finite.size else 1.0
    return {
        "n_layers": len(frame),
        "n_groups": len(set(groups.tolist())),
        "categories": categories,
        "ranges": ranges,
        "nn": {
            "features": list(features),
            "center": center.tolist(),
            "scale": scale.tolist(),
            "points": points.round(6).tolist(),
            "threshold": max(threshold, 1e-6),
            "held_out_quantiles": {
                str(q): float(np.quantile(finite, q)) if finite.size else float("nan")
                for q in (0.5, 0.9, 0.95, 0.99, 1.0)
            },
        },
    }


def _grouped_nearest(points: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Distance of each point to the nearest point of another group (leave-one-group-out);
    with a single group, to the nearest other point."""
    distances = _pairwise(points, points)
    if len(set(groups.tolist())) > 1:
        distances[groups[:, None] == groups[None, :]] = np.inf
    else:
        np.fill_diagonal(distances, np.inf)
    return distances.min(axis=1) if len(points) > 1 else np.full(len(points), np.nan)


def _pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2))


def nearest_distance(features: pd.DataFrame, domain: dict[str, Any]) -> np.ndarray:
    """Per row: distance to the nearest training layer of its class divided by the class's
    calibrated threshold (> 1: farther than unseen CNNs usually are). NaN for rows of a class
    the domain lacks or with a missing coordinate."""
    frame = with_physics_features(features)
    ratio = np.full(len(frame), np.nan)
    layer_class = frame["layer_class"].astype(str).to_numpy()
    for name, spec in domain["classes"].items():
        rows = layer_class == name
        if rows.any():
            ratio[rows] = _class_distance(frame.loc[rows], spec)
    return ratio


def _class_distance(frame: pd.DataFrame, spec: dict[str, Any]) -> np.ndarray:
    nn = spec["nn"]
    points = np.asarray(nn["points"], dtype="float64")
    query = (log_matrix(frame, nn["features"]) - np.asarray(nn["center"])) / np.asarray(nn["scale"])
    distance = np.full(len(frame), np.nan)
    usable = np.isfinite(query).all(axis=1)
    if usable.any() and len(points):
        distance[usable] = _pairwise(query[usable], points).min(axis=1)
    return distance / float(nn["threshold"])


def assess(
    features: pd.DataFrame, domain: dict[str, Any], ratio: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(in_domain, domain_note)`` per row of ``features`` (any classes, original order);
    ``ratio``: their :func:`nearest_distance` when the caller has it already."""
    frame = with_physics_features(features)
    notes = np.full(len(frame), "", dtype=object)
    layer_class = frame["layer_class"].astype(str).to_numpy()
    unknown = ~np.isin(layer_class, list(domain["classes"]))
    notes[unknown] = np.char.add(
        np.char.add("layer class ", layer_class[unknown].astype(str)), " not modelled"
    ).astype(object)
    tolerance = float(domain.get("range_tolerance", 1.0))
    ratio = nearest_distance(frame, domain) if ratio is None else np.asarray(ratio)
    for name, spec in domain["classes"].items():
        rows = np.flatnonzero(layer_class == name)
        if rows.size:
            notes[rows] = _class_notes(frame.iloc[rows], spec, ratio[rows], tolerance)
    return notes == "", notes


def _class_notes(
    frame: pd.DataFrame, spec: dict[str, Any], ratio: np.ndarray, tolerance: float
) -> np.ndarray:
    parts: list[np.ndarray] = []
    for name, seen in spec["categories"].items():
        values = frame[name].map(_category).to_numpy(dtype=object)
        if name == "batch_size" and seen:
            numeric = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype="float64")
            outside = (numeric < min(seen)) | (numeric > max(seen))
            text = f" outside trained [{_fmt(min(seen))}, {_fmt(max(seen))}]"
            parts.append(np.where(outside, "batch_size " + values.astype(str) + text, ""))
            unseen = ~outside & ~np.isin(values, seen)
        else:
            unseen = ~np.isin(values, seen) & frame[name].notna().to_numpy()
        label = _LABELS.get(name, name)
        parts.append(np.where(unseen, f"{label} " + values.astype(str) + " never seen", ""))
    for name, (low, high) in spec["ranges"].items():
        values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype="float64")
        with np.errstate(divide="ignore", invalid="ignore"):
            above = values / high if high > 0 else np.where(values > 0, np.inf, 0.0)
            below = low / values if low > 0 else np.zeros_like(values)
        parts.append(_ratio_notes(name, above, tolerance, "above trained max"))
        parts.append(_ratio_notes(name, below, tolerance, "below trained min"))
    missing = ~np.isfinite(ratio)
    parts.append(np.where(missing, "features missing for the distance check", ""))
    far = np.isfinite(ratio) & (ratio > 1.0)
    parts.append(
        np.where(
            far,
            "nearest trained layer " + _fmt_ratio(ratio) + "× the usual distance",
            "",
        )
    )
    stacked = np.column_stack(parts).astype(str)
    return np.array(["; ".join(p for p in row if p) for row in stacked], dtype=object)


def _ratio_notes(name: str, ratio: np.ndarray, tolerance: float, text: str) -> np.ndarray:
    flagged = np.isfinite(ratio) & (ratio > tolerance)
    return np.where(flagged, f"{name} " + _fmt_ratio(ratio) + f"× {text}", "")


def _fmt_ratio(ratio: np.ndarray) -> np.ndarray:
    """``3.1`` below 10, ``12`` above (no float noise in the notes)."""
    safe = np.where(np.isfinite(ratio), ratio, 0.0)
    return np.where(safe < 10, np.char.mod("%.1f", safe), np.char.mod("%.0f", safe))


def _category(value: Any) -> Any:
    """JSON-able category: integral numbers as int, other numbers as float, else str."""
    if isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, int | float | np.integer | np.floating):
        number = float(value)
        return int(number) if number.is_integer() else number
    return str(value)


def _sort_key(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, int | float) else (1, str(value))


def _fmt(value: Any) -> str:
    return str(_category(value))
