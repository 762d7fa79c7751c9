"""Nodes of the power-mapping pipeline: one model partition in memory at a time."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import pandas as pd

from power_modelling.core.mapping import (
    EMPTY_DESCRIPTIONS,
    EMPTY_SAMPLES,
    map_model_files,
    summarise_power_mapping,
)
from power_modelling.parallel import ParallelSettings, Prefetcher, work_seconds

logger = logging.getLogger(__name__)

Partitions = dict[str, Callable[[], Any]]
#: Stored windows and samples read and mapped per second on one core (parquet bytes), to
#: tell whether worker processes pay off: measured on generated Jetson models.
PARQUET_BYTES_PER_S = 50e6
_SUFFIX = ".parquet"


def _by_model(partitions: Partitions) -> Partitions:
    """Partition loaders keyed by model id (a ``.parquet`` suffix in the id is dropped)."""
    return {key.removesuffix(_SUFFIX): load for key, load in partitions.items()}


def map_power(  # noqa: PLR0917 (a node: Kedro passes the inputs by position)
    power_samples: Partitions,
    layer_windows: Partitions,
    layer_descriptions: Partitions,
    idle_power: dict[str, Any],
    params: dict[str, Any],
    parallel: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Callable[[], pd.DataFrame]], dict[str, Callable[[], dict]]]:
    """The ``layerwise`` partitions, as loaders Kedro calls one at a time while saving, and
    each model's mapping report.

    Each table loader reads one model's inputs, maps its power samples onto its layer windows
    (``mapping.map_power_to_windows``, which also counts and warns) and returns the table, so
    only one model is in memory; the model's report loader then hands over those counts. The
    join runs once per model (should a runner ask for a report first, it is joined for it).
    ``parallel`` (``params:parallel``; default: sequential) maps the next models ahead on
    every core or a Dask cluster (``power_modelling.parallel``); one model's mapping is one
    task, and the tables are saved here in the same order with the same reports.
    """
    samples, windows = _by_model(power_samples), _by_model(layer_windows)
    descriptions = _by_model(layer_descriptions)
    idle_power_uw = float(idle_power["avg_idle_power_uw"])
    min_samples = int(params.get("min_samples_per_layer", 10))
    models = sorted(windows)
    without_windows = sorted(set(samples) - set(windows))
    if without_windows:
        logger.warning("Power samples without layer windows (not mapped): %s", without_windows)
    settings = ParallelSettings.of(parallel)
    inputs = [*windows.values(), *samples.values()]
    work_s = work_seconds(inputs, PARQUET_BYTES_PER_S)
    if len(models) > 1:
        where = settings.describe(len(models), work_s)
        logger.info("Mapping %d models in %s", len(models), where)
    tasks = {
        model: partial(
            map_model_files,
            samples.get(model),
            windows[model],
            descriptions.get(model),
            idle_power_uw,
            min_samples_per_layer=min_samples,
            source=model,
        )
        for model in models
    }
    mapped = Prefetcher(tasks, settings, "the layer-wise table", work_s)
    reports: dict[str, dict[str, Any]] = {}

    def mapper(index: int, model: str) -> Callable[[], pd.DataFrame]:
        def map_model() -> pd.DataFrame:
            _warn_missing(model, samples, descriptions)
            table, reports[model], seconds = mapped.take(model)
            logger.info(
                "[%d/%d] %s: %d windows (%d with samples) mapped in %.2f s",
                index,
                len(models),
                model,
                reports[model]["windows_total"],
                reports[model]["windows_with_samples"],
                seconds,
            )
            return table

        return map_model

    def reporter(model: str) -> Callable[[], dict[str, Any]]:
        def report() -> dict[str, Any]:
            if model not in reports:
                reports[model] = summarise_power_mapping(
                    samples[model]() if model in samples else EMPTY_SAMPLES,
                    windows[model](),
                    descriptions[model]() if model in descriptions else EMPTY_DESCRIPTIONS,
                    min_samples_per_layer=min_samples,
                    source=model,
                )
            return reports[model]

        return report

    tables = {model: mapper(i, model) for i, model in enumerate(models, start=1)}
    return tables, {model: reporter(model) for model in models}


def _warn_missing(model: str, samples: Partitions, descriptions: Partitions) -> None:
    if model not in samples:
        logger.warning("%s: no power samples; every window gets empty power", model)
    if model not in descriptions:
        logger.warning("%s: no layer descriptions; layer_type is 'Unknown'", model)


def report_power_mapping(model_reports: dict[str, Callable[[], dict]]) -> dict[str, dict]:
    """The ``power_mapping`` section of the data-quality report: the counts of every model's
    mapping (``docs/power_mapping.md``)."""
    return {model: load() for model, load in sorted(model_reports.items())}
