"""Per-layer and whole-network predictions from the six fitted models.

One place turns ``layer_descriptions`` rows (of an engine, an ONNX file, ...) into
predictions: the inference pipeline calls ``predict_layers`` for the ``prediction`` pipeline,
the served MLflow model and the network-level evaluation alike. It is batch-first: the rows of
many networks (a ``network`` column) are featurised once and each model is called once per
layer class.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
import pandas as pd

from power_modelling.core.engines import DESCRIPTION_COLUMNS
from power_modelling.core.features import build_features
from power_modelling.core.layers import LAYER_CLASSES, TARGETS, model_key

logger = logging.getLogger(__name__)

PREDICTION_COLUMNS = (
    "layer_name",
    "layer_type",
    "layer_class",
    "count",
    "power_prediction",
    "runtime_prediction",
)
SUMMARY_COLUMNS = (
    "network",
    "layers_predicted",
    "layers_other",
    "total_runtime_ms",
    "avg_power_w",
    "energy_mj",
)


class Estimator(Protocol):
    def predict(self, X: pd.DataFrame) -> Any: ...


def as_layer_descriptions(layers: pd.DataFrame) -> pd.DataFrame:
    """Layers to predict in the ``layer_descriptions`` schema: missing optional columns get
    their defaults, array cells (parquet, JSON, a served model's input) become lists."""
    missing = [c for c in ("layer_name", "input_dims", "output_dims") if c not in layers]
    if missing:
        raise ValueError(
            f"the layers to predict lack column(s) {missing}; expected layer_descriptions rows "
            "(power_modelling.core.engines.describe_layers)"
        )
    defaults = {"layer_type": "Unknown", "groups": 1, "count": 1, "adaptive": False}
    frame = layers.reset_index(drop=True).copy()
    for column in DESCRIPTION_COLUMNS:
        if column not in frame:
            frame[column] = defaults.get(column)
    for column in ("groups", "count"):
        frame[column] = frame[column].fillna(defaults[column]).astype("int64")
    for column in ("input_dims", "output_dims", "kernel", "pre_padding", "post_padding"):
        frame[column] = _as_lists(frame[column])
    return frame


def _as_lists(cells: pd.Series) -> pd.Series:
    """Sequence cells as lists, anything else ``None``; a column that is so already (what the
    engine reader gives) is kept as it is, without a pass per cell."""
    if set(map(type, cells.to_numpy(dtype=object))) <= {list, type(None)}:
        return cells.astype(object)
    return cells.map(lambda v: list(v) if isinstance(v, list | tuple | np.ndarray) else None)


def predict_targets(
    features: pd.DataFrame, models: Mapping[str, Estimator], layer_class: str
) -> pd.DataFrame:
    """``power_prediction`` (W, dynamic) and ``runtime_prediction`` (ms) of one layer class.

    Negative outputs (an extrapolating linear model) are not physical: they are clipped to 0
    and the number clipped is logged.
    """
    predictions = {}
    for target in TARGETS:
        key = model_key(layer_class, target)
        if key not in models:
            raise KeyError(f"no fitted model '{key}' (expected one per layer class and target)")
        values = np.asarray(models[key].predict(features), dtype=float).reshape(-1)
        if len(values) != len(features):
            raise ValueError(
                f"model '{key}' returned {len(values)} values for {len(features)} rows"
            )
        negative = int((values < 0).sum())
        if negative:
            logger.warning("%s: %d negative predictions clipped to 0", key, negative)
        predictions[f"{target}_prediction"] = np.clip(values, 0.0, None)
    return pd.DataFrame(predictions, index=features.index)


def predict_layers(
    descriptions: pd.DataFrame,
    models: Mapping[str, Estimator],
    idle_power_w: float | None = None,
) -> pd.DataFrame:
    """Per-layer predictions, one row per description row, ``other`` included.

    Columns: ``network`` (when the descriptions have one: rows of many networks are predicted
    in one call), ``layer_name, layer_type`` (raw), ``layer_class``, ``count``,
    ``power_prediction`` (dynamic W), ``runtime_prediction`` (ms per execution), and
    ``power_total_prediction`` (= dynamic + idle) when ``idle_power_w`` is known. Layers of
    class ``other`` keep empty (NaN) predictions.
    """
    features = build_features(descriptions).reset_index(drop=True)
    if len(features) != len(descriptions):
        raise ValueError(
            f"build_features returned {len(features)} rows for {len(descriptions)} layers"
        )
    identity = ["layer_name", "layer_type", "layer_class", "count"]
    if "network" in descriptions.columns:
        identity.insert(0, "network")
        features["network"] = descriptions["network"].to_numpy()
    table = features[identity].copy()
    table["count"] = table["count"].astype("int64")
    table["power_prediction"] = np.nan
    table["runtime_prediction"] = np.nan
    for layer_class in LAYER_CLASSES:
        rows = features.index[features["layer_class"] == layer_class]
        if len(rows):
            predicted = predict_targets(features.loc[rows], models, layer_class)
            table.loc[rows, predicted.columns] = predicted
    return with_idle_power(table, idle_power_w)


def idle_power_watts(idle_power: Mapping[str, Any] | None) -> float | None:
    """Watts from the ``device_idle_power`` dataset (``avg_idle_power_uw``); ``None`` if
    unknown."""
    if not idle_power or idle_power.get("avg_idle_power_uw") is None:
        return None
    return float(idle_power["avg_idle_power_uw"]) / 1e6


def with_idle_power(predictions: pd.DataFrame, idle_power_w: float | None) -> pd.DataFrame:
    """Add (or replace) ``power_total_prediction`` when the device's idle power is known."""
    if idle_power_w is None:
        return predictions
    predictions = predictions.copy()
    predictions["power_total_prediction"] = predictions["power_prediction"] + float(idle_power_w)
    return predictions


def summarise_networks(predictions: pd.DataFrame) -> pd.DataFrame:
    """One row per ``network``: count-weighted runtime and energy of its modelled layers.

    ``total_runtime_ms`` = Σ count·runtime, ``energy_mj`` = Σ count·power·runtime (W·ms = mJ),
    ``avg_power_w`` = energy / runtime; ``layers_*`` count layer instances (Σ count). One
    vectorised group-by, however many networks.
    """
    modelled = predictions["runtime_prediction"].notna() & predictions["power_prediction"].notna()
    count = predictions["count"].astype(float)
    parts = pd.DataFrame(
        {
            "network": predictions["network"].to_numpy(),
            "layers_predicted": count.where(modelled, 0.0),
            "layers_other": count.where(~modelled, 0.0),
            "total_runtime_ms": (count * predictions["runtime_prediction"]).where(modelled, 0.0),
            "energy_mj": (
                count * predictions["power_prediction"] * predictions["runtime_prediction"]
            ).where(modelled, 0.0),
        }
    )
    summary = parts.groupby("network", sort=False).sum().reset_index()
    runtime = summary["total_runtime_ms"]
    summary["avg_power_w"] = (summary["energy_mj"] / runtime).where(runtime > 0)
    for column in ("layers_predicted", "layers_other"):
        summary[column] = summary[column].astype("int64")
    return summary[list(SUMMARY_COLUMNS)]


def summarise(predictions: pd.DataFrame, network: str) -> dict[str, Any]:
    """The whole-network row of one network's predictions (see ``summarise_networks``)."""
    return summarise_networks(predictions.assign(network=network)).iloc[0].to_dict()


def log_summary(row: Mapping[str, Any], idle_power_w: float | None = None) -> None:
    """Log one network's figures like the reference tool does."""
    total = (
        f" ({row['avg_power_w'] + idle_power_w:.3f} W with idle)"
        if idle_power_w is not None
        else ""
    )
    logger.info(
        "%s: Total runtime: %.4f ms | Average power consumed: %.3f W above idle%s | "
        "Total energy: %.4f mJ  (%d layers predicted, %d other)",
        row["network"],
        row["total_runtime_ms"],
        row["avg_power_w"],
        total,
        row["energy_mj"],
        row["layers_predicted"],
        row["layers_other"],
    )
