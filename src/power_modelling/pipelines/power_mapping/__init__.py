"""Power mapping pipeline: assign board-power samples to layer execution windows."""

from power_modelling.pipelines.power_mapping.pipeline import create_pipeline

__all__ = ["create_pipeline"]
