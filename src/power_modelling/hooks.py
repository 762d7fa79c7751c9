"""Project hooks."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from kedro.framework.context import KedroContext
from kedro.framework.hooks import hook_impl
from kedro.io import CatalogProtocol
from kedro.pipeline import Pipeline

logger = logging.getLogger(__name__)

DATA_VERSION = "ingested_data_version"


def _active_run() -> bool:
    import mlflow  # noqa: PLC0415 (kedro-mlflow has imported it already)

    return mlflow.active_run() is not None


class DataQualityMlflowHook:
    """Attach the whole data-quality report to the MLflow run at the end of every run."""

    report_path = Path("data/08_reporting/data_quality.json")

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        # from the project root, whatever the working directory (a notebook runs in notebooks/)
        self.report_path = context.project_path / DataQualityMlflowHook.report_path

    @hook_impl(tryfirst=True)  # before kedro-mlflow's after_pipeline_run ends the run
    def after_pipeline_run(self) -> None:
        import mlflow  # noqa: PLC0415

        if _active_run() and self.report_path.exists():
            mlflow.log_artifact(str(self.report_path))


class DataVersionMlflowHook:
    """Tag the MLflow run with the raw dataset it was trained on and that dataset's version
    (``raw_dataset``, ``raw_dataset.dvc_md5`` or ``raw_dataset.git_commit``, ...).

    A run that ingests tags what it ingests (``ingested_data_version``); a run that starts
    later in the chain (``--pipelines modelling``) tags the version recorded by the last
    ingestion, which is what its inputs were built from."""

    @hook_impl(trylast=True)  # after kedro-mlflow's before_pipeline_run starts the run
    def before_pipeline_run(self, pipeline: Pipeline, catalog: CatalogProtocol) -> None:
        if DATA_VERSION in pipeline.all_outputs() or not catalog.exists(DATA_VERSION):
            return
        self._tag(catalog.load(DATA_VERSION))

    @hook_impl
    def after_node_run(self, outputs: dict[str, Any]) -> None:
        if DATA_VERSION in outputs:
            self._tag(outputs[DATA_VERSION])

    @staticmethod
    def _tag(version: dict[str, str]) -> None:
        import mlflow  # noqa: PLC0415

        if _active_run():
            mlflow.set_tags(version)
