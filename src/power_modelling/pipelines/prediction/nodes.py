"""Nodes of the ``prediction`` and ``network_evaluation`` pipelines and of the served model."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from power_modelling.pipelines.ingestion.engine_info import DESCRIPTION_COLUMNS
from power_modelling.pipelines.prediction.engines import load_engines
from power_modelling.pipelines.prediction.evaluation import network_accuracy
from power_modelling.pipelines.prediction.predictor import (
    SUMMARY_COLUMNS,
    Estimator,
    LocalModels,
    MlflowPredictor,
    load_local_models,
    log_summary,
    predict_layers,
    summarise,
    with_idle_power,
)
from power_modelling.project import from_project_root

logger = logging.getLogger(__name__)

#: ``evaluate_networks`` takes ``<layer_class>_test`` tables beside the fitted models.
TEST_SUFFIX = "_test"


def idle_power_watts(idle_power: Mapping[str, Any] | None) -> float | None:
    """Watts from the ``idle_power`` dataset (``avg_idle_power_uw``); ``None`` if unknown."""
    if not idle_power or idle_power.get("avg_idle_power_uw") is None:
        return None
    return float(idle_power["avg_idle_power_uw"]) / 1e6


def device_idle_power(*training_tables: pd.DataFrame) -> dict[str, Any]:
    """The measured device's idle power, as the served model needs it: every training row
    holds ``power_total - power`` = idle power exactly, so it travels with the models
    (``data/06_models/device_idle_power.json``) instead of being a free input."""
    rows = pd.concat([t[["power_total", "power"]] for t in training_tables], ignore_index=True)
    idle_w = (rows["power_total"] - rows["power"]).dropna()
    if idle_w.empty:
        logger.warning("No training row has power: the idle power of the device is unknown")
        return {"avg_idle_power_uw": None, "source": "training tables (no power rows)"}
    return {"avg_idle_power_uw": float(idle_w.median()) * 1e6, "source": "training tables"}


def _configured_idle_power(options: Mapping[str, Any]) -> float | None:
    """``idle_power_w`` when given, else the measured device's ``idle_power.json`` if present."""
    if options.get("idle_power_w") is not None:
        return float(options["idle_power_w"])
    if not options.get("idle_power_path"):
        logger.info("Idle power unknown (no idle_power_path): no power_total_prediction column")
        return None
    path = from_project_root(options["idle_power_path"])
    if path.is_file():
        return idle_power_watts(json.loads(path.read_text()))
    logger.info("Idle power unknown (no %s): no power_total_prediction column", path)
    return None


def _predictor(options: Mapping[str, Any]) -> LocalModels | MlflowPredictor:
    """The logged MLflow model when ``model_uri`` is set, else the models in ``models_dir``."""
    if options.get("model_uri"):
        return MlflowPredictor(options["model_uri"])
    models_dir = from_project_root(options["models_dir"])
    logger.info("Loading the fitted models from %s", models_dir)
    return LocalModels(load_local_models(models_dir))


def read_engines(
    engines: Mapping[str, Callable[[], str]], predict_dataset: str
) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """Engine files of ``data/01_raw/<predict_dataset>`` → layer descriptions per network,
    and the unreadable ones with their error."""
    return load_engines(engines, f"data/01_raw/{predict_dataset}")


def predict_networks(
    descriptions: Mapping[str, pd.DataFrame],
    input_errors: Mapping[str, str],
    options: Mapping[str, Any],
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame, dict[str, Any]]:
    """Per-layer predictions and the summary row of every network; a network that fails is
    reported (log and data-quality section) and the others are still predicted.

    Returns ``({network: predictions}, summary, data_quality)``.
    """
    idle_power_w = _configured_idle_power(options)
    predictor = _predictor(options) if descriptions else None  # none readable: raised below
    predictions, rows = {}, []
    errors = dict(input_errors)
    for network, layers in descriptions.items():
        try:
            table = with_idle_power(predictor.predict(layers), idle_power_w)
        except (ValueError, KeyError) as exc:
            errors[network] = f"prediction failed: {exc}"
            logger.error("Skipping %s: %s", network, errors[network])
            continue
        predictions[network] = table
        rows.append(summarise(table, network))
        log_summary(rows[-1], idle_power_w)
    if not predictions:
        raise ValueError(
            "no network could be predicted:\n" + "\n".join(f"- {e}" for e in errors.values())
        )
    if errors:
        logger.error(
            "%d of %d engine file(s) not predicted: %s",
            len(errors),
            len(errors) + len(predictions),
            "; ".join(errors.values()),
        )
    summary = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    quality = {
        "networks_predicted": len(predictions),
        "networks_failed": len(errors),
        "errors": errors,
        "idle_power_w": idle_power_w,
    }
    return predictions, summary, quality


def as_layer_descriptions(layers: pd.DataFrame) -> pd.DataFrame:
    """The served model's input in the ``layer_descriptions`` schema: missing optional columns
    get their defaults, array cells (parquet, JSON) become lists."""
    missing = [c for c in ("layer_name", "input_dims", "output_dims") if c not in layers]
    if missing:
        raise ValueError(
            f"the layers to predict lack column(s) {missing}; expected layer_descriptions rows "
            "(power_modelling.pipelines.ingestion.engine_info.describe_layers)"
        )
    defaults = {"layer_type": "Unknown", "groups": 1, "count": 1, "adaptive": False}
    frame = layers.reset_index(drop=True).copy()
    for column in DESCRIPTION_COLUMNS:
        if column not in frame:
            frame[column] = defaults.get(column)
    for column in ("groups", "count"):
        frame[column] = frame[column].fillna(defaults[column]).astype("int64")
    for column in ("input_dims", "output_dims", "kernel", "pre_padding", "post_padding"):
        frame[column] = frame[column].map(
            lambda v: list(v) if isinstance(v, list | tuple | np.ndarray) else None
        )
    return frame


def serve_predictions(
    layers: pd.DataFrame, idle_power: Mapping[str, Any] | None, **models: Estimator
) -> pd.DataFrame:
    """The served model: layer descriptions of one network → per-layer predictions."""
    return predict_layers(as_layer_descriptions(layers), models, idle_power_watts(idle_power))


def evaluate_networks(
    run_metadata: Mapping[str, Callable[[], dict]],
    idle_power: Mapping[str, Any] | None,
    **tables_and_models: pd.DataFrame | Estimator,
) -> dict[str, Any]:
    """Network-level accuracy of the fitted models on the held-out test CNNs: keyword
    arguments ``<layer_class>_test`` are the test tables, the others the fitted models."""
    tables = {
        key.removesuffix(TEST_SUFFIX): value
        for key, value in tables_and_models.items()
        if key.endswith(TEST_SUFFIX)
    }
    models = {k: v for k, v in tables_and_models.items() if not k.endswith(TEST_SUFFIX)}
    return network_accuracy(tables, models, run_metadata, idle_power_watts(idle_power))
