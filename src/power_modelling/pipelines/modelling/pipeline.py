"""The modelling template, instantiated once per layer type with ``namespace=<layer_type>``.

Inside the template, datasets and parameters have short names (``model_input_train``,
``params:power``, ...); the namespace turns them into ``convolutional.model_input_train``,
``params:convolutional.power``, ... so all layer-type differences live in
``conf/base/parameters_modelling.yml``.
"""

from __future__ import annotations

from kedro.pipeline import Pipeline, node

from power_modelling.pipelines.feature_engineering.features import LAYER_CLASSES
from power_modelling.pipelines.modelling.nodes import (
    cross_validate_candidates,
    fit_baseline_model,
    fit_selected_model,
    plot_predicted_vs_measured,
    plot_test_model_bars,
    predict_test_set,
    report_metrics,
)

LAYER_TYPES = LAYER_CLASSES  # one namespace per layer class of feature engineering
TRAINED_TARGETS = ("power", "runtime")
CHART_TARGETS = ("power", "power_total", "runtime")


def _target_nodes(target: str) -> list:
    """Select, fit and fit-the-baseline nodes of one trained target."""
    return [
        node(
            cross_validate_candidates,
            inputs=["model_input_train", f"params:{target}", "params:evaluation"],
            outputs=f"{target}_cv",
            name=f"cross_validate_{target}_candidates",
        ),
        node(
            fit_selected_model,
            inputs=["model_input_train", f"params:{target}", f"{target}_cv", "params:evaluation"],
            outputs=[f"{target}_model", f"{target}_model_mlflow"],
            name=f"fit_{target}_model",
        ),
        node(
            fit_baseline_model,
            inputs=["model_input_train", f"params:{target}", "params:evaluation"],
            outputs=f"{target}_baseline",
            name=f"fit_{target}_baseline",
        ),
    ]


def create_template() -> Pipeline:
    """The un-namespaced template shared by all layer types."""
    evaluation = [
        node(
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
        node(
            report_metrics,
            inputs=["test_predictions", "power_cv", "runtime_cv", "params:evaluation"],
            outputs="metrics",
            name="report_metrics",
        ),
        node(
            plot_test_model_bars,
            inputs="test_predictions",
            outputs=[f"{target}_bars_chart" for target in CHART_TARGETS],
            name="plot_test_model_bars",
        ),
        node(
            plot_predicted_vs_measured,
            inputs="test_predictions",
            outputs=[f"{target}_scatter_chart" for target in CHART_TARGETS],
            name="plot_predicted_vs_measured",
        ),
    ]
    training = [step for target in TRAINED_TARGETS for step in _target_nodes(target)]
    return Pipeline(training + evaluation)


def create_pipeline(**kwargs) -> Pipeline:
    """The template once per layer type, each in its own namespace."""
    template = create_template()
    return sum(
        (
            Pipeline(
                template,
                namespace=layer_type,
                tags={"modelling", layer_type},
            )
            for layer_type in LAYER_TYPES
        ),
        Pipeline([]),
    )
