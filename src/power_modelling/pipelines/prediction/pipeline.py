"""``kedro run --pipelines prediction``: network files → per-layer and per-network predictions.

The registry joins these nodes to the shared inference template (``pipelines/inference``):
``read_prediction_networks`` → ``prediction_layers`` → inference → ``layer_predictions`` →
``report_predictions``.
"""

from kedro.pipeline import Node, Pipeline

from power_modelling.pipelines.prediction.nodes import (
    read_prediction_networks,
    report_predictions,
)


def create_pipeline(**kwargs) -> Pipeline:
    """The prediction pipeline's own nodes (reading and reporting)."""
    return Pipeline(
        [
            Node(
                read_prediction_networks,
                inputs=["prediction_files", "params:predict_dataset", "params:prediction"],
                outputs=["prediction_layers", "prediction_networks"],
                name="read_prediction_networks",
            ),
            Node(
                report_predictions,
                inputs=[
                    "layer_predictions",
                    "prediction_networks",
                    "device_idle_power",
                    "params:prediction",
                ],
                outputs=[
                    "predictions",
                    "all_predictions",
                    "prediction_summary",
                    "prediction_data_quality",
                ],
                name="report_predictions",
            ),
        ]
    )
