"""Custom Kedro datasets of the project.

Imported on first use (PEP 562): the MLflow model dataset imports MLflow (and SciPy under
it), which reading a model file or a raw file does not need.
"""

from __future__ import annotations

import importlib
from typing import Any

_MODULES = {
    "MlflowLoggedModelDataset": "mlflow_model",
    "RawBytesDataset": "raw_bytes",
    "RawDataVersionDataset": "raw_data_version",
    "ReportSectionDataset": "report_section",
    "SkopsModelDataset": "skops_model",
}

__all__ = [
    "MlflowLoggedModelDataset",
    "RawBytesDataset",
    "RawDataVersionDataset",
    "ReportSectionDataset",
    "SkopsModelDataset",
]


def __getattr__(name: str) -> Any:
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_MODULES[name]}"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_MODULES])
