"""``kedro run --pipelines network_evaluation``: the saved models on the held-out test CNNs.

``select_test_layers`` → the shared inference template (joined by the registry, under the
names ``evaluation_layers`` / ``evaluation_layer_predictions``) → ``evaluate_networks``.
"""

from kedro.pipeline import Node, Pipeline

from power_modelling.core.layers import LAYER_CLASSES, TARGETS
from power_modelling.pipelines.network_evaluation.nodes import (
    build_model_card,
    collect_interval_calibrations,
    device_idle_power,
    evaluate_networks,
    fit_applicability_domain,
    select_test_layers,
)
from power_modelling.quiet import dotted_dataset_names

#: The inference template's input and output under this pipeline's names.
EVALUATION_DATASETS = {
    "prediction_layers": "evaluation_layers",
    "layer_predictions": "evaluation_layer_predictions",
}


def create_pipeline(**kwargs) -> Pipeline:
    """Network evaluation's own nodes (idle power, test layers, accuracy)."""
    with dotted_dataset_names():
        test_tables = {
            layer_class: f"{layer_class}.model_input_test" for layer_class in LAYER_CLASSES
        }
        return Pipeline(
            [
                Node(
                    device_idle_power,
                    inputs=[
                        "device_info",
                        "layer_descriptions",
                        *(f"{layer_class}.model_input_train" for layer_class in LAYER_CLASSES),
                    ],
                    outputs="device_idle_power",
                    name="device_idle_power",
                ),
                Node(
                    fit_applicability_domain,
                    inputs=[f"{layer_class}.model_input_train" for layer_class in LAYER_CLASSES],
                    outputs="applicability_domain",
                    name="fit_applicability_domain",
                ),
                Node(
                    collect_interval_calibrations,
                    inputs={
                        f"{layer_class}_{target}": f"{layer_class}.{target}_cv"
                        for layer_class in LAYER_CLASSES
                        for target in TARGETS
                    },
                    outputs="prediction_intervals",
                    name="collect_interval_calibrations",
                ),
                Node(
                    select_test_layers,
                    inputs=["layer_descriptions", *test_tables.values()],
                    outputs="evaluation_layers",
                    name="select_test_layers",
                ),
                Node(
                    evaluate_networks,
                    inputs={
                        "layer_predictions": "evaluation_layer_predictions",
                        "run_metadata": "run_metadata",
                        "idle_power": "idle_power",
                        **test_tables,
                    },
                    outputs="network_metrics",
                    name="evaluate_networks",
                ),
                Node(
                    build_model_card,
                    inputs={
                        "data_version": "ingested_data_version",
                        "test_models": "test_models",
                        "device": "device_idle_power",
                        "network_metrics": "network_metrics",
                        **{f"{c}_train": f"{c}.model_input_train" for c in LAYER_CLASSES},
                        **{f"{c}_test": f"{c}.model_input_test" for c in LAYER_CLASSES},
                        **{f"{c}_metrics": f"{c}.metrics" for c in LAYER_CLASSES},
                    },
                    outputs="model_card",
                    name="build_model_card",
                ),
            ]
        )
