"""Custom Kedro datasets of the project."""

from power_modelling.datasets.raw_data_version import RawDataVersionDataset
from power_modelling.datasets.report_section import ReportSectionDataset

__all__ = ["RawDataVersionDataset", "ReportSectionDataset"]
