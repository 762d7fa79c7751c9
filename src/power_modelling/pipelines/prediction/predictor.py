"""Per-layer and whole-network predictions from the six fitted models.

One place turns ``layer_descriptions`` rows (``describe_layers``) into predictions: the
``prediction`` pipeline, the served MLflow model and the network-level evaluation all call
``predict_layers`` / ``predict_targets``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from power_modelling.pipelines.feature_engineering.features import LAYER_CLASSES, build_features

logger = logging.getLogger(__name__)

TARGETS = ("power", "runtime")
OTHER = "other"
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


def model_key(layer_class: str, target: str) -> str:
    """``convolutional_power``: the file stem in ``data/06_models`` and the key of ``models``."""
    return f"{layer_class}_{target}"


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
    """Per-layer predictions of one network, one row per description row, ``other`` included.

    Columns: ``layer_name, layer_type`` (raw), ``layer_class``, ``count``,
    ``power_prediction`` (dynamic W), ``runtime_prediction`` (ms per execution), and
    ``power_total_prediction`` (= dynamic + idle) when ``idle_power_w`` is known. Layers of
    class ``other`` keep empty (NaN) predictions.
    """
    features = build_features(descriptions).reset_index(drop=True)
    if len(features) != len(descriptions):
        raise ValueError(
            f"build_features returned {len(features)} rows for {len(descriptions)} layers"
        )
    table = features[["layer_name", "layer_type", "layer_class", "count"]].copy()
    table["count"] = table["count"].astype("int64")
    table["power_prediction"] = np.nan
    table["runtime_prediction"] = np.nan
    for layer_class in LAYER_CLASSES:
        rows = features.index[features["layer_class"] == layer_class]
        if len(rows):
            predicted = predict_targets(features.loc[rows], models, layer_class)
            table.loc[rows, predicted.columns] = predicted
    return with_idle_power(table, idle_power_w)


def with_idle_power(predictions: pd.DataFrame, idle_power_w: float | None) -> pd.DataFrame:
    """Add (or replace) ``power_total_prediction`` when the device's idle power is known."""
    if idle_power_w is None:
        return predictions
    predictions = predictions.copy()
    predictions["power_total_prediction"] = predictions["power_prediction"] + float(idle_power_w)
    return predictions


def summarise(predictions: pd.DataFrame, network: str) -> dict[str, Any]:
    """The whole-network row: count-weighted runtime and energy of the modelled layers.

    ``total_runtime_ms`` = Σ count·runtime, ``energy_mj`` = Σ count·power·runtime (W·ms = mJ),
    ``avg_power_w`` = energy / runtime; ``layers_*`` count layer instances (Σ count).
    """
    modelled = predictions["runtime_prediction"].notna() & predictions["power_prediction"].notna()
    count = predictions["count"].astype(float)
    runtime = float((count * predictions["runtime_prediction"])[modelled].sum())
    energy = float(
        (count * predictions["power_prediction"] * predictions["runtime_prediction"])[
            modelled
        ].sum()
    )
    return {
        "network": network,
        "layers_predicted": int(count[modelled].sum()),
        "layers_other": int(count[~modelled].sum()),
        "total_runtime_ms": runtime,
        "avg_power_w": energy / runtime if runtime > 0 else float("nan"),
        "energy_mj": energy,
    }


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


# --- where the models come from ------------------------------------------------------------


class LocalModels:
    """The six fitted estimators (``{layer_class}_{target}`` → estimator)."""

    def __init__(self, models: Mapping[str, Estimator]):
        self.models = dict(models)

    def predict(self, descriptions: pd.DataFrame) -> pd.DataFrame:
        return predict_layers(descriptions, self.models)


class MlflowPredictor:
    """A logged prediction model (``pipeline_ml_factory``), loaded with ``mlflow.pyfunc``."""

    def __init__(self, model_uri: str):
        import mlflow  # noqa: PLC0415 (only when a URI is configured)

        logger.info("Loading the prediction model from MLflow: %s", model_uri)
        self.model_uri = model_uri
        self._model = mlflow.pyfunc.load_model(model_uri)

    def predict(self, descriptions: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(self._model.predict(descriptions))


def load_local_models(models_dir: str | Path) -> dict[str, Estimator]:
    """Read ``<models_dir>/<layer_class>_<target>.pkl`` (pickle or joblib; a versioned
    dataset folder gives its newest version)."""
    import joblib  # noqa: PLC0415 (reads plain pickles too)

    models_dir = Path(models_dir)
    models, missing = {}, []
    for layer_class in LAYER_CLASSES:
        for target in TARGETS:
            key = model_key(layer_class, target)
            path = models_dir / f"{key}.pkl"
            if path.is_dir():  # Kedro versioned dataset: <name>.pkl/<version>/<name>.pkl
                versions = sorted(path.glob(f"*/{key}.pkl"))
                path = versions[-1] if versions else path
            if not path.is_file():
                missing.append(str(path))
                continue
            models[key] = joblib.load(path)
    if missing:
        raise FileNotFoundError(
            "fitted models not found: "
            + ", ".join(missing)
            + " — run `kedro run` (or `kedro run --pipelines modelling`) first, or set "
            "`prediction.model_uri` to a logged MLflow model"
        )
    return models
