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
) -> dict[str, Callable[[], pd.DataFrame]]:
    """The ``layerwise`` partitions, as loaders Kedro calls one at a time while saving.

    Each loader reads one model's inputs, maps its power samples onto its layer windows
    (``mapping.map_power_to_windows``) and returns the table, so only one model is in memory.
    """
    samples, windows = _by_model(power_samples), _by_model(layer_windows)
    descriptions = _by_model(layer_descriptions)
    idle_power_uw = float(idle_power["avg_idle_power_uw"])
    models = sorted(windows)

    def mapper(index: int, model: str) -> Callable[[], pd.DataFrame]:
        def map_model() -> pd.DataFrame:
            began = time.perf_counter()
            table, quality = map_power_to_windows(
                *_model_inputs(model, samples, windows, descriptions, warn=False),
                idle_power_uw,
                source=model,
                warn=False,  # report_power_mapping warns, once
            )
            logger.info(
                "[%d/%d] %s: %d windows (%d with samples) mapped in %.2f s",
                index,
                len(models),
                model,
                quality["windows_total"],
                quality["windows_with_samples"],
                time.perf_counter() - began,
            )
            return table

        return map_model

    return {model: mapper(i, model) for i, model in enumerate(models, start=1)}


def report_power_mapping(
    power_samples: Partitions,
    layer_windows: Partitions,
    layer_descriptions: Partitions,
    params: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    """The ``power_mapping`` section of the data-quality report: counts per model.

    Loads one model at a time and repeats the window join without building the table (see
    ``docs/power_mapping.md``); warns about layers with fewer than ``min_samples_per_layer``
    samples in total.
    """
    samples, windows = _by_model(power_samples), _by_model(layer_windows)
    descriptions = _by_model(layer_descriptions)
    min_samples = int(params.get("min_samples_per_layer", 10))
    without_windows = sorted(set(samples) - set(windows))
    if without_windows:
        logger.warning("Power samples without layer windows (not mapped): %s", without_windows)
    report = {}
    for model in sorted(windows):
        report[model] = summarise_power_mapping(
            *_model_inputs(model, samples, windows, descriptions, warn=True),
            min_samples_per_layer=min_samples,
            source=model,
        )
    return report
