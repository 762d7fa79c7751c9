"""Project hooks."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Generator
from pathlib import Path
from typing import Any

from kedro.framework.context import KedroContext
from kedro.framework.hooks import hook_impl
from kedro.io import CatalogProtocol
from kedro.pipeline import Pipeline

from power_modelling.errors import InputError
from power_modelling.project import checked_dataset_name
from power_modelling.run_guard import catalog_param

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
        if DATA_VERSION in pipeline.all_outputs() or not _reads_ingested_tables(pipeline, catalog):
            return  # it tags what it ingests; or it reads no table of a raw dataset (prediction)
        if catalog.exists(DATA_VERSION):
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


#: The data layers built from a raw dataset (the prediction pipeline reads none of them).
INGESTED_LAYERS = ("02_intermediate", "03_primary", "04_feature", "05_model_input")


def _reads_ingested_tables(pipeline: Pipeline, catalog: CatalogProtocol) -> bool:
    """Whether the run's inputs include a table of ``INGESTED_LAYERS``."""
    from power_modelling.run_guard import local_path  # noqa: PLC0415

    for name in pipeline.inputs():
        if name.startswith("params:") or name == "parameters":
            continue
        try:
            path = local_path(catalog.get(name))
        except Exception:  # noqa: BLE001 (a dataset made on the fly: not a stored table)
            continue
        if path is not None and any(part in INGESTED_LAYERS for part in path.parts):
            return True
    return False


class DatasetNameHook:
    """Refuse ``raw_dataset`` / ``predict_dataset`` values that are paths (``../../x``,
    ``/data/x``) before anything is read, written or tracked: they select
    ``data/01_raw/<name>``, and a path would lead outside it.

    ``--params`` values are checked as soon as the context exists (before kedro-mlflow sets
    up its store), the configured ones from the run's catalog. Not ``context.params``: Kedro
    validates parameters against every registered pipeline there, and again against the run's
    when it builds the catalog (a second read of all parameter files, a tenth of a
    prediction run)."""

    KINDS = ("raw_dataset", "predict_dataset")

    @hook_impl(tryfirst=True)  # before kedro-mlflow creates its store
    def after_context_created(self, context: KedroContext) -> None:
        given = getattr(context, "_runtime_params", None) or {}
        for kind in self.KINDS:
            if kind in given:
                checked_dataset_name(given[kind], kind)

    @hook_impl(tryfirst=True)  # before the run lock, the transaction and any MLflow run
    def before_pipeline_run(self, catalog: CatalogProtocol) -> None:
        for kind in self.KINDS:
            value = catalog_param(catalog, kind, _ABSENT)
            if value is not _ABSENT:
                checked_dataset_name(value, kind)


_ABSENT = object()


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


def _partition_names(catalog: CatalogProtocol, name: str) -> list[str]:
    """Top-level names of a partitioned dataset's partitions (model folders)."""
    try:
        partitions = catalog.load(name)
    except Exception:  # noqa: BLE001 (missing folder: the pipeline says so itself)
        return []
    return sorted(
        {pid.replace("\\", "/").split("/")[0].removesuffix(".parquet") for pid in partitions}
    )


def _check_raw_folder(catalog: CatalogProtocol, dataset: str, parameter: str, name: Any) -> None:
    """``data/01_raw/<name>`` must be there and hold files; else say which exist and how to
    add one (instead of Kedro's "No partitions found")."""
    try:
        folder = Path(catalog.get(dataset)._path)
    except Exception:  # noqa: BLE001 (not a partitioned folder: nothing to check)
        return
    if folder.is_dir() and any(p.is_file() for p in folder.rglob("*")):
        return
    raw = folder.parent
    present = sorted(p.name for p in raw.glob("*") if p.is_dir() and any(p.iterdir()))
    raise InputError(
        f"{parameter}='{name}': data/01_raw/{name} is missing or empty (datasets there: "
        f"{', '.join(present) or 'none'}). Put a raw dataset in that folder "
        "(docs/own-data.md; `kedro data pull` fetches DVC-tracked ones) or choose another "
        f"with --params {parameter}=<folder>"
    )


class ParameterCheckHook:
    """Parameters that can only be wrong against the data, checked before any work starts:
    the held-out test CNNs (they must exist and leave 2 to train on) and the models a
    prediction asks for (their folder must exist)."""

    @hook_impl(tryfirst=True)  # before the run lock, MLflow or any node
    def before_pipeline_run(self, pipeline: Pipeline, catalog: CatalogProtocol) -> None:
        from power_modelling.core.splits import (  # noqa: PLC0415
            check_training_cnns,
            resolve_test_models,
        )

        raw_dataset = catalog_param(catalog, "raw_dataset")
        outputs, inputs = pipeline.all_outputs(), pipeline.inputs()
        for dataset, parameter in (
            ("raw_measurement_files", "raw_dataset"),
            ("prediction_files", "predict_dataset"),
        ):
            if dataset in inputs:
                _check_raw_folder(catalog, dataset, parameter, catalog_param(catalog, parameter))
        if "test_models" in outputs:
            source = "raw_measurement_files" if "raw_measurement_files" in inputs else None
            available = _partition_names(catalog, source or "layer_descriptions")
            if source:  # only folders: top-level files (idling_power.json, ...) are not CNNs
                available = [n for n in available if "." not in n]
            params = catalog_param(catalog, "feature_engineering", {}) or {}
            if available:
                names, _ = resolve_test_models(
                    params.get("test_models"),
                    available,
                    raw_dataset,
                    params.get("test_models_by_dataset"),
                )
                if "convolutional.power_cv" in outputs:  # the run cross-validates
                    n_train = len(available) - len(names)
                    check_training_cnns(n_train, len(available), raw_dataset, 2)
        model = "convolutional.power_model"
        if model in inputs and model not in outputs:
            models = catalog_param(catalog, "prediction", {}).get("models")
            folder = Path("data/06_models") / str(models)
            root = Path.cwd()
            with contextlib.suppress(Exception):
                root = Path(catalog.get(model)._filepath).parents[3]
            if not (root / folder).is_dir():
                present = sorted(p.name for p in (root / "data/06_models").glob("*") if p.is_dir())
                raise ValueError(
                    f"prediction.models='{models}': no models in {folder} (trained model sets: "
                    f"{', '.join(present) or 'none yet'}). Train them with `kedro run --params "
                    f"raw_dataset={models}`, or choose one with --params prediction.models=<name>"
                )


class ServedModelHook:
    """At the end of a training run, log the inference pipeline with the model set just
    written as one MLflow pyfunc model, ``prediction_model``, defined in code
    (``serving.py``: no pickle), registered per raw dataset as
    ``power_modelling-<raw_dataset>`` so ``models:/power_modelling-<dataset>/latest`` never
    changes device under a user's feet."""

    @hook_impl(tryfirst=True)  # before kedro-mlflow's after_pipeline_run ends the run
    def after_pipeline_run(self, pipeline: Pipeline, catalog: CatalogProtocol) -> None:
        from power_modelling.pipeline_registry import (  # noqa: PLC0415
            REGISTERED_MODEL_NAME,
            log_model_kwargs,
        )
        from power_modelling.pipelines.inference.pipeline import (  # noqa: PLC0415
            model_datasets,
        )
        from power_modelling.serving import JSON_INPUTS  # noqa: PLC0415

        inputs = [*model_datasets().values(), *JSON_INPUTS]
        if not set(inputs) <= pipeline.all_outputs() or not _active_run():
            return  # not a training run (or not tracked)
        import mlflow  # noqa: PLC0415

        import power_modelling  # noqa: PLC0415

        artifacts = {name: str(Path(catalog.get(name)._filepath)) for name in inputs}
        trusted = list(getattr(catalog.get(inputs[0]), "_trusted", []))
        raw_dataset = catalog_param(catalog, "raw_dataset")
        mlflow.pyfunc.log_model(
            python_model=str(Path(power_modelling.__file__).parent / "serving.py"),
            artifacts=artifacts,
            model_config={"trusted_types": trusted},
            registered_model_name=f"{REGISTERED_MODEL_NAME}-{raw_dataset}",
            **log_model_kwargs(),
        )


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
