"""Nodes of ``network_evaluation``: the test CNNs through the shared inference, then
network-level accuracy against their measurements."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from power_modelling.core.evaluation import interval_coverage, network_accuracy
from power_modelling.core.features import precision_of
from power_modelling.core.layers import LAYER_CLASSES, REPORTED_TARGETS
from power_modelling.core.predictor import idle_power_watts

logger = logging.getLogger(__name__)

Partitions = Mapping[str, Callable[[], pd.DataFrame]]


def device_idle_power(
    device: Mapping[str, Any], layer_descriptions: Partitions, *training_tables: pd.DataFrame
) -> dict[str, Any]:
    """The measured device as the models need it wherever they go (prediction, the served
    model): its name and kind, the precisions and batch sizes it was measured at, and its idle
    power. Every training row holds ``power_total - power`` = idle power exactly, so the idle
    power travels with the models instead of being a free input."""
    precisions, batch_sizes = set(), set()
    for model in sorted(layer_descriptions):
        layers = layer_descriptions[model]()
        if (precision := precision_of(layers)) is not None:
            precisions.add(precision)
        batch_sizes.update(int(dims[0]) for dims in layers["input_dims"].dropna() if len(dims))
    identity = {
        "device": {"name": device.get("name"), "kind": device.get("kind")},
        "precisions": sorted(precisions),
        "batch_sizes": sorted(batch_sizes),
    }
    rows = pd.concat([t[["power_total", "power"]] for t in training_tables], ignore_index=True)
    idle_w = (rows["power_total"] - rows["power"]).dropna()
    if idle_w.empty:
        logger.warning("No training row has power: the idle power of the device is unknown")
        return {"avg_idle_power_uw": None, "source": "training tables (no power rows)", **identity}
    return {
        "avg_idle_power_uw": float(idle_w.median()) * 1e6,
        "source": "training tables",
        **identity,
    }


def fit_applicability_domain(*training_tables: pd.DataFrame) -> dict[str, Any]:
    """What the training set covered, per layer class (feature ranges, categories seen such
    as batch sizes and pooling types, a nearest-neighbour distance scale calibrated by
    leave-one-CNN-out): every prediction is checked against it (``in_domain``). The tables
    come in the order of ``LAYER_CLASSES``."""
    from power_modelling.core.domain import fit_domain  # noqa: PLC0415

    table = pd.concat(
        [
            t.assign(layer_class=layer_class)
            for layer_class, t in zip(LAYER_CLASSES, training_tables, strict=True)
            if not t.empty
        ],
        ignore_index=True,
    )
    return fit_domain(table, table["model"].astype(str))


def collect_interval_calibrations(**cv_reports: Mapping[str, Any]) -> dict[str, Any]:
    """``{layer_class: {target: calibration}}`` from the grouped-CV reports
    (``<layer_class>_<target>``): the chosen estimators' out-of-fold residuals, from which the
    inference makes 90 % conformal intervals."""
    calibrations: dict[str, Any] = {}
    for key, report in cv_reports.items():
        layer_class, target = key.rsplit("_", 1)
        calibrations.setdefault(layer_class, {})[target] = report["calibration"]
    return calibrations


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
    section = network_accuracy(
        test_tables, layer_predictions, run_metadata, idle_power_watts(idle_power)
    )
    coverage = interval_coverage(test_tables, layer_predictions)
    if coverage:
        section["interval_coverage"] = coverage
        logger.info(
            "90 %% intervals on the test layers cover: %s",
            "; ".join(
                f"{cls} runtime {c['runtime']['coverage']:.0%}, power {c['power']['coverage']:.0%}"
                for cls, c in coverage.items()
            ),
        )
    return section


def build_model_card(
    *,
    data_version: Mapping[str, Any],
    test_models: Mapping[str, Any],
    device: Mapping[str, Any],
    network_metrics: Mapping[str, Any],
    **tables_and_metrics: Any,
) -> dict[str, Any]:
    """``model_card.json``: what the models beside it are and how good they are: raw dataset
    and its version, device, precision and batch sizes of the training networks, layer counts,
    chosen estimators with their grouped-CV and test RMSPE, network accuracy, date.

    Keyword arguments: ``<layer_class>_train`` / ``_test`` tables and ``<layer_class>_metrics``.
    """
    layers_per_class, figures = {}, {}
    for layer_class in LAYER_CLASSES:
        train, test = (
            tables_and_metrics[f"{layer_class}_train"],
            tables_and_metrics[f"{layer_class}_test"],
        )
        layers_per_class[layer_class] = {"train": len(train), "test": len(test)}
        metrics = tables_and_metrics[f"{layer_class}_metrics"]
        figures[layer_class] = {
            target: {
                key: metrics[target].get(key)
                for key in ("estimator", "cv_rmspe", "rmspe", "within_10pct")
            }
            for target in REPORTED_TARGETS
            if target in metrics
        }
    return {
        "raw_dataset": data_version.get("raw_dataset"),
        "raw_dataset_version": {k: v for k, v in data_version.items() if k != "raw_dataset"},
        "device": device.get("device"),
        "precisions": device.get("precisions"),
        "batch_sizes": device.get("batch_sizes"),
        "idle_power_w": idle_power_watts(device),
        "test_models": list(test_models["test_models"]),
        "test_models_chosen_by": test_models.get("chosen_by"),
        "layers": layers_per_class,
        "metrics": figures,
        "network_accuracy": dict(network_metrics.get("mean", {})),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
