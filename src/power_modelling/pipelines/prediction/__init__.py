"""Prediction of per-layer and whole-network runtime, power and energy for an unseen CNN."""

from power_modelling.pipelines.prediction.pipeline import create_pipeline

__all__ = ["create_pipeline"]
