"""Vectorised join of board-power samples onto layer execution windows.

Semantics (those of the upstream reference tool, minus its truncation at the end of the log):
a sample at time ``t`` belongs to the window ``[start, end]`` when ``start <= t <= end``; the
layer power of a window is the mean of its samples (NaN when it holds none); the power
excluding idle is that mean minus the idle power. Every window is kept.

Implementation: the samples are sorted once and summed cumulatively; both ends of every window
are located with ``np.searchsorted``, so a window's sum and count are two differences of the
prefix arrays. No Python loop runs per window, cycle or sample, and the result does not
depend on the order of the inputs.

Exact sums: a float running sum over the whole log loses the low digits of every window after
one huge reading (one 1e20 µW sample shifts every later window by milliwatts, larger ones by
watts). So the readings, whole microwatts in both dialects (mV·mA, mW·1000), are summed as
int64, whose differences are exact (wrapping modulo 2**64 included) whatever lies elsewhere in
the log; the sub-microwatt remainders are summed apart as floats (each below 0.5 µW, so no
large magnitude), and readings too large for the integer sums (above ``EXACT_LIMIT_UW``)
are added to the windows that hold them, and to no other.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from power_modelling.core.pages import on_ordinary_pages

logger = logging.getLogger(__name__)

UNKNOWN_LAYER_TYPE = "Unknown"

#: The layer-wise table's power columns (upstream's names: analysis code keeps working).
POWER_INCLUDING_IDLE = "layer_power_including_idle_power_micro_watt"
POWER_EXCLUDING_IDLE = "layer_power_excluding_idle_power_micro_watt"
#: Columns of the layer-wise table, in order (upstream's names plus ``n_samples``).
LAYERWISE_COLUMNS = (
    "cycle",
    "layer_name",
    "layer_type",
    POWER_INCLUDING_IDLE,
    POWER_EXCLUDING_IDLE,
    "layer_run_time",
    "n_samples",
)

_NAT = np.iinfo(np.int64).min  # int64 view of NaT


def _as_ns(values: pd.Series | np.ndarray) -> np.ndarray:
    """Timestamps as int64 nanoseconds (NaT -> ``_NAT``), whatever their stored resolution."""
    return np.asarray(pd.Series(values).astype("datetime64[ns]")).view(np.int64)


def _sorted_samples(samples: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, int]:
    """Valid samples as (times in ns, power in µW) sorted by time, and the count dropped."""
    times = _as_ns(samples["timestamp"])
    power = samples["power_uw"].to_numpy(dtype=np.float64)
    valid = (times != _NAT) & np.isfinite(power)
    n_invalid = int(valid.size - np.count_nonzero(valid))
    if n_invalid:
        times, power = times[valid], power[valid]
    if times.size > 1 and not np.all(times[1:] >= times[:-1]):
        order = np.argsort(times, kind="stable")
        times, power = times[order], power[order]
    return times, power, n_invalid


def _window_sums(
    times: np.ndarray, power: np.ndarray, start: np.ndarray, end: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per window: mean power (NaN if empty), sample count, first and one-past-last sample."""
    lo = np.searchsorted(times, start, side="left")
    hi = np.searchsorted(times, end, side="right")
    no_window = (start == _NAT) | (end == _NAT) | (start > end)
    hi[no_window] = lo[no_window]
    counts = hi - lo
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = range_sums(power, lo, hi) / counts
    mean[counts == 0] = np.nan
    return mean, counts, lo, hi


#: Readings up to this magnitude (µW, about 1.1 MW: beyond any device) are summed exactly as
#: integers; a window's integer sum stays below 2**63 up to 2**22 samples of that size.
EXACT_LIMIT_UW = float(2**40)
_SAFE_INT_SUM = 2**62


def range_sums(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``values[lo[i]:hi[i]].sum()`` for every ``i`` (``lo <= hi``), from prefix sums, exact
    to float rounding whatever the values outside each range (see the module docstring).

    ``values`` are finite floats. Three prefix arrays: whole units as int64 (differences are
    exact, also when the running sum wraps), the remainders below one unit as floats, and
    the values beyond ``EXACT_LIMIT_UW`` as floats, added only to the ranges holding one.
    """
    whole = np.rint(values)
    magnitude = np.abs(whole)
    largest = float(magnitude.max()) if magnitude.size else 0.0
    ordinary = None if largest <= EXACT_LIMIT_UW else magnitude <= EXACT_LIMIT_UW
    del magnitude
    units = (whole if ordinary is None else np.where(ordinary, whole, 0.0)).astype(np.int64)
    sums = _prefix_difference(units, lo, hi).astype(np.float64)
    remainder = values - whole
    del whole
    if ordinary is not None:
        remainder[~ordinary] = 0.0
    if remainder.any():
        sums += _prefix_difference(remainder, lo, hi)
    if ordinary is not None:  # only the windows holding a huge reading get it
        huge = np.flatnonzero(~ordinary)
        first, last = np.searchsorted(huge, lo), np.searchsorted(huge, hi)
        holding = last > first
        with np.errstate(over="ignore", invalid="ignore"):
            sums[holding] += _prefix_difference(values[huge], first[holding], last[holding])
    # A range of more than 2**22 near-limit readings could pass 2**63: sum those as floats.
    largest_unit = min(largest, EXACT_LIMIT_UW)
    counts = hi - lo
    if counts.size and float(counts.max()) * largest_unit >= _SAFE_INT_SUM:
        risky = counts * largest_unit >= _SAFE_INT_SUM
        sums[risky] = _prefix_difference(values, lo[risky], hi[risky])
    return sums


def _prefix_difference(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``prefix[hi] - prefix[lo]`` of the running sum of ``values`` (int64 wraps silently,
    and its differences stay exact modulo 2**64)."""
    prefix = np.zeros(values.size + 1, dtype=values.dtype)
    np.cumsum(values, out=prefix[1:])
    return prefix[hi] - prefix[lo]


def _covered_samples(n_samples: int, lo: np.ndarray, hi: np.ndarray) -> int:
    """How many samples fall inside at least one window (a difference array over samples)."""
    if n_samples == 0:
        return 0
    delta = np.bincount(lo, minlength=n_samples + 1) - np.bincount(hi, minlength=n_samples + 1)
    return int(np.count_nonzero(np.cumsum(delta[:n_samples]) > 0))


def _layer_execution_rank(codes: np.ndarray, names: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Rank of each layer by its first window end (ties and untimed layers by name)."""
    first_end = np.full(names.size, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first_end, codes, np.where(end == _NAT, np.iinfo(np.int64).max, end))
    by_name = np.argsort(np.argsort(names.astype(str), kind="stable"), kind="stable")
    order = np.lexsort((by_name, first_end))
    rank = np.empty(names.size, dtype=np.int64)
    rank[order] = np.arange(names.size)
    return rank


def _layer_blocks_order(
    cycle: np.ndarray, codes: np.ndarray, layer_rank: np.ndarray
) -> np.ndarray | None:
    """The output order of windows stored as a latency file holds them, layer by layer with
    cycles 1..C each (every layer the same C): a transpose of the layer blocks, without the
    scatter; ``None`` for any other layout (the general path orders and checks it)."""
    layers = layer_rank.size
    if cycle.size % layers or layers < 2:
        return None
    cycles = cycle.size // layers
    blocks = codes[::cycles]
    if np.unique(blocks).size != layers:
        return None
    if not (cycle.reshape(layers, cycles) == np.arange(1, cycles + 1)).all():
        return None
    if not (codes.reshape(layers, cycles) == blocks[:, None]).all():
        return None
    in_rank_order = np.argsort(layer_rank[blocks], kind="stable")
    return np.arange(cycle.size).reshape(layers, cycles)[in_rank_order].T.ravel()


def _output_order(
    cycle: np.ndarray, codes: np.ndarray, names: np.ndarray, layer_rank: np.ndarray, source: str
) -> np.ndarray | None:
    """Row order by (cycle, layer execution rank); None when already in that order.

    The keys are dense integers, so the order is a scatter into key slots (O(n), no sort).
    Raises ``ValueError`` on a repeated (cycle, layer) pair, which would make the table ambiguous.
    """
    if cycle.size == 0:
        return None
    by_layer = _layer_blocks_order(cycle, codes, layer_rank)
    if by_layer is not None:
        return by_layer
    key = cycle * layer_rank.size + layer_rank[codes]
    if np.all(key[1:] > key[:-1]):
        return None
    key -= key.min()
    if key.max() > 4 * key.size:  # sparse cycle numbers: sort instead
        order = np.argsort(key, kind="stable")
        repeated = np.flatnonzero(key[order][1:] == key[order][:-1])
        duplicates = order[repeated + 1]
    else:
        slots = np.bincount(key)
        duplicates = np.flatnonzero(slots[key] > 1)
        row_of_slot = np.full(slots.size, -1, dtype=np.int64)
        row_of_slot[key] = np.arange(key.size)
        order = row_of_slot[row_of_slot >= 0]
    if duplicates.size:
        row = int(duplicates[0])
        raise ValueError(
            f"{source}: layer '{names[codes[row]]}' has two windows for cycle {int(cycle[row])} "
            f"(row {row}); expected one window per layer and cycle"
        )
    return order


def _string_column(labels: np.ndarray, codes: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """``labels[codes]`` as a ``str`` column, decoded from a dictionary array (fast in Arrow)."""
    dictionary = pa.array([str(label) for label in labels], type=pa.large_string())
    indices = pa.array(codes.astype(np.int32, copy=False))
    decoded = pa.DictionaryArray.from_arrays(indices, dictionary).cast(pa.large_string())
    return pd.array(decoded, dtype="str")


@dataclass
class _Join:
    """Windows in output order with their sample counts and mean power."""

    cycle: np.ndarray
    codes: np.ndarray  # index into names
    names: np.ndarray  # layer names, sorted
    latency: np.ndarray
    mean: np.ndarray  # NaN where no sample
    counts: np.ndarray
    n_samples: int
    n_samples_used: int
    n_invalid_samples: int
    n_untimed: int


def _join(samples: pd.DataFrame, windows: pd.DataFrame, source: str) -> _Join:
    """Validate the windows, put them in output order and join the samples onto them."""
    times, power, n_invalid_samples = _sorted_samples(samples)
    start, end = _as_ns(windows["start"]), _as_ns(windows["end"])
    cycle = windows["cycle"].to_numpy(dtype=np.int64)
    if cycle.size and cycle.min() < 1:
        row = int(np.argmin(cycle))
        raise ValueError(
            f"{source}: layer '{windows['layer_name'].iloc[row]}' has cycle {int(cycle[row])}; "
            "cycles are numbered from 1"
        )
    codes, names = pd.factorize(windows["layer_name"], sort=True)
    names = np.asarray(names, dtype=object)
    order = _output_order(cycle, codes, names, _layer_execution_rank(codes, names, end), source)
    latency = windows["latency_ms"].to_numpy(dtype=np.float64)
    if order is not None:  # in execution order the window ends are nearly sorted: faster search
        codes, cycle, start, end, latency = (a[order] for a in (codes, cycle, start, end, latency))
    mean, counts, lo, hi = _window_sums(times, power, start, end)
    return _Join(
        cycle=cycle,
        codes=codes,
        names=names,
        latency=latency,
        mean=mean,
        counts=counts,
        n_samples=int(times.size),
        n_samples_used=_covered_samples(times.size, lo, hi),
        n_invalid_samples=n_invalid_samples,
        n_untimed=int(np.count_nonzero((start == _NAT) | (end == _NAT))),
    )


def _layer_types(names: np.ndarray, descriptions: pd.DataFrame) -> np.ndarray:
    """Engine-info ``LayerType`` of each layer name, ``Unknown`` when not described."""
    if len(descriptions):
        known = descriptions.drop_duplicates("layer_name").set_index("layer_name")["layer_type"]
        types = known.reindex(pd.Index(names, dtype=object)).to_numpy(dtype=object)
    else:
        types = np.full(names.size, None, dtype=object)
    return np.where(pd.isna(types), UNKNOWN_LAYER_TYPE, types).astype(str).astype(object)


@on_ordinary_pages
def map_power_to_windows(
    samples: pd.DataFrame,
    windows: pd.DataFrame,
    descriptions: pd.DataFrame,
    idle_power_uw: float,
    *,
    min_samples_per_layer: int = 10,
    source: str = "model",
    warn: bool = True,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Assign power samples to layer windows; return the layer-wise table and a quality report.

    Args:
        samples: ``timestamp`` (datetime64), ``power_uw`` (float) in any order.
        windows: ``layer_name``, ``cycle`` (1-based), ``start``, ``end`` (datetime64, NaT when
            the latency file has no timestamps), ``latency_ms``, in any order.
        descriptions: ``layer_name``, ``layer_type`` of the engine info (may be empty).
        idle_power_uw: idle power of the device in microwatts.
        min_samples_per_layer: a layer with fewer samples than this over all its windows is
            reported (``layers_below_min_samples``) and, with ``warn``, logged as a warning.
        source: name of the model, used in messages.

    Returns:
        The table with ``LAYERWISE_COLUMNS`` ordered by cycle and execution order of the
        layers, and a dict of counts (see ``docs/power_mapping.md``).

    Raises:
        ValueError: a cycle number below 1, or two windows of one layer in one cycle.
    """
    join = _join(samples, windows, source)
    types = _layer_types(join.names, descriptions)
    type_labels, type_of_layer = np.unique(types.astype(str), return_inverse=True)
    table = pd.DataFrame(
        {
            "cycle": join.cycle,
            "layer_name": _string_column(join.names, join.codes),
            "layer_type": _string_column(type_labels, type_of_layer[join.codes]),
            "layer_power_including_idle_power_micro_watt": join.mean,
            "layer_power_excluding_idle_power_micro_watt": join.mean - float(idle_power_uw),
            "layer_run_time": join.latency,
            "n_samples": join.counts.astype(np.int64),
        },
        columns=list(LAYERWISE_COLUMNS),
    )
    return table, _quality_report(join, types, min_samples_per_layer, source, warn)


EMPTY_SAMPLES = pd.DataFrame(
    {"timestamp": pd.Series(dtype="datetime64[ns]"), "power_uw": pd.Series(dtype="float64")}
)
EMPTY_DESCRIPTIONS = pd.DataFrame({"layer_name": [], "layer_type": []}, dtype=object)


@on_ordinary_pages
def map_model_files(
    load_samples: Callable[[], pd.DataFrame] | None,
    load_windows: Callable[[], pd.DataFrame],
    load_descriptions: Callable[[], pd.DataFrame] | None,
    idle_power_uw: float,
    *,
    min_samples_per_layer: int = 10,
    source: str = "model",
) -> tuple[pd.DataFrame, dict[str, Any], float]:
    """``map_power_to_windows`` of one model's stored tables, read by their loaders (picklable
    callables: this runs in the Kedro process or a worker); missing samples or descriptions
    are empty. Returns the table, the report and the seconds it took."""
    began = time.perf_counter()
    table, report = map_power_to_windows(
        EMPTY_SAMPLES if load_samples is None else load_samples(),
        load_windows(),
        EMPTY_DESCRIPTIONS if load_descriptions is None else load_descriptions(),
        idle_power_uw,
        min_samples_per_layer=min_samples_per_layer,
        source=source,
    )
    return table, report, time.perf_counter() - began


@on_ordinary_pages
def summarise_power_mapping(
    samples: pd.DataFrame,
    windows: pd.DataFrame,
    descriptions: pd.DataFrame,
    *,
    min_samples_per_layer: int = 10,
    source: str = "model",
) -> dict[str, Any]:
    """The quality report of ``map_power_to_windows`` without building the table."""
    join = _join(samples, windows, source)
    types = _layer_types(join.names, descriptions)
    return _quality_report(join, types, min_samples_per_layer, source, warn=True)


def _quality_report(
    join: _Join, types: np.ndarray, min_samples_per_layer: int, source: str, warn: bool
) -> dict[str, Any]:
    """Counts of one model's mapping; optionally warns about layers with too few samples."""
    names, counts = join.names, join.counts
    per_layer = np.bincount(join.codes, weights=counts, minlength=names.size).astype(np.int64)
    is_below = per_layer < min_samples_per_layer
    below = dict(zip(names[is_below].astype(str), per_layer[is_below].tolist(), strict=True))
    if below and warn:
        logger.warning(
            "%s: %d of %d layers have fewer than %d power samples in total: %s",
            source,
            len(below),
            names.size,
            min_samples_per_layer,
            ", ".join(f"{name} ({count})" for name, count in sorted(below.items())),
        )
    with_samples = int(np.count_nonzero(counts))
    return {
        "windows_total": int(counts.size),
        "windows_with_samples": with_samples,
        "windows_without_samples": int(counts.size - with_samples),
        "windows_without_timestamps": join.n_untimed,
        "samples_total": join.n_samples,
        "samples_used": join.n_samples_used,
        "samples_outside_windows": join.n_samples - join.n_samples_used,
        "samples_invalid_dropped": join.n_invalid_samples,
        "layers_total": int(names.size),
        "layers_unknown_type": int(np.count_nonzero(types == UNKNOWN_LAYER_TYPE)),
        "median_samples_per_layer": float(np.median(per_layer)) if per_layer.size else 0.0,
        "layers_without_samples": sorted(str(n) for n in names[per_layer == 0]),
        "layers_below_min_samples": sorted(below),
        "layers_below_min_samples_count": len(below),
        "min_samples_per_layer": int(min_samples_per_layer),
    }
