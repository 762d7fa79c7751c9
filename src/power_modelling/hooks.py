"""Project hooks."""

from __future__ import annotations

import logging
from pathlib import Path

from kedro.framework.hooks import hook_impl

logger = logging.getLogger(__name__)


class DataQualityMlflowHook:
    """Attach the whole data-quality report to the MLflow run at the end of every run."""

    report_path = Path("data/08_reporting/data_quality.json")

    @hook_impl
    def after_pipeline_run(self) -> None:
        import mlflow  # noqa: PLC0415

        if mlflow.active_run() is not None and self.report_path.exists():
            mlflow.log_artifact(str(self.report_path))
