"""The inference node: the one place where the fitted models meet layers to predict."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from power_modelling.core import predictor
from power_modelling.core.predictor import Estimator, idle_power_watts


def predict_layers(
    layers: pd.DataFrame,
    idle_power: Mapping[str, Any] | None,
    domain: Mapping[str, Any] | None = None,
    intervals: Mapping[str, Any] | None = None,
    **models: Estimator,
) -> pd.DataFrame:
    """Layer descriptions (of one or many networks, ``network`` column) → per-layer
    predictions with their applicability domain and 90 % intervals, for the ``prediction``
    pipeline, the served MLflow model and the network evaluation alike. Keyword arguments are
    the six fitted models (``convolutional_power``...)."""
    return predictor.predict_layers(
        predictor.as_layer_descriptions(layers),
        models,
        idle_power_watts(idle_power),
        domain=domain,
        calibrations=intervals,
    )
