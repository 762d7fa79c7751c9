"""Ingestion nodes: the raw folder → typed per-model tables and a data-quality report."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from functools import partial
from typing import Any

import pandas as pd

from power_modelling.core.engines import describe_layers
from power_modelling.core.layers import RAW_ROOT
from power_modelling.core.raw.files import (
    IDLE_POWER_FILE,
    LAYER_ENERGY_FILE,
    METADATA_SUFFIXES,
    Loader,
    group_by_model,
    required_files,
)
from power_modelling.core.raw.latency import LatencyFileError, parse_layer_latency
from power_modelling.core.raw.metadata import idle_power, run_metadata
from power_modelling.core.raw.power_log import DIALECT_OF_SHAPE, parse_power_log

logger = logging.getLogger(__name__)


class ModelSkipped(Exception):
    """A model run that cannot be ingested; the message names the path and the problem."""


Table = Callable[[], Any]


def read_idle_power(raw_files: dict[str, Loader], raw_dataset: str) -> dict[str, Any]:
    """``idling_power.json`` → the ``idle_power`` record; fails naming the file when it is
    missing or unusable (no power can be put above idle without it)."""
    source = f"{RAW_ROOT}/{raw_dataset}/{IDLE_POWER_FILE}"
    if IDLE_POWER_FILE not in raw_files:
        raise ValueError(f"{source} is missing: the average idle power is required")
    try:
        record = json.loads(raw_files[IDLE_POWER_FILE]())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{source}: unreadable JSON ({exc})") from exc
    return idle_power(record, source)


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


def report_models(
    raw_files: dict[str, Loader], raw_dataset: str, params: dict
) -> dict[str, dict[str, Any]]:
    """Check and parse every model run of the raw folder, one at a time, → per-model reports.

    Decides which models are usable (``ingest_models`` writes only those) and logs every
    finding; the parsed tables are discarded. Unusable models are skipped and reported as
    ``{"skipped": true, "reason": ...}``; no usable model at all is an error naming the raw
    folder."""
    raw_dir = f"{RAW_ROOT}/{raw_dataset}"
    reports: dict[str, dict] = {}
    models = group_by_model(raw_files)
    for number, (model, files) in enumerate(models.items(), start=1):
        logger.info("Ingesting %s (%d/%d)", model, number, len(models))
        try:
            reports[model] = report_model(model, files, f"{raw_dir}/{model}", params)
        except ModelSkipped as skipped:
            logger.error("Skipping model %s: %s", model, skipped)
            reports[model] = {"skipped": True, "reason": str(skipped)}
    if all(report.get("skipped") for report in reports.values()):
        raise ValueError(
            f"No usable model run in {raw_dir} ({len(models)} model folder(s) found): "
            "see the errors above and docs/ingestion.md"
        )
    return reports


def ingest_models(
    raw_files: dict[str, Loader],
    raw_dataset: str,
    params: dict,
    model_reports: dict[str, dict[str, Any]],
) -> tuple[dict[str, Table], dict[str, Table], dict[str, Table], dict[str, Table]]:
    """The usable models' (power_samples, layer_windows, layer_descriptions, run_metadata)
    partitions, as loaders Kedro calls one at a time while saving.

    Each loader reads and parses only the raw file(s) its table needs, so one model's table
    is in memory at a time. The parsers' findings were logged by ``report_models``; the
    loaders parse quietly. Dialect and ``has_power_windows`` come from ``model_reports``."""
    raw_dir = f"{RAW_ROOT}/{raw_dataset}"
    max_lines = int(params.get("max_reported_lines", 5))
    tables: tuple[dict[str, Table], ...] = ({}, {}, {}, {})
    for model, files in group_by_model(raw_files).items():
        report = model_reports.get(model)
        if report is None or report.get("skipped"):
            continue
        folder = f"{raw_dir}/{model}"
        found, _ = required_files(model, files)
        loaders = (
            partial(_power_samples, files, found, folder, max_lines),
            partial(_layer_windows, files, found, folder, max_lines),
            partial(_layer_descriptions, files, found, folder),
            partial(_run_metadata, model, files, found, report),
        )
        for partitions, loader in zip(tables, loaders, strict=True):
            partitions[model] = loader
    power_samples, layer_windows, layer_descriptions, metadata = tables
    return power_samples, layer_windows, layer_descriptions, metadata


def report_model(model: str, files: dict[str, Loader], folder: str, params: dict) -> dict:
    """Check and parse one model run → its report (the tables are discarded); raises
    ``ModelSkipped`` when a required file is missing or unreadable."""
    found, missing = required_files(model, files)
    if missing:
        raise ModelSkipped(f"{folder}: missing {', '.join(missing)}")
    max_lines = int(params.get("max_reported_lines", 5))

    _, power_report = parse_power_log(
        files[found["power_log"]](), f"{folder}/{found['power_log']}", max_lines
    )
    try:
        windows, latency_report = parse_layer_latency(
            files[found["latency"]](), f"{folder}/{found['latency']}", max_lines
        )
    except LatencyFileError as exc:
        raise ModelSkipped(str(exc)) from exc
    engine = _read_json(files, found["engine_info"], folder)
    _read_json(files, found["metadata"], folder)
    try:
        descriptions = describe_layers(engine, f"{folder}/{found['engine_info']}")
    except (ValueError, TypeError, KeyError) as exc:
        raise ModelSkipped(f"{folder}/{found['engine_info']}: {exc}") from exc
    del engine
    _read_optional_json(files, LAYER_ENERGY_FILE, folder)

    dialect, dialect_notes = _dialect(found["metadata"], power_report, latency_report)
    return {
        "dialect": dialect,
        "dialect_notes": dialect_notes,
        "has_power_windows": bool(latency_report["has_power_windows"]),
        "power_log": power_report,
        "latency": latency_report,
        "layers": _layer_cross_check(
            windows, descriptions, folder, int(params.get("max_reported_names", 50))
        ),
        "engine_layers": len(descriptions),
    }


def build_report(model_reports: dict[str, dict], idle: dict[str, Any]) -> dict[str, Any]:
    """The ``ingestion`` section of data_quality.json: one entry per model plus a summary."""
    skipped = {m: r["reason"] for m, r in model_reports.items() if r.get("skipped")}
    ingested = {m: r for m, r in model_reports.items() if m not in skipped}
    summary = {
        "models_found": len(model_reports),
        "models_ingested": len(ingested),
        "models_skipped": len(skipped),
        "skipped": skipped,
        "avg_idle_power_uw": idle["avg_idle_power_uw"],
        "malformed_power_lines": sum(r["power_log"]["malformed"] for r in ingested.values()),
        "models_without_power_windows": sorted(
            m for m, r in ingested.items() if not r["has_power_windows"]
        ),
    }
    return {"_summary": summary, **model_reports}


@contextmanager
def _quiet_parsers() -> Iterator[None]:
    """Mute the parsers' own logging (their findings were logged once, by report_models)."""
    loggers = [logging.getLogger(f.__module__) for f in (parse_power_log, parse_layer_latency)]
    disabled = [log.disabled for log in loggers]
    for log in loggers:
        log.disabled = True
    try:
        yield
    finally:
        for log, was in zip(loggers, disabled, strict=True):
            log.disabled = was


def _power_samples(
    files: dict[str, Loader], found: dict[str, str], folder: str, max_lines: int
) -> pd.DataFrame:
    with _quiet_parsers():
        power, report = parse_power_log(
            files[found["power_log"]](), f"{folder}/{found['power_log']}", max_lines
        )
    if report["out_of_order_samples"]:
        power = power.sort_values("timestamp", kind="stable", ignore_index=True)
    return power


def _layer_windows(
    files: dict[str, Loader], found: dict[str, str], folder: str, max_lines: int
) -> pd.DataFrame:
    with _quiet_parsers():
        windows, _ = parse_layer_latency(
            files[found["latency"]](), f"{folder}/{found['latency']}", max_lines
        )
    return windows.assign(layer_name=windows["layer_name"].astype(str))


def _layer_descriptions(
    files: dict[str, Loader], found: dict[str, str], folder: str
) -> pd.DataFrame:
    engine = json.loads(files[found["engine_info"]]())
    return describe_layers(engine, f"{folder}/{found['engine_info']}")


def _run_metadata(
    model: str, files: dict[str, Loader], found: dict[str, str], report: dict[str, Any]
) -> dict:
    metadata = json.loads(files[found["metadata"]]())
    layer_energy = None
    if LAYER_ENERGY_FILE in files:  # optional; report_models warned if it is unreadable
        with suppress(json.JSONDecodeError, UnicodeDecodeError):
            layer_energy = json.loads(files[LAYER_ENERGY_FILE]())
    return run_metadata(
        model, report["dialect"], report["has_power_windows"], metadata, layer_energy
    )


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


def _dialect(metadata_file: str, power_report: dict, latency_report: dict) -> tuple[str, list]:
    """The dialect from the metadata file name, with any disagreeing evidence listed."""
    dialect = next(d for d, suffix in METADATA_SUFFIXES.items() if metadata_file.endswith(suffix))
    expected_form = {"jetson": "2-element", "nvml": "3-element"}[dialect]
    notes = []
    shape = power_report["shape"]
    if shape is not None and DIALECT_OF_SHAPE[shape] != dialect:
        notes.append(f"power log lines are {shape} ({DIALECT_OF_SHAPE[shape]})")
    if latency_report["form"] not in (expected_form, "bare"):
        notes.append(f"latency entries are {latency_report['form']}")
    if notes:
        logger.warning("%s says %s, but %s", metadata_file, dialect, "; ".join(notes))
    return dialect, notes


def _layer_cross_check(
    windows: pd.DataFrame, descriptions: pd.DataFrame, folder: str, max_names: int
) -> dict[str, Any]:
    """Layers timed but not described, and described but not timed (names and counts)."""
    timed = list(windows["layer_name"].cat.categories)
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
