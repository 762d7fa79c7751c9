"""One run at a time, all or nothing: the project's run lock, output transaction and manifests.

Every ``kedro run`` of the project:

1. takes the project's run lock (``data/.run.lock``): a second run waits (``run_guard.lock:
   wait``, the default, saying so) or fails at once (``fail``);
2. checks its inputs: a data layer whose manifest says an interrupted run left it incomplete,
   or that holds another raw dataset than the one requested, is refused, saying which and how
   to rebuild it;
3. moves its outputs' current files aside (``data/.transaction/``, a journal listing them)
   and writes ``complete: false`` into the manifests of the layers it writes;
4. on success deletes the old files and marks the manifests complete (raw dataset, its
   version, run id); on an error, SIGINT or SIGTERM it deletes what it wrote and puts the old
   files back, so a failed run leaves the project as it found it (models included) and its
   MLflow run ends FAILED, or KILLED when it was interrupted;
5. after SIGKILL or a power cut the journal is still there: the next run rolls it back first.

Partitioned outputs are thereby replaced as a whole, and nothing half-written is trusted later.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import uuid
from datetime import UTC, datetime
from pathlib import Path, PurePath
from typing import Any

from kedro.framework.context import KedroContext
from kedro.framework.hooks import hook_impl
from kedro.io import CatalogProtocol
from kedro.pipeline import Pipeline

from power_modelling.errors import InputError

logger = logging.getLogger(__name__)

LOCK_FILE = "data/.run.lock"
TRANSACTION_DIR = "data/.transaction"
MANIFEST = "_manifest.json"
#: Layers whose manifests are checked when a run reads them (raw data has none; outputs and
#: reports are not read back by later pipelines).
CHECKED_LAYERS = ("02_intermediate", "03_primary", "04_feature", "05_model_input", "06_models")


class RunInterrupted(Exception):  # noqa: N818 (it is what happened, not a programming error)
    """SIGINT / SIGTERM during a run: an ``Exception``, so Kedro's error path (rollback, MLflow
    run ended) runs, unlike for ``KeyboardInterrupt``."""


class RunRefused(InputError):
    """The run cannot start: another run holds the lock, or an input cannot be trusted."""


def layer_of(path: Path, data_dir: Path) -> Path | None:
    """The layer folder a file belongs to: ``data/<layer>`` (``data/06_models/<dataset>`` for
    models, one model set per raw dataset); ``None`` outside ``data/``."""
    try:
        parts = path.resolve().relative_to(data_dir.resolve()).parts
    except ValueError:
        return None
    if not parts or parts[0].startswith("."):
        return None
    if parts[0] == "06_models" and len(parts) > 2:
        return data_dir / parts[0] / parts[1]
    return data_dir / parts[0]


def local_path(dataset: Any) -> Path | None:
    """Where a catalog dataset keeps its data on the local disk (``None``: memory, MLflow)."""
    for attribute in ("_filepath", "_path"):
        value = getattr(dataset, attribute, None)
        if isinstance(value, str | PurePath) and str(value):
            protocol = getattr(dataset, "_protocol", "file")
            return Path(str(value)) if protocol in ("file", None) else None
    return None


def _merges(dataset: Any) -> bool:
    """Datasets that read what is there and add to it (report sections): kept, not moved."""
    return type(dataset).__name__ == "ReportSectionDataset"


def read_manifest(layer: Path) -> dict[str, Any] | None:
    try:
        return json.loads((layer / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def write_manifest(layer: Path, manifest: dict[str, Any]) -> None:
    layer.mkdir(parents=True, exist_ok=True)
    temporary = layer / f".{MANIFEST}.tmp"
    temporary.write_text(json.dumps(manifest, indent=1))
    os.replace(temporary, layer / MANIFEST)


class Transaction:
    """The outputs of one run: moved aside at the start, restored or discarded at the end."""

    def __init__(self, project: Path):
        self.project = project
        self.root = project / TRANSACTION_DIR
        self.journal = self.root / "journal.json"

    def pending(self) -> bool:
        return self.journal.exists()

    def begin(self, outputs: dict[str, tuple[Path, bool]], run: dict[str, Any]) -> None:
        """Move (or, for merging datasets, copy) every existing output aside."""
        self.root.mkdir(parents=True, exist_ok=True)
        entries = []
        for number, (name, (path, _)) in enumerate(sorted(outputs.items())):
            backup = self.root / f"{number:04d}"
            entry = {"dataset": name, "path": str(path), "backup": str(backup)}
            entry["existed"] = path.exists()
            entries.append(entry)
        # the journal first: whatever happens next, the next run knows what to put back
        self._write_journal({**run, "entries": entries})
        for entry in entries:
            path, backup = Path(entry["path"]), Path(entry["backup"])
            if not entry["existed"]:
                continue
            if outputs[entry["dataset"]][1]:  # merging dataset: it reads what is there
                copy = shutil.copytree if path.is_dir() else shutil.copy2
                copy(path, backup)
            else:
                os.replace(path, backup)

    def commit(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def rollback(self) -> list[str]:
        """Delete what the run wrote and put the previous files back; returns their names."""
        journal = json.loads(self.journal.read_text())
        restored = []
        for entry in journal["entries"]:
            path, backup = Path(entry["path"]), Path(entry["backup"])
            _remove(path)
            if entry["existed"] and backup.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                os.replace(backup, path)
                restored.append(entry["dataset"])
        for layer, manifest in journal.get("manifests", {}).items():
            if manifest is None:
                (Path(layer) / MANIFEST).unlink(missing_ok=True)
            else:
                write_manifest(Path(layer), manifest)
        shutil.rmtree(self.root, ignore_errors=True)
        return restored

    def remember_manifests(self, manifests: dict[str, dict[str, Any] | None]) -> None:
        journal = json.loads(self.journal.read_text())
        self._write_journal({**journal, "manifests": manifests})

    def _write_journal(self, journal: dict[str, Any]) -> None:
        temporary = self.root / "journal.json.tmp"
        temporary.write_text(json.dumps(journal, indent=1))
        os.replace(temporary, self.journal)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def catalog_param(catalog: CatalogProtocol, name: str, default: Any = None) -> Any:
    """Parameter ``name`` from a run's catalog; ``default`` when the run has no such one."""
    try:
        return catalog.load(f"params:{name}")
    except Exception:  # noqa: BLE001 (a pipeline that has no such parameter)
        return default


class RunGuardHook:
    """The run lock, the input checks and the output transaction of every ``kedro run``."""

    def __init__(self) -> None:
        self.project = Path.cwd()
        self._lock: Any = None
        self._transaction: Transaction | None = None
        self._run: dict[str, Any] = {}
        self._layers: list[Path] = []
        self._previous_handlers: dict[int, Any] = {}
        self._interrupted: str | None = None

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        self.project = Path(context.project_path)

    # --- start -------------------------------------------------------------------------
    @hook_impl(tryfirst=True)  # before kedro-mlflow opens an MLflow run
    def before_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Pipeline, catalog: CatalogProtocol
    ) -> None:
        options = catalog_param(catalog, "run_guard", {}) or {}
        self._acquire(str(options.get("lock", "wait")), float(options.get("timeout_s", 3600)))
        try:
            transaction = Transaction(self.project)
            if transaction.pending():
                restored = transaction.rollback()
                logger.warning(
                    "The previous run was interrupted before it finished: its outputs were "
                    "discarded and the earlier ones restored (%s)",
                    ", ".join(restored) or "none existed",
                )
            raw_dataset = catalog_param(catalog, "raw_dataset")
            self._check_inputs(pipeline, catalog, raw_dataset)
            outputs = self._outputs(pipeline, catalog)
            self._run = {
                "run_id": str(run_params.get("session_id") or uuid.uuid4()),
                "pipelines": run_params.get("pipeline_names") or ["__default__"],
                "raw_dataset": raw_dataset,
                "started": datetime.now(UTC).isoformat(timespec="seconds"),
                "pid": os.getpid(),
            }
            transaction.begin(outputs, self._run)
            self._transaction = transaction
            self._layers = sorted(
                {layer for path, _ in outputs.values() if (layer := self._layer(path))}
            )
            transaction.remember_manifests(
                {str(layer): read_manifest(layer) for layer in self._layers}
            )
            for layer in self._layers:
                write_manifest(layer, {**self._run, "complete": False})
        except BaseException:
            self._release()
            raise
        self._install_signal_handlers()

    def _acquire(self, mode: str, timeout_s: float) -> None:
        from filelock import FileLock, Timeout  # noqa: PLC0415

        if mode not in ("wait", "fail"):
            raise RunRefused(f"run_guard.lock must be 'wait' or 'fail', got {mode!r}")
        path = self.project / LOCK_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(path))
        try:
            self._lock.acquire(timeout=0)
            return
        except Timeout:
            if mode == "fail":
                raise RunRefused(
                    f"another kedro run of this project is in progress ({path} is locked); "
                    "wait for it, or run with --params run_guard.lock=wait to queue"
                ) from None
        logger.warning("Another kedro run of this project is in progress: waiting for it")
        try:
            self._lock.acquire(timeout=timeout_s)
        except Timeout:
            raise RunRefused(
                f"another kedro run held {path} for more than {timeout_s:.0f} s; giving up"
            ) from None

    def _layer(self, path: Path) -> Path | None:
        return layer_of(path, self.project / "data")

    def _check_inputs(
        self, pipeline: Pipeline, catalog: CatalogProtocol, raw_dataset: str | None
    ) -> None:
        """Refuse inputs from an incomplete run or from another raw dataset."""
        checked: set[Path] = set()
        for name in sorted(pipeline.inputs()):
            path = self._path_of(catalog, name)
            layer = path and self._layer(path)
            if not layer or layer in checked or layer.name == "01_raw":
                continue
            checked.add(layer)
            if not any(part in CHECKED_LAYERS for part in layer.parts[-2:]):
                continue
            manifest = read_manifest(layer)
            if manifest is None:
                continue  # written before manifests existed, or by hand
            relative = layer.relative_to(self.project)
            if not manifest.get("complete"):
                raise RunRefused(
                    f"{relative} was left incomplete by run {manifest.get('run_id')} "
                    f"({'+'.join(manifest.get('pipelines', []))}, started "
                    f"{manifest.get('started')}): rebuild it with `kedro run` (or the pipeline "
                    "that writes it) before using it"
                )
            produced_by = manifest.get("raw_dataset")
            is_models = layer.parent.name == "06_models"
            if not is_models and raw_dataset and produced_by and produced_by != raw_dataset:
                raise RunRefused(
                    f"{relative} holds data of raw dataset '{produced_by}', but this run is for "
                    f"'{raw_dataset}' ({name}): rebuild it with `kedro run --params "
                    f"raw_dataset={raw_dataset}`, or run with --params raw_dataset={produced_by}"
                )

    @staticmethod
    def _path_of(catalog: CatalogProtocol, name: str) -> Path | None:
        if name.startswith("params:") or name == "parameters":
            return None
        try:
            dataset = catalog.get(name) if hasattr(catalog, "get") else catalog._get_dataset(name)
        except Exception:  # noqa: BLE001 (memory datasets made on the fly, factories)
            return None
        return local_path(dataset) if dataset is not None else None

    def _outputs(self, pipeline: Pipeline, catalog: CatalogProtocol) -> dict[str, tuple]:
        """``{dataset(s): (path, merges)}`` of the run's outputs stored under ``data/<layer>/``
        (several report sections share one file: it is handled once)."""
        by_path: dict[Path, tuple[list[str], bool]] = {}
        for name in sorted(pipeline.all_outputs()):
            path = self._path_of(catalog, name)
            if path is None:
                continue
            path = (self.project / path).resolve()
            layer = self._layer(path)
            if layer is None or path == layer.parent or path == self.project / "data":
                continue  # outside the data layers (an MLflow-only dataset's "." for one)
            names, merges = by_path.get(path, ([], False))
            dataset = catalog.get(name) if hasattr(catalog, "get") else None
            by_path[path] = ([*names, name], merges or _merges(dataset))
        return {"+".join(names): (path, merges) for path, (names, merges) in by_path.items()}

    # --- interruptions that code on the way swallowed (logging catches what its handlers
    # raise): checked again between nodes and datasets, and before committing ---------------
    def _raise_if_interrupted(self) -> None:
        if self._interrupted:
            raise RunInterrupted(self._interrupted)

    @hook_impl
    def before_node_run(self) -> None:
        self._raise_if_interrupted()

    @hook_impl
    def after_node_run(self) -> None:
        self._raise_if_interrupted()

    @hook_impl
    def before_dataset_saved(self) -> None:
        self._raise_if_interrupted()

    @hook_impl
    def after_dataset_saved(self) -> None:
        self._raise_if_interrupted()

    # --- end ---------------------------------------------------------------------------
    @hook_impl(tryfirst=True)  # committed before anything else can fail (MLflow logging)
    def after_pipeline_run(self, catalog: CatalogProtocol) -> None:
        if self._interrupted:  # the nodes ran to the end, but the user asked to stop
            error = RunInterrupted(self._interrupted)
            self.on_pipeline_error(error)
            raise error
        try:
            if self._transaction is not None:
                version = self._data_version(catalog)
                for layer in self._layers:
                    write_manifest(layer, {**self._run, **version, "complete": True})
                self._transaction.commit()
        finally:
            self._finish()

    @hook_impl(tryfirst=True)  # before kedro-mlflow ends the MLflow run as FAILED
    def on_pipeline_error(self, error: Exception) -> None:
        try:
            if self._transaction is not None:
                restored = self._transaction.rollback()
                logger.error(
                    "The run failed: its outputs were discarded and the previous ones kept (%s)",
                    ", ".join(restored) or "there were none",
                )
            if isinstance(error, RunInterrupted) or self._interrupted:  # also when wrapped
                with contextlib.suppress(Exception):
                    import mlflow  # noqa: PLC0415

                    while mlflow.active_run():
                        mlflow.end_run("KILLED")
        finally:
            self._finish()

    def _data_version(self, catalog: CatalogProtocol) -> dict[str, Any]:
        with contextlib.suppress(Exception):
            version = catalog.load("ingested_data_version")
            return {"raw_dataset_version": {k: v for k, v in version.items()}}
        return {}

    def _finish(self) -> None:
        self._restore_signal_handlers()
        self._interrupted = None
        self._transaction = None
        self._release()

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # --- signals -----------------------------------------------------------------------
    def _install_signal_handlers(self) -> None:
        def interrupted(signum: int, frame: Any) -> None:
            self._interrupted = f"interrupted by {signal.Signals(signum).name}"
            raise RunInterrupted(self._interrupted)

        with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous_handlers[signum] = signal.signal(signum, interrupted)

    def _restore_signal_handlers(self) -> None:
        for signum, handler in self._previous_handlers.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(signum, handler)
        self._previous_handlers.clear()
