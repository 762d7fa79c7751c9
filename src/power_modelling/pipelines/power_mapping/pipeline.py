"""Power mapping: power samples ⋈ layer windows → per-cycle layer power and runtime."""

from kedro.pipeline import Node, Pipeline

from power_modelling.pipelines.power_mapping.nodes import map_power, report_power_mapping


def create_pipeline(**kwargs) -> Pipeline:
    """``layerwise`` (written model by model) and the ``power_mapping`` quality section."""
    return Pipeline(
        [
            Node(
                map_power,
                inputs=[
                    "power_samples",
                    "layer_windows",
                    "layer_descriptions",
                    "idle_power",
                    "params:power_mapping",
                    "params:parallel",
                ],
                outputs=["layerwise", "power_mapping_model_reports"],
                name="map_power",
            ),
            Node(
                report_power_mapping,
                inputs="power_mapping_model_reports",
                outputs="power_mapping_data_quality",
                name="report_power_mapping",
            ),
        ]
    )
