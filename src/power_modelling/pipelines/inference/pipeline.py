"""The inference template (the kedro-mlflow tutorial's shared "inference" nodes).

``prediction`` feeds it the networks to predict, ``network_evaluation`` the held-out test
CNNs (``pipeline(..., inputs=..., outputs=...)`` renames its two free datasets), and
``serving.py`` is the served MLflow model built from it. Its other inputs, the six fitted
models and the device's idle power, are catalog datasets: where they come from (the local
``data/06_models`` or an MLflow run) is configuration, not code.
"""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from power_modelling.core.layers import LAYER_CLASSES, TARGETS, model_key
from power_modelling.pipelines.inference.nodes import predict_layers
from power_modelling.quiet import dotted_dataset_names

#: The free input (layer descriptions, ``network`` column optional) and output of the template.
LAYERS = "prediction_layers"
PREDICTIONS = "layer_predictions"
#: The model set's JSON datasets the inference reads beside the six models.
JSON_INPUTS = ("device_idle_power", "applicability_domain", "prediction_intervals")
#: Catalog name of a fitted model written by the modelling pipeline.
MODEL_DATASET = "{layer_class}.{target}_model"


def model_datasets() -> dict[str, str]:
    """``{convolutional_power: "convolutional.power_model", ...}`` for the six fitted models."""
    return {
        model_key(layer_class, target): MODEL_DATASET.format(layer_class=layer_class, target=target)
        for layer_class in LAYER_CLASSES
        for target in TARGETS
    }


def create_pipeline(**kwargs) -> Pipeline:
    """``prediction_layers`` + the model set (six models, ``device_idle_power``,
    ``applicability_domain``, ``prediction_intervals``) → ``layer_predictions``."""
    with dotted_dataset_names():
        idle_power, domain, intervals = JSON_INPUTS
        inputs = {
            "layers": LAYERS,
            "idle_power": idle_power,
            "domain": domain,
            "intervals": intervals,
            **model_datasets(),
        }
        return Pipeline(
            [Node(predict_layers, inputs, PREDICTIONS, name="predict_layers", tags={"inference"})]
        )
