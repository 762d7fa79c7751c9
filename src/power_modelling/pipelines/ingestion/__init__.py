"""Ingestion: raw measurement folder → typed per-model tables (docs/ingestion.md)."""

from power_modelling.pipelines.ingestion.pipeline import create_pipeline

__all__ = ["create_pipeline"]
