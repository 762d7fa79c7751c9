"""Nodes of the power-mapping pipeline: one model partition in memory at a time."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd

from .mapping import map_power_to_windows

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


def map_power(
    power_samples: Partitions,
    layer_windows: Partitions,
    layer_descriptions: Partitions,
    idle_power: dict[str, Any],
    params: dict[str, Any],
) -> Iterator[tuple[dict[str, pd.DataFrame], dict[str, Any]]]:
    """Map every model's power samples onto its layer windows, one model at a time.

    A generator node: for each model it yields ``({model: layer-wise table}, report)``, so
    Kedro writes the partition before the next model is loaded. ``report`` is the
    ``power_mapping`` section of the data-quality report, holding every model done so far
    (the last one written holds them all).

    Args:
        power_samples, layer_windows, layer_descriptions: partition loaders by model id.
        idle_power: the ``idle_power`` JSON (``avg_idle_power_uw``).
        params: ``power_mapping`` parameters (``min_samples_per_layer``).
    """
    samples_by_model = _by_model(power_samples)
    windows_by_model = _by_model(layer_windows)
    descriptions_by_model = _by_model(layer_descriptions)
    idle_power_uw = float(idle_power["avg_idle_power_uw"])
    min_samples = int(params.get("min_samples_per_layer", 10))

    report: dict[str, Any] = {}
    without_windows = sorted(set(samples_by_model) - set(windows_by_model))
    if without_windows:
        logger.warning("Power logs without layer windows (not mapped): %s", without_windows)
    models = sorted(windows_by_model)
    if not models:
        logger.warning("No layer_windows partitions: nothing to map")
        yield {}, report
        return

    for index, model in enumerate(models, start=1):
        began = time.perf_counter()
        if model in samples_by_model:
            samples = samples_by_model[model]()
        else:
            logger.warning("%s: no power samples; every window gets empty power", model)
            samples = _EMPTY_SAMPLES
        if model in descriptions_by_model:
            descriptions = descriptions_by_model[model]()
        else:
            logger.warning("%s: no layer descriptions; layer_type is 'Unknown'", model)
            descriptions = _EMPTY_DESCRIPTIONS
        table, report[model] = map_power_to_windows(
            samples,
            windows_by_model[model](),
            descriptions,
            idle_power_uw,
            min_samples_per_layer=min_samples,
            source=model,
        )
        quality = report[model]
        logger.info(
            "[%d/%d] %s: %d windows (%d with samples), %d of %d samples used, %.2f s",
            index,
            len(models),
            model,
            quality["windows_total"],
            quality["windows_with_samples"],
            quality["samples_used"],
            quality["samples_total"],
            time.perf_counter() - began,
        )
        yield {model: table}, dict(report)
