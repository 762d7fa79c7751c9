"""Power mapping pipeline: assign board-power samples to layer execution windows."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
