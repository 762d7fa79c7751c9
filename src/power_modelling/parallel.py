"""Per-model work on every core, or on a Dask cluster: prefetching partition loaders.

Ingestion and power mapping return one loader per model and table, which Kedro calls one at
a time while it saves the partitions (docs/ingestion.md). ``Prefetcher`` keeps those loaders
and what Kedro sees unchanged, but computes the models' results ahead, a bounded window of
them at a time, on an executor:

- ``sequential``: in the calling process, when the loader is called (no executor);
- ``processes``: a ``concurrent.futures.ProcessPoolExecutor`` with one process per core
  (``workers`` to choose), the default;
- a Dask scheduler address (``tcp://host:8786``; ``DASK_SCHEDULER_ADDRESS`` in the
  environment by default): the tasks run on that ``dask.distributed`` cluster.

Results come back to the Kedro process in model order and are saved there through the
catalog, one model at a time, so at most ``prefetch`` models (default: as many as workers)
are in flight beside the one being saved. The tasks' log records are captured where they run
and logged by the Kedro process when their result is taken, so a run logs what a sequential
run logs.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

SEQUENTIAL = "sequential"
PROCESSES = "processes"
#: How long to wait for a Dask scheduler to answer (a cluster may still be starting).
DASK_CONNECT_TIMEOUT_S = 30
#: ``processes`` starts workers only for more work than this (seconds, estimated by the
#: caller from file sizes): starting them and shipping tables back costs about 2 s.
MIN_PROCESS_WORK_S = 4.0
#: Loggers of the per-model work whose records are captured in workers and logged here.
TASK_LOGGERS = (
    "power_modelling.core.raw.latency",
    "power_modelling.core.raw.power_log",
    "power_modelling.core.mapping",
)


@dataclass(frozen=True)
class ParallelSettings:
    """``params:parallel``: where per-model work runs (see the module docstring)."""

    scheduler: str = SEQUENTIAL
    workers: int | None = None
    prefetch: int | None = None

    @classmethod
    def of(cls, params: Mapping[str, Any] | None) -> ParallelSettings:
        params = params or {}
        scheduler = str(params.get("scheduler") or SEQUENTIAL).strip()
        workers = params.get("workers")
        prefetch = params.get("prefetch")
        for name, value in (("workers", workers), ("prefetch", prefetch)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(
                    f"parallel.{name} must be a positive integer or null, got {value!r}"
                )
        return cls(scheduler, workers, prefetch)

    @property
    def dask_address(self) -> str | None:
        return None if self.scheduler in (SEQUENTIAL, PROCESSES) else self.scheduler

    def describe(self, models: int, work_s: float | None = None) -> str:
        if self.dask_address:
            return f"the Dask cluster at {self.dask_address}"
        if not self.uses_processes(models, work_s):
            small = self.scheduler == PROCESSES and self._process_count(models) > 1
            return "this process" + (" (too little work for worker processes)" if small else "")
        return f"{self._process_count(models)} processes"

    def uses_processes(self, models: int, work_s: float | None) -> bool:
        """Whether ``processes`` starts workers: 2+ models, 2+ cores, enough work."""
        return (
            self.scheduler == PROCESSES
            and self._process_count(models) > 1
            and (work_s is None or work_s >= MIN_PROCESS_WORK_S)
        )

    def _process_count(self, models: int) -> int:
        return min(self.workers or os.cpu_count() or 1, models)


class Prefetcher:
    """``tasks`` (model → a picklable callable computing its result), taken one model at a
    time by ``take(model)``, in any order; with an executor, the next models in ``tasks``'
    order are computed ahead (``prefetch`` in flight at most)."""

    def __init__(
        self,
        tasks: Mapping[str, Callable[[], T]],
        settings: ParallelSettings,
        what: str = "tasks",
        work_s: float | None = None,
    ) -> None:
        """``work_s``: an estimate of the tasks' sequential run time (``None``: unknown, as
        if large); local processes are started only beyond ``MIN_PROCESS_WORK_S``."""
        self.tasks = dict(tasks)
        self.order = list(self.tasks)
        self.settings = settings
        self.what = what
        self.work_s = work_s
        self._futures: dict[str, Future] = {}
        self._submitted: set[str] = set()
        self._pool: _Pool | None = None

    def take(self, model: str) -> T:
        """The result of ``model``'s task (computed now, or taken from the pool)."""
        if model not in self._submitted:
            pool = self._executor()
            if pool is None:
                self._submitted.add(model)
                return self.tasks[model]()
            self._submit_from(model)
        elif model not in self._futures:
            raise RuntimeError(f"{self.what} of {model} were taken already")
        try:
            result, records = self._futures.pop(model).result()
        except BaseException:
            self.close()
            raise
        _replay(records)
        if model in self.order:
            self._submit_from(model, after=True)
        if not self._futures and len(self._submitted) == len(self.order):
            self.close()
        return result

    def discard(self, model: str) -> None:
        """Drop ``model``'s task: never computed if it has not been submitted, its result
        (and its logs) dropped if it has."""
        future = self._futures.pop(model, None)
        if future is not None:
            future.cancel()
        self._submitted.add(model)
        if not self._futures and len(self._submitted) == len(self.order):
            self.close()

    def close(self) -> None:
        """Cancel what is still pending and let the workers go."""
        for future in self._futures.values():
            future.cancel()
        self._futures.clear()
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def _executor(self) -> _Pool | None:
        if self._pool is None and len(self._submitted) < len(self.order):
            self._pool = _Pool.start(
                self.settings, len(self.order) - len(self._submitted), self.work_s
            )
        return self._pool

    def _submit_from(self, model: str, after: bool = False) -> None:
        """Submit ``model`` (unless ``after``) and the next ones, ``prefetch`` in flight."""
        pool = self._pool
        if pool is None:
            return
        start = self.order.index(model) + (1 if after else 0)
        if not after and model not in self._submitted:
            self._submit(pool, model)
        for following in self.order[start:]:
            if len(self._futures) >= pool.prefetch:
                break
            if following not in self._submitted:
                self._submit(pool, following)

    def _submit(self, pool: _Pool, model: str) -> None:
        self._submitted.add(model)
        levels = {name: logging.getLogger(name).getEffectiveLevel() for name in TASK_LOGGERS}
        self._futures[model] = pool.executor.submit(
            captured, self.tasks[model], levels, os.getpid()
        )


class _Pool:
    """An executor with its prefetch window, and how to let it go."""

    def __init__(self, executor: Executor, prefetch: int, close: Callable[[], None]) -> None:
        self.executor, self.prefetch, self._close = executor, prefetch, close
        self._finalizer = weakref.finalize(self, close)

    @classmethod
    def start(cls, settings: ParallelSettings, models: int, work_s: float | None) -> _Pool | None:
        if settings.dask_address:
            return cls._dask(settings)
        if not settings.uses_processes(models, work_s):
            return None
        processes = settings._process_count(models)
        return cls(_process_pool(processes), settings.prefetch or processes, lambda: None)

    @classmethod
    def _dask(cls, settings: ParallelSettings) -> _Pool:
        try:
            from distributed import Client  # noqa: PLC0415 (only for a Dask cluster)
        except ImportError as error:  # pragma: no cover (a project dependency)
            raise RuntimeError(
                "parallel.scheduler names a Dask cluster: install distributed"
            ) from error
        try:
            client = Client(
                settings.dask_address, set_as_default=False, timeout=DASK_CONNECT_TIMEOUT_S
            )
        except OSError as error:
            raise RuntimeError(
                f"parallel.scheduler={settings.dask_address}: no Dask scheduler answers there "
                f"({error}); start one (`dask scheduler`, docs/performance.md) or use "
                "parallel.scheduler=processes"
            ) from None
        workers = len(client.scheduler_info(n_workers=-1).get("workers", {})) or 1
        prefetch = settings.prefetch or settings.workers or workers
        return cls(client.get_executor(pure=False), prefetch, client.close)

    def close(self) -> None:
        self._finalizer()


_PROCESS_POOLS: dict[int, ProcessPoolExecutor] = {}


def _process_pool(processes: int) -> ProcessPoolExecutor:
    """A pool of ``processes`` workers, kept for the next nodes of the run (starting workers
    is the cost of a pool: the windows, the power logs and the mapping share them); Python
    lets them go when it exits."""
    pool = _PROCESS_POOLS.get(processes)
    if pool is None or getattr(pool, "_broken", False):
        pool = ProcessPoolExecutor(processes, mp_context=_process_context())
        _PROCESS_POOLS[processes] = pool
    return pool


def loader_bytes(load: Callable[[], Any] | None) -> int | None:
    """The size of the file a partition loader reads (a Kedro dataset's bound ``load`` with a
    ``_filepath``), ``None`` when it cannot be told."""
    dataset = getattr(load, "__self__", None)
    path = getattr(dataset, "_filepath", None)
    if path is None:
        return None
    try:
        filesystem = getattr(dataset, "_fs", None)
        return int(filesystem.size(str(path))) if filesystem else Path(path).stat().st_size
    except (OSError, TypeError, ValueError):
        return None


def work_seconds(loaders: Iterable[Callable[[], Any] | None], bytes_per_s: float) -> float | None:
    """Seconds of sequential work the files of ``loaders`` promise at ``bytes_per_s``;
    ``None`` when a size is unknown."""
    total = 0
    for load in loaders:
        if load is None:
            continue
        size = loader_bytes(load)
        if size is None:
            return None
        total += size
    return total / bytes_per_s


def _process_context() -> multiprocessing.context.BaseContext:
    """Workers forked from a server process that has imported the parsers and the mapping
    once (no interpreter start per pool), never from the Kedro process itself (forking a
    process with threads can deadlock); a fresh interpreter each where there is no fork."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(_PRELOAD))
    return context


_PRELOAD = (
    "power_modelling.core.raw.model_files",
    "power_modelling.core.mapping",
    "power_modelling.parallel",
)


# ----------------------------------------------------------------------------- logging
_capture = threading.local()


class _CaptureFilter(logging.Filter):
    """Holds back the records of a thread that runs a captured task (they go back with the
    task's result); passes every other record."""

    def filter(self, record: logging.LogRecord) -> bool:
        records = getattr(_capture, "records", None)
        if records is None:
            return True
        records.append(_portable(record))
        return False


_FILTER = _CaptureFilter()


def captured(
    task: Callable[[], T], levels: Mapping[str, int], parent: int
) -> tuple[T, list[logging.LogRecord]]:
    """Run ``task`` and return its result with the records its loggers emitted (picklable).
    In another process than the ``parent`` (Kedro's), the loggers get the parent's levels."""
    for name in TASK_LOGGERS:
        task_logger = logging.getLogger(name)
        if _FILTER not in task_logger.filters:
            task_logger.addFilter(_FILTER)
        if os.getpid() != parent:
            task_logger.setLevel(levels[name])
    if os.getpid() != parent:
        _one_thread_per_worker()
    _capture.records = []
    try:
        result = task()
        return result, _capture.records
    finally:
        _capture.records = None


def _one_thread_per_worker() -> None:
    """A worker process shares the cores with the others: its scans and Arrow use one thread
    (threads on top of processes only compete for the same cores)."""
    import pyarrow  # noqa: PLC0415

    from power_modelling.core.raw import latency, spans  # noqa: PLC0415

    latency.PARALLEL_CHUNKS = 1
    spans.SCAN_THREADS = 1
    pyarrow.set_cpu_count(1)
    pyarrow.set_io_thread_count(1)
    pyarrow.set_memory_pool(pyarrow.system_memory_pool())  # as the Kedro process (settings.py)


def _portable(record: logging.LogRecord) -> logging.LogRecord:
    """The record with its message formatted (arguments and tracebacks need not pickle)."""
    copy = logging.makeLogRecord(record.__dict__)
    copy.msg, copy.args = record.getMessage(), None
    if record.exc_info:
        copy.exc_text = logging.Formatter().formatException(record.exc_info)
        copy.exc_info = None
    return copy


def _replay(records: Iterable[logging.LogRecord]) -> None:
    for record in records:
        target = logging.getLogger(record.name)
        if target.isEnabledFor(record.levelno):
            target.handle(record)
