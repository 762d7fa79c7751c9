"""The feature_engineering pipeline."""

from kedro.pipeline import Node, Pipeline

from power_modelling.core.layers import LAYER_CLASSES
from power_modelling.pipelines.feature_engineering.nodes import (
    aggregate_measurements,
    assemble_feature_tables,
    build_layer_features,
    choose_test_models,
    split_train_test,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Features of every described layer, per-layer targets, a table per layer class and its
    train/test split by CNN (``<layer_class>.model_input_{train,test}``)."""
    tables = {name: f"{name}.feature_table" for name in LAYER_CLASSES}
    return Pipeline(
        [
            Node(
                build_layer_features,
                "layer_descriptions",
                "layer_features",
                name="build_layer_features",
            ),
            Node(
                aggregate_measurements,
                "layerwise",
                "layer_measurements",
                name="aggregate_measurements",
            ),
            Node(
                assemble_feature_tables,
                [
                    "layer_features",
                    "layer_measurements",
                    "params:feature_engineering.min_power_samples",
                ],
                {**tables, "report": "feature_engineering_data_quality"},
                name="assemble_feature_tables",
            ),
            Node(
                choose_test_models,
                ["layer_features", "params:feature_engineering", "params:raw_dataset"],
                "test_models",
                name="choose_test_models",
            ),
            *(
                Node(
                    split_train_test,
                    [f"{name}.feature_table", "test_models"],
                    [f"{name}.model_input_train", f"{name}.model_input_test"],
                    name=f"split_train_test_{name}",
                )
                for name in LAYER_CLASSES
            ),
        ]
    )
