"""Custom Kedro datasets of the project."""

from power_modelling.datasets.report_section import ReportSectionDataset

__all__ = ["ReportSectionDataset"]
