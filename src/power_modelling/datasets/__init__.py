"""Custom Kedro datasets of the project."""

from power_modelling.datasets.mlflow_model import MlflowLoggedModelDataset
from power_modelling.datasets.raw_bytes import RawBytesDataset
from power_modelling.datasets.raw_data_version import RawDataVersionDataset
from power_modelling.datasets.report_section import ReportSectionDataset
from power_modelling.datasets.skops_model import SkopsModelDataset

__all__ = [
    "MlflowLoggedModelDataset",
    "RawBytesDataset",
    "RawDataVersionDataset",
    "ReportSectionDataset",
    "SkopsModelDataset",
]
