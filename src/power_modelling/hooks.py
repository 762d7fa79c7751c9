"""Project hooks."""

from __future__ import annotations

import logging
import os
from collections.abc import Generator
from pathlib import Path
from typing import Any

from kedro.framework.context import KedroContext
from kedro.framework.hooks import hook_impl
from kedro.io import CatalogProtocol
from kedro.pipeline import Pipeline

from power_modelling.project import checked_dataset_name

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


class DatasetNameHook:
    """Refuse ``raw_dataset`` / ``predict_dataset`` values that are paths (``../../x``,
    ``/data/x``) before anything is read, written or tracked: they select
    ``data/01_raw/<name>``, and a path would lead outside it."""

    @hook_impl(tryfirst=True)  # before kedro-mlflow creates its store or any run
    def after_context_created(self, context: KedroContext) -> None:
        params = context.params
        for kind in ("raw_dataset", "predict_dataset"):
            if kind in params:
                checked_dataset_name(params[kind], kind)


#: Longest wait for another process that is creating the same sqlite MLflow store.
MLFLOW_STORE_LOCK_TIMEOUT_S = 600


def sqlite_store_path(tracking_uri: str | None) -> Path | None:
    """The database file of a ``sqlite:///<path>`` tracking URI (``None`` for other stores)."""
    if not tracking_uri or not tracking_uri.startswith("sqlite:///"):
        return None
    path = tracking_uri.removeprefix("sqlite:///").split("?")[0]
    return Path(path) if path and path != ":memory:" else None


class MlflowStoreLockHook:
    """Serialise MLflow's set-up of a sqlite store between processes.

    kedro-mlflow's ``after_context_created`` creates the store (MLflow runs its schema
    migrations on a new or old database) and the experiment. Two runs doing that at once on
    the same ``mlflow.db`` fail with "duplicate column name", "table ... already exists" or a
    duplicate experiment. This wrapper holds a file lock (``<store>.lock``) around every
    ``after_context_created`` implementation, so the second run waits a moment and then
    finds the store ready."""

    @hook_impl(wrapper=True)
    def after_context_created(self, context: KedroContext) -> Generator[None, Any, Any]:
        store = sqlite_store_path(_tracking_uri(context))
        if store is None or not store.parent.is_dir():
            return (yield)
        from filelock import FileLock, Timeout  # noqa: PLC0415

        lock = FileLock(f"{store}.lock")
        try:
            lock.acquire(timeout=0)
        except Timeout:
            logger.info("Waiting for another process that is setting up %s", store)
            try:
                lock.acquire(timeout=MLFLOW_STORE_LOCK_TIMEOUT_S)
            except Timeout as error:
                raise RuntimeError(
                    f"{store}.lock is still held after {MLFLOW_STORE_LOCK_TIMEOUT_S} s by "
                    "another process setting up the MLflow store; stop it or retry"
                ) from error
        try:
            return (yield)
        finally:
            lock.release()


def _tracking_uri(context: KedroContext) -> str | None:
    """The tracking URI kedro-mlflow is about to use: conf's ``mlflow.yml``, else
    ``MLFLOW_TRACKING_URI``."""
    try:
        uri = context.config_loader["mlflow"]["server"]["mlflow_tracking_uri"]
    except Exception:  # best effort: kedro-mlflow reads it next and reports what is wrong
        uri = None
    return uri or os.environ.get("MLFLOW_TRACKING_URI")
