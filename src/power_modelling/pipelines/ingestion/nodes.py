"""Ingestion nodes: the raw folder → typed per-model tables and a data-quality report."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from power_modelling.pipelines.ingestion.engine_info import describe_layers
from power_modelling.pipelines.ingestion.latency import LatencyFileError, parse_layer_latency
from power_modelling.pipelines.ingestion.metadata import idle_power, run_metadata
from power_modelling.pipelines.ingestion.power_log import DIALECT_OF_SHAPE, parse_power_log
from power_modelling.pipelines.ingestion.raw_files import (
    IDLE_POWER_FILE,
    LAYER_ENERGY_FILE,
    METADATA_SUFFIXES,
    Loader,
    group_by_model,
    required_files,
)

logger = logging.getLogger(__name__)

RAW_ROOT = "data/01_raw"


class ModelSkipped(Exception):
    """A model run that cannot be ingested; the message names the path and the problem."""


@dataclass
class ModelTables:
    """Everything ingestion produces for one model run."""

    power_samples: pd.DataFrame
    layer_windows: pd.DataFrame
    layer_descriptions: pd.DataFrame
    run_metadata: dict
    report: dict = field(default_factory=dict)


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


def ingest_models(
    raw_files: dict[str, Loader], raw_dataset: str, params: dict
) -> tuple[dict, dict, dict, dict, dict]:
    """Parse every model run of the raw folder → (power_samples, layer_windows,
    layer_descriptions, run_metadata, per-model reports). Unusable models are skipped and
    reported; no usable model at all is an error naming the raw folder."""
    raw_dir = f"{RAW_ROOT}/{raw_dataset}"
    ingested: dict[str, ModelTables] = {}
    reports: dict[str, dict] = {}
    models = group_by_model(raw_files)
    for number, (model, files) in enumerate(models.items(), start=1):
        logger.info("Ingesting %s (%d/%d)", model, number, len(models))
        try:
            ingested[model] = ingest_model(model, files, f"{raw_dir}/{model}", params)
            reports[model] = ingested[model].report
        except ModelSkipped as skipped:
            logger.error("Skipping model %s: %s", model, skipped)
            reports[model] = {"skipped": True, "reason": str(skipped)}
    if not ingested:
        raise ValueError(
            f"No usable model run in {raw_dir} ({len(models)} model folder(s) found): "
            "see the errors above and docs/ingestion.md"
        )
    return (
        {m: t.power_samples for m, t in ingested.items()},
        {m: t.layer_windows for m, t in ingested.items()},
        {m: t.layer_descriptions for m, t in ingested.items()},
        {m: t.run_metadata for m, t in ingested.items()},
        reports,
    )


def ingest_model(model: str, files: dict[str, Loader], folder: str, params: dict) -> ModelTables:
    """Parse one model run; raises ``ModelSkipped`` when a required file is missing or
    unreadable."""
    found, missing = required_files(model, files)
    if missing:
        raise ModelSkipped(f"{folder}: missing {', '.join(missing)}")
    max_lines = int(params.get("max_reported_lines", 5))

    power, power_report = parse_power_log(
        files[found["power_log"]](), f"{folder}/{found['power_log']}", max_lines
    )
    if power_report["out_of_order_samples"]:
        power = power.sort_values("timestamp", kind="stable", ignore_index=True)
    try:
        windows, latency_report = parse_layer_latency(
            files[found["latency"]](), f"{folder}/{found['latency']}", max_lines
        )
    except LatencyFileError as exc:
        raise ModelSkipped(str(exc)) from exc
    engine = _read_json(files, found["engine_info"], folder)
    metadata = _read_json(files, found["metadata"], folder)
    try:
        descriptions = describe_layers(engine, f"{folder}/{found['engine_info']}")
    except (ValueError, TypeError, KeyError) as exc:
        raise ModelSkipped(f"{folder}/{found['engine_info']}: {exc}") from exc
    layer_energy = _read_optional_json(files, LAYER_ENERGY_FILE, folder)

    dialect, dialect_notes = _dialect(found["metadata"], power_report, latency_report)
    has_windows = bool(latency_report["has_power_windows"])
    report = {
        "dialect": dialect,
        "dialect_notes": dialect_notes,
        "has_power_windows": has_windows,
        "power_log": power_report,
        "latency": latency_report,
        "layers": _layer_cross_check(
            windows, descriptions, folder, int(params.get("max_reported_names", 50))
        ),
        "engine_layers": len(descriptions),
    }
    windows = windows.assign(layer_name=windows["layer_name"].astype(str))
    meta = run_metadata(model, dialect, has_windows, metadata, layer_energy)
    return ModelTables(power, windows, descriptions, meta, report)


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
    not_described = [name for name in timed if name not in set(described)]
    not_timed = [name for name in described if name not in set(timed)]
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
