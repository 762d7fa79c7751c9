"""The modelling template, instantiated once per layer class with ``namespace=<layer_class>``.

Inside the template, datasets and parameters have short names (``model_input_train``,
``params:power``, ...); the namespace turns them into ``convolutional.model_input_train``,
``params:convolutional.power``, ... so all layer-class differences live in
``conf/base/parameters_modelling.yml``. The shared ``params:evaluation`` is mapped in
unchanged. Outside the namespaces (they need every layer class at once): the device constants
and the leave-one-CNN-out evaluation (``params:loco``).
"""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from power_modelling.core.layers import LAYER_CLASSES, REPORTED_TARGETS, TARGETS
from power_modelling.pipelines.modelling.nodes import (
    cross_validate_candidates,
    estimate_device_constants,
    evaluate_leave_one_cnn_out,
    fit_baseline_model,
    fit_selected_model,
    plot_leave_one_cnn_out,
    plot_predicted_vs_measured,
    plot_test_model_bars,
    predict_test_set,
    report_metrics,
)
from power_modelling.quiet import dotted_dataset_names


def _target_nodes(target: str) -> list:
    """Select, fit and fit-the-baseline nodes of one trained target."""
    return [
        Node(
            cross_validate_candidates,
            inputs=[
                "model_input_train",
                f"params:{target}",
                "params:evaluation",
                "device_constants",
            ],
            outputs=f"{target}_cv",
            name=f"cross_validate_candidates_{target}",
        ),
        Node(
            fit_selected_model,
            inputs=[
                "model_input_train",
                f"params:{target}",
                f"{target}_cv",
                "params:evaluation",
                "device_constants",
            ],
            outputs=[f"{target}_model", f"{target}_model_mlflow"],
            name=f"fit_selected_model_{target}",
        ),
        Node(
            fit_baseline_model,
            inputs=["model_input_train", f"params:{target}", "params:evaluation"],
            outputs=f"{target}_baseline",
            name=f"fit_baseline_model_{target}",
        ),
    ]


def create_template() -> Pipeline:
    """The un-namespaced template shared by all layer classes."""
    evaluation = [
        Node(
            predict_test_set,
            inputs=[
                "model_input_test",
                "power_model",
                "runtime_model",
                "power_baseline",
                "runtime_baseline",
            ],
            outputs="test_predictions",
            name="predict_test_set",
        ),
        Node(
            report_metrics,
            inputs=["test_predictions", "power_cv", "runtime_cv", "params:evaluation"],
            outputs="metrics",
            name="report_metrics",
        ),
        Node(
            plot_test_model_bars,
            inputs="test_predictions",
            outputs=[f"{target}_bars_chart" for target in REPORTED_TARGETS],
            name="plot_test_model_bars",
        ),
        Node(
            plot_predicted_vs_measured,
            inputs="test_predictions",
            outputs=[f"{target}_scatter_chart" for target in REPORTED_TARGETS],
            name="plot_predicted_vs_measured",
        ),
    ]
    training = [step for target in TARGETS for step in _target_nodes(target)]
    return Pipeline(training + evaluation)


def create_pipeline(**kwargs) -> Pipeline:
    """The template once per layer class, each in its own namespace."""
    with dotted_dataset_names():
        template = create_template()
        constants = Pipeline(
            [
                Node(
                    estimate_device_constants,
                    inputs=[f"{layer_class}.model_input_train" for layer_class in LAYER_CLASSES],
                    outputs="device_constants",
                    name="estimate_device_constants",
                    tags={"modelling"},
                )
            ]
        )
        return (
            constants
            + _leave_one_cnn_out()
            + sum(
                (
                    Pipeline(
                        template,
                        namespace=layer_class,
                        inputs={"device_constants": "device_constants"},
                        parameters={"params:evaluation": "params:evaluation"},
                        tags={"modelling", layer_class},
                    )
                    for layer_class in LAYER_CLASSES
                ),
                Pipeline([]),
            )
        )


def _leave_one_cnn_out() -> Pipeline:
    """Leave-one-CNN-out over all CNNs of the model-input tables with the selected estimators
    (``params:loco``): ``loco_predictions``, the ``loco`` section of ``metrics.json``, its
    chart. Outside the namespaces: it needs every layer class at once."""
    inputs = {
        "loco": "params:loco",
        "evaluation": "params:evaluation",
        **{
            f"{layer_class}_{split}": f"{layer_class}.model_input_{split}"
            for layer_class in LAYER_CLASSES
            for split in ("train", "test")
        },
        **{f"{layer_class}_parameters": f"params:{layer_class}" for layer_class in LAYER_CLASSES},
        **{
            f"{layer_class}_{target}_cv": f"{layer_class}.{target}_cv"
            for layer_class in LAYER_CLASSES
            for target in TARGETS
        },
    }
    return Pipeline(
        [
            Node(
                evaluate_leave_one_cnn_out,
                inputs=inputs,
                outputs=["loco_predictions", "loco_metrics"],
                name="evaluate_leave_one_cnn_out",
            ),
            Node(
                plot_leave_one_cnn_out,
                inputs="loco_metrics",
                outputs="loco_chart",
                name="plot_leave_one_cnn_out",
            ),
        ],
        tags={"modelling", "loco"},
    )
