"""Nodes of ``network_evaluation``: the test CNNs through the shared inference, then
network-level accuracy against their measurements."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from power_modelling.core.evaluation import network_accuracy
from power_modelling.core.predictor import idle_power_watts

logger = logging.getLogger(__name__)

Partitions = Mapping[str, Callable[[], pd.DataFrame]]


def device_idle_power(*training_tables: pd.DataFrame) -> dict[str, Any]:
    """The measured device's idle power, as the served model needs it: every training row
    holds ``power_total - power`` = idle power exactly, so it travels with the models
    (``device_idle_power``) instead of being a free input."""
    rows = pd.concat([t[["power_total", "power"]] for t in training_tables], ignore_index=True)
    idle_w = (rows["power_total"] - rows["power"]).dropna()
    if idle_w.empty:
        logger.warning("No training row has power: the idle power of the device is unknown")
        return {"avg_idle_power_uw": None, "source": "training tables (no power rows)"}
    return {"avg_idle_power_uw": float(idle_w.median()) * 1e6, "source": "training tables"}


def select_test_layers(layer_descriptions: Partitions, *test_tables: pd.DataFrame) -> pd.DataFrame:
    """The layer descriptions of the held-out test CNNs (those of the test tables), one table
    with a ``network`` column: the inference's input for the network-level evaluation."""
    test_models = sorted({str(m) for table in test_tables for m in table["model"].unique()})
    missing = [model for model in test_models if model not in layer_descriptions]
    if missing:
        raise ValueError(
            f"layer_descriptions has no partition for test model(s) {missing}: run the "
            "ingestion pipeline on the dataset the feature tables were built from"
        )
    if not test_models:
        raise ValueError("the test tables are empty: no test CNN to evaluate the networks on")
    return pd.concat(
        [layer_descriptions[model]().assign(network=model) for model in test_models],
        ignore_index=True,
    )


def evaluate_networks(
    layer_predictions: pd.DataFrame,
    run_metadata: Mapping[str, Callable[[], dict]],
    idle_power: Mapping[str, Any] | None,
    **test_tables: pd.DataFrame,
) -> dict[str, Any]:
    """Network-level accuracy of the predictions on the held-out test CNNs; keyword arguments
    are the ``<layer_class>`` test tables (measured per-layer power and runtime)."""
    return network_accuracy(
        test_tables, layer_predictions, run_metadata, idle_power_watts(idle_power)
    )
