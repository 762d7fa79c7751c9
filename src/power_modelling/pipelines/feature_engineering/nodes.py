"""Feature engineering nodes: features per layer, measured targets per layer, tables, split.

Classification and features (``features.build_features``) see descriptions only; the
measurement targets are aggregated separately and joined on ``(model, layer_name)``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from power_modelling.core.features import FEATURE_COLUMNS, build_features
from power_modelling.core.layers import LAYER_CLASSES, OTHER
from power_modelling.core.mapping import (
    LAYERWISE_COLUMNS,
    POWER_EXCLUDING_IDLE,
    POWER_INCLUDING_IDLE,
)
from power_modelling.core.splits import resolve_test_models

logger = logging.getLogger(__name__)

MICRO = 1e-6

IDENTIFIER_COLUMNS = ["model", "layer_name", "layer_type", "layer_class", "count"]
TARGET_COLUMNS = [
    "power",
    "power_total",
    "runtime",
    "power_std",
    "runtime_std",
    "n_power_samples",
    "n_power_cycles",
    "n_cycles",
    "power_excluded",
]

Partitions = Mapping[str, Callable[[], pd.DataFrame] | pd.DataFrame]


def build_layer_features(layer_descriptions: Partitions) -> pd.DataFrame:
    """All models' layer descriptions with their features, one row per layer, ``model`` first."""
    frames = [
        _load(loader).assign(model=model) for model, loader in sorted(layer_descriptions.items())
    ]
    if not frames:
        raise ValueError("layer_descriptions has no partitions: run the ingestion pipeline first")
    descriptions = pd.concat(frames, ignore_index=True)
    features = build_features(descriptions)
    logger.info("Built features of %d layers of %d models", len(features), len(frames))
    return features[["model", *[c for c in features.columns if c != "model"]]]


def aggregate_measurements(layerwise: Partitions) -> pd.DataFrame:
    """Per (model, layer): mean power (W) over the cycles that have power, mean runtime (ms),
    their spreads and how many cycles / power samples they rest on."""
    frames = []
    for model, loader in sorted(layerwise.items()):
        frames.append(_aggregate_model(_load(loader), model))
        logger.info("Aggregated the layer-wise measurements of %s", model)
    if not frames:
        raise ValueError("layerwise has no partitions: run the power_mapping pipeline first")
    return pd.concat(frames, ignore_index=True)


def _aggregate_model(layerwise: pd.DataFrame, model: str) -> pd.DataFrame:
    """Aggregate one model's per-cycle layer-wise table."""
    missing = [c for c in LAYERWISE_COLUMNS if c not in layerwise.columns]
    if missing:
        raise ValueError(
            f"layerwise partition '{model}': missing column(s) {missing}; "
            f"expected {list(LAYERWISE_COLUMNS)}"
        )
    power = layerwise[POWER_EXCLUDING_IDLE].astype("float64") * MICRO
    has_power = power.notna()
    if "n_samples" in layerwise.columns:
        samples = layerwise["n_samples"].fillna(0).where(has_power, 0)
    else:
        logger.warning("layerwise '%s' has no n_samples: counting cycles with power", model)
        samples = has_power.astype("int64")
    work = pd.DataFrame(
        {
            "layer_name": layerwise["layer_name"],
            "cycle": layerwise["cycle"],
            "power": power,
            "power_total": layerwise[POWER_INCLUDING_IDLE].astype("float64") * MICRO,
            "runtime": layerwise["layer_run_time"].astype("float64"),
            "samples": samples.astype("int64"),
        }
    )
    aggregated = work.groupby("layer_name", sort=False).agg(
        power=("power", "mean"),
        power_total=("power_total", "mean"),
        runtime=("runtime", "mean"),
        power_std=("power", "std"),
        runtime_std=("runtime", "std"),
        n_power_samples=("samples", "sum"),
        n_power_cycles=("power", "count"),
        n_cycles=("cycle", "nunique"),
    )
    return aggregated.reset_index().assign(model=model)


def assemble_feature_tables(
    features: pd.DataFrame, measurements: pd.DataFrame, min_power_samples: int
) -> dict[str, Any]:
    """One table per layer class (keyed by class), one row per measured (model, layer), and
    the quality report (key ``report``).

    A layer with fewer than ``min_power_samples`` power samples keeps its row (runtime stays
    usable) but its power targets are NaN and ``power_excluded`` is True.
    """
    _require_unique_layers(features, "layer_descriptions")
    _require_unique_layers(measurements, "layerwise")
    joined = features.merge(
        measurements, on=["model", "layer_name"], how="outer", indicator=True, validate="1:1"
    )
    measured = joined[joined["_merge"] == "both"].drop(columns="_merge").reset_index(drop=True)
    excluded = measured["n_power_samples"] < min_power_samples
    measured.loc[excluded, ["power", "power_total", "power_std"]] = np.nan
    measured["power_excluded"] = excluded.to_numpy()
    tables = {
        name: measured.loc[
            measured["layer_class"] == name,
            [*IDENTIFIER_COLUMNS, *FEATURE_COLUMNS[name], *TARGET_COLUMNS],
        ].reset_index(drop=True)
        for name in LAYER_CLASSES
    }
    report = _quality_report(joined, measured, tables)
    for name, table in tables.items():
        logger.info(
            "%s: %d layers of %d models (%d without power)",
            name,
            len(table),
            table["model"].nunique(),
            int(table["power_excluded"].sum()),
        )
    return {**tables, "report": report}


def choose_test_models(
    layer_features: pd.DataFrame, params: Mapping[str, Any], raw_dataset: str
) -> dict[str, Any]:
    """The CNNs held out for testing (``test_models``: names, comma-separated, or ``auto``),
    checked against the CNNs that were ingested, and logged."""
    available = sorted(layer_features["model"].astype(str).unique())
    names, how = resolve_test_models(
        params["test_models"], available, raw_dataset, params.get("test_models_by_dataset")
    )
    logger.info(
        "Held-out test CNNs (%s): %s; %d CNN(s) train",
        how,
        ", ".join(names),
        len(available) - len(names),
    )
    return {"test_models": names, "chosen_by": how, "raw_dataset": raw_dataset}


def split_train_test(
    table: pd.DataFrame, test_models: Mapping[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows of the held-out test CNNs are the test set, all others train (``model`` is the
    group column for grouped cross-validation)."""
    names = list(test_models["test_models"])
    is_test = table["model"].isin(names)
    train = table[~is_test].reset_index(drop=True)
    test = table[is_test].reset_index(drop=True)
    logger.info("Split %d rows: %d train, %d test", len(table), len(train), len(test))
    return train, test


def _quality_report(
    joined: pd.DataFrame, measured: pd.DataFrame, tables: dict[str, pd.DataFrame]
) -> dict[str, Any]:
    """``{model: {counts}}`` plus ``_tables``: rows per table, layers of class ``other`` per raw
    type, layers excluded from power training, descriptions and measurements left unmatched."""
    report: dict[str, Any] = {}
    for model, rows in joined.groupby("model", sort=True):
        kept = measured[measured["model"] == model]
        other = kept[kept["layer_class"] == OTHER]
        excluded = kept[kept["power_excluded"]]
        report[str(model)] = {
            **{name: int((kept["layer_class"] == name).sum()) for name in LAYER_CLASSES},
            OTHER: len(other),
            "other_by_type": {
                str(raw): int(n) for raw, n in other["layer_type"].value_counts().items()
            },
            "power_excluded": len(excluded),
            "power_excluded_layers": excluded["layer_name"].astype(str).tolist(),
            "described_not_measured": int((rows["_merge"] == "left_only").sum()),
            "measured_not_described": int((rows["_merge"] == "right_only").sum()),
        }
        unmatched = rows.loc[rows["_merge"] == "right_only", "layer_name"]
        if len(unmatched):
            logger.warning(
                "%s: %d measured layer(s) have no description and are dropped: %s",
                model,
                len(unmatched),
                unmatched.head(5).tolist(),
            )
    report["_tables"] = {
        name: {
            "rows": len(table),
            "models": int(table["model"].nunique()),
            "power_excluded": int(table["power_excluded"].sum()),
        }
        for name, table in tables.items()
    }
    return report


def _require_unique_layers(frame: pd.DataFrame, dataset: str) -> None:
    """One row per (model, layer_name), else a ValueError naming the first duplicates."""
    duplicated = frame.duplicated(["model", "layer_name"], keep=False)
    if duplicated.any():
        pairs = frame.loc[duplicated, ["model", "layer_name"]].drop_duplicates().head(5)
        raise ValueError(
            f"{dataset}: layer names must be unique per model, duplicated: "
            f"{list(pairs.itertuples(index=False, name=None))}"
        )


def _load(partition: Callable[[], pd.DataFrame] | pd.DataFrame) -> pd.DataFrame:
    """A partition's frame (PartitionedDataset hands over loader callables)."""
    return partition() if callable(partition) else partition
