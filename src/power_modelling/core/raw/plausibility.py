"""Plausibility ranges of raw measurements, per dialect (``ingestion.plausible`` parameters).

A reading can parse cleanly and still be impossible: a negative board power, a layer that ran
for 1e12 ms (its window then spans the whole log and takes every sample). The parsers drop
values outside these ranges, count them and name the first lines or entries
(docs/ingestion.md); the defaults here are those of ``conf/base/parameters_ingestion.yml``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

Range = tuple[float, float]


@dataclass(frozen=True)
class PlausibleRanges:
    """Inclusive ``(min, max)`` ranges of one dialect's readings."""

    power_uw: Range  # one power reading (µW)
    latency_ms: Range  # one execution of a layer (ms)
    window_ms: Range  # one layer window: latency x repeats (ms)


#: Jetson boards draw tens of watts (AGX Orin ≤ 60 W); a datacentre GPU under NVML up to about
#: 1 kW (H200: 700 W). The ranges leave ample margin: they catch sign errors and garbage, not
#: unusual but real measurements.
DEFAULT_RANGES: dict[str, PlausibleRanges] = {
    "jetson": PlausibleRanges(
        power_uw=(0.0, 300e6), latency_ms=(0.0, 60_000.0), window_ms=(0.0, 600_000.0)
    ),
    "nvml": PlausibleRanges(
        power_uw=(0.0, 3_000e6), latency_ms=(0.0, 60_000.0), window_ms=(0.0, 600_000.0)
    ),
}
#: ``avg_idle_power`` of ``idling_power.json`` (µW): 0.1 W .. 3 kW.
DEFAULT_IDLE_POWER_UW: Range = (100e3, 3_000e6)


def plausible_ranges(params: Mapping[str, Any] | None, dialect: str) -> PlausibleRanges:
    """The ranges of ``dialect`` from the ``ingestion`` parameters (``plausible.<dialect>``),
    the defaults for what is not given; ``ValueError`` naming the key when one is unusable."""
    default = DEFAULT_RANGES[dialect]
    given = ((params or {}).get("plausible") or {}).get(dialect) or {}
    return PlausibleRanges(
        **{
            field: _range(given.get(field), getattr(default, field), f"plausible.{dialect}.{field}")
            for field in ("power_uw", "latency_ms", "window_ms")
        }
    )


def idle_power_range(params: Mapping[str, Any] | None) -> Range:
    """``plausible_idle_power_uw`` of the ``ingestion`` parameters (default 0.1 W .. 3 kW)."""
    value = (params or {}).get("plausible_idle_power_uw")
    return _range(value, DEFAULT_IDLE_POWER_UW, "plausible_idle_power_uw")


def _range(value: Any, default: Range, key: str) -> Range:
    if value is None:
        return default
    ok = (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        and not any(math.isnan(v) for v in value)
        and value[0] <= value[1]
    )
    if not ok:
        raise ValueError(
            f"parameter ingestion.{key}: expected [min, max] (numbers, min <= max), got {value!r}"
        )
    return float(value[0]), float(value[1])


def outside(values: np.ndarray, bounds: Range | None) -> np.ndarray:
    """Boolean mask of ``values`` outside the inclusive ``bounds`` (NaN is outside); only the
    NaN when ``bounds`` is ``None``."""
    if bounds is None:
        return np.isnan(values)
    low, high = bounds
    return ~((values >= low) & (values <= high))


def repeats_of_earlier(times: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
    """Positions (ascending) whose ``(group, time)`` an earlier position already holds: the
    duplicates to drop, the first occurrence kept. ``times``: int64; ``groups``: int codes in
    runs (each group's positions contiguous, as the parsers produce them) or ``None``.

    Logs are (nearly) in time order, so the common case is one ``np.diff``; otherwise a
    stable sort finds the repeats without a Python loop.
    """
    if times.size < 2:
        return np.zeros(0, dtype=np.int64)
    step = np.diff(times)
    same_group = None if groups is None else groups[1:] == groups[:-1]
    increasing = step > 0 if same_group is None else (step > 0) | ~same_group
    if increasing.all():
        return np.zeros(0, dtype=np.int64)
    non_decreasing = step >= 0 if same_group is None else (step >= 0) | ~same_group
    if non_decreasing.all():  # sorted: a repeat is next to what it repeats
        return np.flatnonzero(~increasing) + 1
    order = (
        np.argsort(times, kind="stable") if groups is None else np.lexsort((times, groups))
    )  # both stable: the first occurrence comes first
    keys_equal = times[order][1:] == times[order][:-1]
    if groups is not None:
        keys_equal &= groups[order][1:] == groups[order][:-1]
    return np.sort(order[1:][keys_equal])
