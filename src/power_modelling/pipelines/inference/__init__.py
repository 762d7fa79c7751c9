"""The ``inference`` pipeline: layer descriptions + the fitted models → per-layer predictions."""

from power_modelling.pipelines.inference.pipeline import create_pipeline

__all__ = ["create_pipeline"]
