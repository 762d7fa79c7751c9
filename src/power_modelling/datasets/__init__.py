"""Custom Kedro datasets of the project."""

from power_modelling.datasets.data_quality import DataQualityDataset

__all__ = ["DataQualityDataset"]
