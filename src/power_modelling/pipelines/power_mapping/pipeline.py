"""Power mapping: power samples ⋈ layer windows → per-cycle layer power and runtime."""

from kedro.pipeline import Node, Pipeline

from .nodes import map_power


def create_pipeline(**kwargs) -> Pipeline:
    """One generator node that writes ``layerwise`` model by model, plus its quality section."""
    return Pipeline(
        [
            Node(
                func=map_power,
                inputs=[
                    "power_samples",
                    "layer_windows",
                    "layer_descriptions",
                    "idle_power",
                    "params:power_mapping",
                ],
                outputs=["layerwise", "power_mapping_data_quality"],
                name="map_power_to_layer_windows",
            )
        ]
    )
