"""Feature engineering: layer descriptions + layer-wise measurements → training tables."""

from power_modelling.pipelines.feature_engineering.pipeline import create_pipeline

__all__ = ["create_pipeline"]
