"""Modelling: one template per layer type (namespaces convolutional / pooling / dense)."""

from power_modelling.pipelines.modelling.pipeline import create_pipeline

__all__ = ["create_pipeline"]
