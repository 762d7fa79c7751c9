"""``prediction`` (engine files → per-layer and per-network predictions), the served model's
inference pipeline and ``network_evaluation`` (network-level accuracy on the test CNNs)."""

import warnings

from kedro.pipeline import Node, Pipeline

from power_modelling.pipelines.prediction.nodes import (
    TEST_SUFFIX,
    device_idle_power,
    evaluate_networks,
    predict_networks,
    read_engines,
    serve_predictions,
)
from power_modelling.pipelines.prediction.predictor import LAYER_CLASSES, TARGETS, model_key

#: Catalog name of a fitted model written by the modelling pipeline (data/06_models).
MODEL_DATASET = "{layer_class}.{target}_model"
#: The served model's input (layer_descriptions rows) and output (per-layer predictions).
SERVING_INPUT = "prediction_layers"
SERVING_OUTPUT = "layer_predictions"


def model_datasets() -> dict[str, str]:
    """``{convolutional_power: <catalog name>, ...}`` for the six fitted models."""
    return {
        model_key(layer_class, target): MODEL_DATASET.format(layer_class=layer_class, target=target)
        for layer_class in LAYER_CLASSES
        for target in TARGETS
    }


def create_pipeline(**kwargs) -> Pipeline:
    """``kedro run --pipelines prediction [--params predict_dataset=<folder>]``."""
    return Pipeline(
        [
            Node(
                read_engines,
                inputs=["prediction_engines", "params:predict_dataset"],
                outputs=["prediction_layer_descriptions", "prediction_input_errors"],
                name="read_engine_descriptions",
            ),
            Node(
                predict_networks,
                inputs=[
                    "prediction_layer_descriptions",
                    "prediction_input_errors",
                    "params:prediction",
                ],
                outputs=["predictions", "prediction_summary", "prediction_data_quality"],
                name="predict_networks",
            ),
        ]
    )


def _models_node(func, inputs: dict[str, str], outputs: str, name: str) -> Node:
    """A node reading the six models of the modelling namespaces (``convolutional.power_model``,
    ...): those dotted names are deliberate, so Kedro's warning about dots is silenced here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*dataset names contain '.' characters")
        return Node(func, inputs={**inputs, **model_datasets()}, outputs=outputs, name=name)


def create_serving_pipeline() -> Pipeline:
    """What the logged MLflow model runs: layer descriptions → per-layer predictions."""
    return Pipeline(
        [
            _models_node(
                serve_predictions,
                inputs={"layers": SERVING_INPUT, "idle_power": "device_idle_power"},
                outputs=SERVING_OUTPUT,
                name="serve_predictions",
            )
        ]
    )


def create_network_evaluation_pipeline() -> Pipeline:
    """Network-level accuracy on the held-out test CNNs → ``metrics.json`` section ``network``,
    and the device's idle power saved beside the models for the served model."""
    return Pipeline(
        [
            Node(
                device_idle_power,
                inputs=[f"{layer_class}.model_input_train" for layer_class in LAYER_CLASSES],
                outputs="device_idle_power",
                name="device_idle_power",
            ),
            _models_node(
                evaluate_networks,
                inputs={
                    **{
                        f"{layer_class}{TEST_SUFFIX}": f"{layer_class}.model_input_test"
                        for layer_class in LAYER_CLASSES
                    },
                    "run_metadata": "run_metadata",
                    "idle_power": "idle_power",
                },
                outputs="network_metrics",
                name="evaluate_networks",
            ),
        ]
    )
