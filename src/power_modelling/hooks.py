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
#: Run label of the default pipeline (the whole training chain).
DEFAULT_PIPELINE_LABEL = "training"


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


def run_name(pipeline_names: list[str] | None, dataset: str | None) -> str:
    """``training · h200_isolated_v1``: the pipeline(s) run (``__default__`` is the training
    chain) and the dataset they ran on."""
    names = [
        DEFAULT_PIPELINE_LABEL if name == "__default__" else name
        for name in (pipeline_names or ["__default__"])
    ]
    label = "+".join(names)
    return f"{label} · {dataset}" if dataset else label


class RunNameMlflowHook:
    """Name each MLflow run after what ran on what (``modelling · h200_isolated_v1``,
    ``prediction · predict``) instead of the bare pipeline name, unless ``mlflow.yml`` sets
    ``tracking.run.name``.

    The dataset is ``predict_dataset`` for a prediction run; for the others it is the raw
    dataset their inputs come from: ``raw_dataset`` for a run that ingests, else the one the
    last ingestion recorded."""

    def __init__(self) -> None:
        self._context: KedroContext | None = None
        self._configured_name: str | None = None

    @hook_impl(trylast=True)  # after kedro-mlflow's, which puts its configuration on the context
    def after_context_created(self, context: KedroContext) -> None:
        self._context = context
        config = getattr(context, "mlflow", None)
        self._configured_name = config.tracking.run.name if config is not None else None

    @hook_impl(tryfirst=True)  # before kedro-mlflow's before_pipeline_run starts the run
    def before_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Pipeline, catalog: CatalogProtocol
    ) -> None:
        config = getattr(self._context, "mlflow", None)
        if config is None or self._configured_name is not None:
            return
        names = run_params.get("pipeline_names") or run_params.get("pipeline_name")
        names = [names] if isinstance(names, str) else names
        config.tracking.run.name = run_name(names, self._dataset(names, pipeline, catalog))

    def _dataset(
        self, names: list[str] | None, pipeline: Pipeline, catalog: CatalogProtocol
    ) -> str | None:
        params = self._context.params if self._context is not None else {}
        if names == ["prediction"]:
            return params.get("predict_dataset")
        if DATA_VERSION not in pipeline.all_outputs() and catalog.exists(DATA_VERSION):
            # through the dataset, not catalog.load: no "Loading data" line before the run
            recorded = catalog.get(DATA_VERSION).load().get("raw_dataset")
            if recorded:
                return recorded
        return params.get("raw_dataset")
