"""Ingestion nodes: the raw folder → typed per-model tables and a data-quality report."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import pandas as pd

from power_modelling.core.engines import describe_layers
from power_modelling.core.layers import RAW_ROOT
from power_modelling.core.raw.files import (
    DEVICE_FILE,
    IDLE_POWER_FILE,
    LAYER_ENERGY_FILE,
    METADATA_SUFFIXES,
    Loader,
    group_by_model,
    required_files,
)
from power_modelling.core.raw.latency import parse_layer_latency
from power_modelling.core.raw.metadata import idle_power, run_metadata
from power_modelling.core.raw.model_files import (
    LatencyResult,
    read_latency_file,
    read_power_log_file,
)
from power_modelling.core.raw.plausibility import (
    PlausibleRanges,
    idle_power_range,
    plausible_ranges,
)
from power_modelling.core.raw.power_log import DIALECT_OF_SHAPE, parse_power_log
from power_modelling.parallel import ParallelSettings, Prefetcher, work_seconds

logger = logging.getLogger(__name__)


#: Parsing rates on one core (files read, parsed and shipped), to tell whether worker processes
#: pay off (``power_modelling.parallel``): measured on generated Jetson models.
LATENCY_BYTES_PER_S = 150e6
POWER_LOG_BYTES_PER_S = 150e6


class ModelSkipped(Exception):
    """A model run that cannot be ingested; the message names the path and the problem."""


Table = Callable[[], Any]


def read_idle_power(
    raw_files: dict[str, Loader], raw_dataset: str, params: dict | None = None
) -> dict[str, Any]:
    """``idling_power.json`` → the ``idle_power`` record; fails naming the file when it is
    missing or unusable (no power can be put above idle without it), or when its value lies
    outside ``plausible_idle_power_uw`` (with a hint at the unit it was probably given in)."""
    source = f"{RAW_ROOT}/{raw_dataset}/{IDLE_POWER_FILE}"
    if IDLE_POWER_FILE not in raw_files:
        raise ValueError(f"{source} is missing: the average idle power is required")
    try:
        record = json.loads(raw_files[IDLE_POWER_FILE]())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{source}: unreadable JSON ({exc})") from exc
    return idle_power(record, source, idle_power_range(params))


def read_device(raw_files: dict[str, Loader], raw_dataset: str) -> dict[str, Any]:
    """The raw folder's optional ``device.json`` (``name``, ``kind``, ...): the device the
    models will belong to. Absent → an unknown device, said once in the log."""
    source = f"{RAW_ROOT}/{raw_dataset}/{DEVICE_FILE}"
    if DEVICE_FILE not in raw_files:
        logger.info("%s not given: the models' device is unknown (docs/own-data.md)", source)
        return {"name": None, "kind": None, "source": None}
    try:
        device = json.loads(raw_files[DEVICE_FILE]())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{source}: unreadable JSON ({exc})") from exc
    if not isinstance(device, dict) or not isinstance(device.get("name"), str):
        raise ValueError(
            f'{source}: expected {{"name": "<device>", "kind": "jetson" | "nvml", ...}}'
        )
    logger.info("Device of %s: %s (%s)", raw_dataset, device["name"], device.get("kind"))
    return {**device, "source": source}


def record_data_version(version: dict[str, str], raw_dataset: str) -> dict[str, str]:
    """Keep the raw folder's version (DVC hash or git commit) with the ingested tables, so runs
    that start later (``--pipelines modelling``) still know which data they were trained on."""
    if version.get("raw_dataset") != raw_dataset:
        raise ValueError(
            f"raw_data_version describes {version.get('raw_dataset')!r}, but raw_dataset is "
            f"{raw_dataset!r}: both must come from the same runtime parameter"
        )
    identity = version.get("raw_dataset.dvc_md5") or version.get("raw_dataset.git_commit")
    logger.info(
        "Raw dataset %s: %s %s", raw_dataset, version.get("raw_dataset.versioning"), identity or ""
    )
    if version.get("raw_dataset.git_dirty") == "true":
        logger.warning("%s/%s has uncommitted changes since %s", RAW_ROOT, raw_dataset, identity)
    return version


def ingest_models(
    raw_files: dict[str, Loader],
    raw_dataset: str,
    params: dict,
    parallel: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Table], dict[str, Table], dict[str, Table], dict[str, Table], dict]:
    """Every model run of the raw folder → its ``layer_windows``, ``power_samples``,
    ``layer_descriptions`` and ``run_metadata`` partitions and its ingestion report, each raw
    file parsed exactly once.

    The small files (engine description, metadata, layer energy) are read and checked here, so
    a model with a missing or unreadable one is skipped before anything is written (reported as
    ``{"skipped": true, "reason": ...}``); no usable model at all is an error naming the raw
    folder. The big files are parsed lazily by the partition loaders, which Kedro calls one at
    a time while saving, so one model's tables are in memory at a time; each parser logs its
    findings once and hands its report to the model's report partition, saved last. A latency
    file found unusable then leaves that model's tables empty and its report ``skipped``.

    ``parallel`` (``params:parallel``; default: sequential) parses the big files of the next
    models ahead on every core or a Dask cluster (``power_modelling.parallel``): the tables
    are still saved one model at a time, in the same order, with the same reports and logs.
    """
    raw_dir = f"{RAW_ROOT}/{raw_dataset}"
    max_lines = int(params.get("max_reported_lines", 5))
    max_names = int(params.get("max_reported_names", 50))
    ranges = {dialect: plausible_ranges(params, dialect) for dialect in METADATA_SUFFIXES}
    runs: dict[str, _ModelRun] = {}
    reports: dict[str, Table] = {}
    models = group_by_model(raw_files)
    for number, (model, files) in enumerate(models.items(), start=1):
        folder = f"{raw_dir}/{model}"
        try:
            runs[model] = _ModelRun.checked(model, files, folder, max_lines, max_names)
            runs[model].ranges = ranges[runs[model].dialect]
            logger.info(
                "Ingesting %s (%d/%d): %s dialect", model, number, len(models), runs[model].dialect
            )
            reports[model] = runs[model].report
        except ModelSkipped as skipped:
            logger.error("Skipping model %s: %s", model, skipped)
            reports[model] = partial(dict, skipped=True, reason=str(skipped))
    if not runs:
        raise ValueError(
            f"No usable model run in {raw_dir} ({len(models)} model folder(s) found): "
            "see the errors above and docs/ingestion.md"
        )
    settings = ParallelSettings.of(parallel)
    shared = _SharedParsing(runs, settings)
    if len(runs) > 1:
        where = settings.describe(len(runs), shared.work_s)
        logger.info("Parsing %d models in %s", len(runs), where)
    for run in runs.values():
        run.shared = shared
    return (
        {model: run.layer_windows for model, run in runs.items()},
        {model: run.power_samples for model, run in runs.items()},
        {model: run.layer_descriptions for model, run in runs.items()},
        {model: run.run_metadata for model, run in runs.items()},
        reports,
    )


class _ModelRun:
    """One model run being ingested: the small files checked up front, the big ones parsed by
    the first table loader that needs them, and the parse reports kept for the report."""

    def __init__(self, model: str, files: dict[str, Loader], found: dict[str, str], folder: str):
        self.model, self.files, self.found, self.folder = model, files, found, folder
        self.max_lines = self.max_names = 0
        self.descriptions = pd.DataFrame()
        self.metadata: dict = {}
        self.layer_energy: dict | None = None
        self.dialect = ""
        self.power_report: dict | None = None
        self.latency_report: dict | None = None
        self.timed_names: list[str] | None = None
        self.skipped: str | None = None
        self.skipped_file: str | None = None
        self.ranges: PlausibleRanges | None = None  # the dialect's, set by ingest_models
        self._power: tuple[pd.DataFrame, dict] | None = None
        self.shared: _SharedParsing

    @classmethod
    def checked(
        cls, model: str, files: dict[str, Loader], folder: str, max_lines: int, max_names: int
    ) -> _ModelRun:
        """Read and check the small files; ``ModelSkipped`` names what is missing or bad."""
        found, missing = required_files(model, files)
        if missing:
            raise ModelSkipped(f"{folder}: missing {', '.join(missing)}")
        run = cls(model, files, found, folder)
        run.max_lines, run.max_names = max_lines, max_names
        engine = _read_json(files, found["engine_info"], folder)
        try:
            run.descriptions = describe_layers(engine, f"{folder}/{found['engine_info']}")
        except (ValueError, TypeError, KeyError) as exc:
            raise ModelSkipped(f"{folder}/{found['engine_info']}: {exc}") from exc
        run.metadata = _read_json(files, found["metadata"], folder)
        run.layer_energy = _read_optional_json(files, LAYER_ENERGY_FILE, folder)
        run.dialect = next(
            d for d, suffix in METADATA_SUFFIXES.items() if found["metadata"].endswith(suffix)
        )
        return run

    def _path(self, role: str) -> str:
        return f"{self.folder}/{self.found[role]}"

    def layer_windows(self) -> pd.DataFrame:
        """The latency file parsed (once) → the windows. Empty, and the model skipped, when
        the file is unusable or nothing can be mapped: no usable entry, or timed windows but
        no usable power sample (the power log is then taken here, before anything of the
        model is saved, and its samples kept for ``power_samples``)."""
        result = self.shared.latency.take(self.model)
        self.latency_report, self.timed_names = result.report, result.timed_names
        windows = result.windows
        if result.skipped:
            self._skip(result.skipped)
        elif windows.empty:
            self._skip(_nothing_usable(self._path("latency"), self.latency_report), "latency")
        elif self.latency_report["has_power_windows"]:
            self._power = self.shared.power().take(self.model)
            self.power_report = self._power[1]
            if self.power_report["valid"] == 0:
                self._skip(_nothing_usable(self._path("power_log"), self.power_report), "power_log")
        return windows.iloc[:0] if self.skipped else windows

    def power_samples(self) -> pd.DataFrame:
        """The power log parsed (once) → the samples, in time order; empty for a skipped
        model."""
        if self._power is not None:
            power, self.power_report = self._power
            self._power = None
        elif self.skipped:  # its log is never parsed (an empty one stands in)
            power, report = _quietly(read_power_log_file, None, self._path("power_log"), 0)
            self.power_report = self.power_report or report
        else:
            power, self.power_report = self.shared.power().take(self.model)
        return power.iloc[:0] if self.skipped else power

    def latency_task(self) -> Callable[[], LatencyResult]:
        load = self.files[self.found["latency"]]
        return partial(read_latency_file, load, self._path("latency"), self.max_lines, self.ranges)

    def power_task(self) -> Callable[[], tuple[pd.DataFrame, dict]]:
        load = None if self.skipped else self.files[self.found["power_log"]]
        power_range = None if self.ranges is None else self.ranges.power_uw
        return partial(
            read_power_log_file, load, self._path("power_log"), self.max_lines, power_range
        )

    def _skip(self, reason: str, parsed: str | None = None) -> None:
        """Skip the model: its tables stay empty, its report says why (with the report of
        the ``parsed`` file that had nothing usable)."""
        self.skipped, self.skipped_file = reason, parsed
        logger.error("Skipping model %s: %s", self.model, reason)
        if parsed != "power_log":  # the log was not taken: it need not be parsed at all
            self.shared.discard_power(self.model)

    def layer_descriptions(self) -> pd.DataFrame:
        return self.descriptions.iloc[:0] if self.skipped else self.descriptions

    def run_metadata(self) -> dict:
        self._ensure_parsed()
        return run_metadata(
            self.model,
            self.dialect,
            bool(self.latency_report["has_power_windows"]),
            self.metadata,
            self.layer_energy,
        )

    def report(self) -> dict[str, Any]:
        """The model's ingestion report (``build_report`` sums them up)."""
        self._ensure_parsed()
        if self.skipped:
            details = {
                "power_log": self.power_report,
                "latency": self.latency_report,
            }.get(self.skipped_file)
            report = {"skipped": True, "reason": self.skipped}
            return report if details is None else {**report, self.skipped_file: details}
        dialect_notes = _dialect_notes(
            self.found["metadata"], self.dialect, self.power_report, self.latency_report
        )
        return {
            "dialect": self.dialect,
            "dialect_notes": dialect_notes,
            "has_power_windows": bool(self.latency_report["has_power_windows"]),
            "power_log": self.power_report,
            "latency": self.latency_report,
            "layers": _layer_cross_check(
                self.timed_names, self.descriptions, self.folder, self.max_names
            ),
            "engine_layers": len(self.descriptions),
        }

    def _ensure_parsed(self) -> None:
        """Kedro saves the tables before the reports and metadata (the node's output order),
        so the parsers have run; should a runner save in another order, parse now, quietly."""
        if self.latency_report is None:
            _quietly(self.layer_windows)
        if self.power_report is None:
            _quietly(self.power_samples)


class _SharedParsing:
    """The big files of all model runs, parsed by prefetching loaders: the latency files as
    Kedro asks for the windows, then the power logs (a model whose latency file is unusable
    gets no samples, so those tasks are made once the windows are known)."""

    def __init__(self, runs: dict[str, _ModelRun], settings: ParallelSettings) -> None:
        self.runs, self.settings = runs, settings
        latency = [run.files[run.found["latency"]] for run in runs.values()]
        power = [run.files[run.found["power_log"]] for run in runs.values()]
        self.work_s = work_seconds(latency, LATENCY_BYTES_PER_S)
        power_s = work_seconds(power, POWER_LOG_BYTES_PER_S)
        tasks = {model: run.latency_task() for model, run in sorted(runs.items())}
        self.latency = Prefetcher(tasks, settings, "the windows", self.work_s)
        self._power: Prefetcher | None = None
        self._power_s = power_s
        if self.work_s is not None and power_s is not None:
            self.work_s += power_s

    def discard_power(self, model: str) -> None:
        """``model`` is skipped: its power log is not parsed (or its result dropped)."""
        if self._power is not None:
            self._power.discard(model)

    def power(self) -> Prefetcher:
        if self._power is None:
            tasks = {model: run.power_task() for model, run in sorted(self.runs.items())}
            self._power = Prefetcher(tasks, self.settings, "the power samples", self._power_s)
        return self._power


def build_report(model_reports: dict[str, Table], idle: dict[str, Any]) -> dict[str, Any]:
    """The ``ingestion`` section of data_quality.json: one entry per model plus a summary."""
    model_reports = {model: load() for model, load in sorted(model_reports.items())}
    skipped = {m: r["reason"] for m, r in model_reports.items() if r.get("skipped")}
    ingested = {m: r for m, r in model_reports.items() if m not in skipped}
    summary = {
        "models_found": len(model_reports),
        "models_ingested": len(ingested),
        "models_skipped": len(skipped),
        "skipped": skipped,
        "avg_idle_power_uw": idle["avg_idle_power_uw"],
        "malformed_power_lines": sum(r["power_log"]["malformed"] for r in ingested.values()),
        "power_readings_out_of_range": _total(ingested, "power_log", "out_of_range"),
        "power_readings_repeating_a_timestamp": _total(
            ingested, "power_log", "duplicate_timestamps"
        ),
        "latency_entries_out_of_range": _total(ingested, "latency", "out_of_range_entries"),
        "latency_entries_repeating_an_end": _total(ingested, "latency", "duplicate_entries"),
        "models_without_power_windows": sorted(
            m for m, r in ingested.items() if not r["has_power_windows"]
        ),
    }
    return {"_summary": summary, **model_reports}


def _total(reports: dict[str, dict], file: str, count: str) -> int:
    return sum(int(report[file].get(count, 0)) for report in reports.values())


def _nothing_usable(path: str, report: dict[str, Any]) -> str:
    """Why a parsed file leaves nothing to ingest, with its counts."""
    if "lines_total" in report:  # a power log
        what, total = "power sample", f"{report['lines_total']} line(s)"
        counts = {
            "blank": report["blank"],
            "malformed": report["malformed"],
            "outside the plausible range": report["out_of_range"],
            "repeated timestamps": report["duplicate_timestamps"],
        }
    else:
        what, total = "latency entry", f"{report['entries']} entr(y/ies)"
        counts = {
            "invalid": report["invalid_entries"],
            "outside the plausible range": report["out_of_range_entries"],
            "repeated ends": report["duplicate_entries"],
        }
    found = ", ".join(f"{count} {kind}" for kind, count in counts.items() if count)
    return f"{path}: no usable {what} ({total}{': ' + found if found else ''})"


def _quietly(func: Callable[..., Any], *args: Any) -> Any:
    """``func(*args)`` with the parsers' logging muted (their findings were logged once)."""
    loggers = [logging.getLogger(f.__module__) for f in (parse_power_log, parse_layer_latency)]
    disabled = [log.disabled for log in loggers]
    for log in loggers:
        log.disabled = True
    try:
        return func(*args)
    finally:
        for log, was in zip(loggers, disabled, strict=True):
            log.disabled = was


def _read_json(files: dict[str, Loader], path: str, folder: str) -> Any:
    try:
        return json.loads(files[path]())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelSkipped(f"{folder}/{path}: unreadable JSON ({exc})") from exc


def _read_optional_json(files: dict[str, Loader], path: str, folder: str) -> Any:
    if path not in files:
        return None
    try:
        return _read_json(files, path, folder)
    except ModelSkipped as problem:
        logger.warning("Ignoring optional %s", problem)
        return None


def _dialect_notes(
    metadata_file: str, dialect: str, power_report: dict, latency_report: dict
) -> list[str]:
    """Evidence disagreeing with the dialect the metadata file name gives, listed and logged."""
    expected_form = {"jetson": "2-element", "nvml": "3-element"}[dialect]
    notes = []
    shape = power_report["shape"]
    if shape is not None and DIALECT_OF_SHAPE[shape] != dialect:
        notes.append(f"power log lines are {shape} ({DIALECT_OF_SHAPE[shape]})")
    if latency_report["form"] not in (expected_form, "bare"):
        notes.append(f"latency entries are {latency_report['form']}")
    if notes:
        logger.warning("%s says %s, but %s", metadata_file, dialect, "; ".join(notes))
    return notes


def _layer_cross_check(
    timed: list[str], descriptions: pd.DataFrame, folder: str, max_names: int
) -> dict[str, Any]:
    """Layers timed but not described, and described but not timed (names and counts)."""
    described = descriptions["layer_name"].astype(str).tolist()
    described_set, timed_set = set(described), set(timed)
    not_described = [name for name in timed if name not in described_set]
    not_timed = [name for name in described if name not in timed_set]
    for names, what in ((not_described, "not in the engine info"), (not_timed, "never timed")):
        if names:
            logger.warning("%s: %d layer(s) %s: %s", folder, len(names), what, names[:max_names])
    return {
        "timed": len(timed),
        "described": len(described),
        "in_latency_not_in_engine": {
            "count": len(not_described),
            "names": not_described[:max_names],
        },
        "in_engine_not_in_latency": {"count": len(not_timed), "names": not_timed[:max_names]},
    }
