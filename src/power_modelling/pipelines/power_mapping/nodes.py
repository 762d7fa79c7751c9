"""Nodes of the power-mapping pipeline: one model partition in memory at a time."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pandas as pd

from power_modelling.core.mapping import map_power_to_windows, summarise_power_mapping

logger = logging.getLogger(__name__)

Partitions = dict[str, Callable[[], Any]]
_SUFFIX = ".parquet"

_EMPTY_SAMPLES = pd.DataFrame(
    {"timestamp": pd.Series(dtype="datetime64[ns]"), "power_uw": pd.Series(dtype="float64")}
)
_EMPTY_DESCRIPTIONS = pd.DataFrame({"layer_name": [], "layer_type": []}, dtype=object)


def _by_model(partitions: Partitions) -> Partitions:
    """Partition loaders keyed by model id (a ``.parquet`` suffix in the id is dropped)."""
    return {key.removesuffix(_SUFFIX): load for key, load in partitions.items()}


def _model_inputs(
    model: str, samples: Partitions, windows: Partitions, descriptions: Partitions, warn: bool
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Load one model's samples, windows and descriptions (empty frames when missing)."""
    if model not in samples and warn:
        logger.warning("%s: no power samples; every window gets empty power", model)
    if model not in descriptions and warn:
        logger.warning("%s: no layer descriptions; layer_type is 'Unknown'", model)
    return (
        samples[model]() if model in samples else _EMPTY_SAMPLES,
        windows[model](),
        descriptions[model]() if model in descriptions else _EMPTY_DESCRIPTIONS,
    )


def map_power(
    power_samples: Partitions,
    layer_windows: Partitions,
    layer_descriptions: Partitions,
    idle_power: dict[str, Any],
    params: dict[str, Any],
) -> tuple[dict[str, Callable[[], pd.DataFrame]], dict[str, Callable[[], dict]]]:
    """The ``layerwise`` partitions, as loaders Kedro calls one at a time while saving, and
    each model's mapping report.

    Each table loader reads one model's inputs, maps its power samples onto its layer windows
    (``mapping.map_power_to_windows``, which also counts and warns) and returns the table, so
    only one model is in memory; the model's report loader then hands over those counts. The
    join runs once per model (should a runner ask for a report first, it is joined for it).
    """
    samples, windows = _by_model(power_samples), _by_model(layer_windows)
    descriptions = _by_model(layer_descriptions)
    idle_power_uw = float(idle_power["avg_idle_power_uw"])
    min_samples = int(params.get("min_samples_per_layer", 10))
    models = sorted(windows)
    without_windows = sorted(set(samples) - set(windows))
    if without_windows:
        logger.warning("Power samples without layer windows (not mapped): %s", without_windows)
    reports: dict[str, dict[str, Any]] = {}

    def mapper(index: int, model: str) -> Callable[[], pd.DataFrame]:
        def map_model() -> pd.DataFrame:
            began = time.perf_counter()
            table, reports[model] = map_power_to_windows(
                *_model_inputs(model, samples, windows, descriptions, warn=True),
                idle_power_uw,
                min_samples_per_layer=min_samples,
                source=model,
            )
            logger.info(
                "[%d/%d] %s: %d windows (%d with samples) mapped in %.2f s",
                index,
                len(models),
                model,
                reports[model]["windows_total"],
                reports[model]["windows_with_samples"],
                time.perf_counter() - began,
            )
            return table

        return map_model

    def reporter(model: str) -> Callable[[], dict[str, Any]]:
        def report() -> dict[str, Any]:
            if model not in reports:
                reports[model] = summarise_power_mapping(
                    *_model_inputs(model, samples, windows, descriptions, warn=False),
                    min_samples_per_layer=min_samples,
                    source=model,
                )
            return reports[model]

        return report

    tables = {model: mapper(i, model) for i, model in enumerate(models, start=1)}
    return tables, {model: reporter(model) for model in models}


def report_power_mapping(model_reports: dict[str, Callable[[], dict]]) -> dict[str, dict]:
    """The ``power_mapping`` section of the data-quality report: the counts of every model's
    mapping (``docs/power_mapping.md``)."""
    return {model: load() for model, load in sorted(model_reports.items())}
