"""Plausibility ranges from parameters, and the vectorised search for repeated timestamps."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from power_modelling.core.raw.plausibility import (
    DEFAULT_RANGES,
    PlausibleRanges,
    idle_power_range,
    outside,
    plausible_ranges,
    repeats_of_earlier,
)
from tests.helpers import PROJECT_ROOT


def test_defaults_are_those_of_the_parameters_file():
    import yaml  # noqa: PLC0415

    params = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_ingestion.yml").read_text())
    ingestion = params["ingestion"]
    for dialect, default in DEFAULT_RANGES.items():
        assert plausible_ranges(ingestion, dialect) == default
        assert plausible_ranges(None, dialect) == default
    assert idle_power_range(ingestion) == idle_power_range(None) == (1e5, 3e9)


def test_a_partial_block_keeps_the_other_defaults():
    ranges = plausible_ranges({"plausible": {"jetson": {"power_uw": [1, 2]}}}, "jetson")
    assert ranges == PlausibleRanges(
        power_uw=(1.0, 2.0),
        latency_ms=DEFAULT_RANGES["jetson"].latency_ms,
        window_ms=DEFAULT_RANGES["jetson"].window_ms,
    )


@pytest.mark.parametrize("value", [[2, 1], [1], "0..5", [0, None], [True, 2], [float("nan"), 1]])
def test_unusable_ranges_are_refused_naming_the_key(value):
    with pytest.raises(ValueError, match=r"^parameter ingestion.plausible.nvml.latency_ms: "):
        plausible_ranges({"plausible": {"nvml": {"latency_ms": value}}}, "nvml")


def test_outside_is_inclusive_and_nan_is_outside():
    values = np.array([-1.0, 0.0, 5.0, 10.0, 10.5, np.nan])
    assert outside(values, (0.0, 10.0)).tolist() == [True, False, False, False, True, True]
    assert outside(values, None).tolist() == [False] * 5 + [True]


@settings(max_examples=100, deadline=None)
@given(
    runs=st.lists(st.lists(st.integers(0, 6), min_size=1, max_size=8), min_size=1, max_size=4),
    grouped=st.booleans(),
)
def test_repeats_of_earlier_match_a_plain_scan(runs, grouped):
    times = np.array([t for run in runs for t in run], dtype=np.int64)
    groups = np.repeat(np.arange(len(runs)), [len(run) for run in runs]) if grouped else None
    seen, expected = set(), []
    for position, time in enumerate(times.tolist()):
        key = (groups[position] if grouped else 0, time)
        if key in seen:
            expected.append(position)
        seen.add(key)
    assert repeats_of_earlier(times, groups).tolist() == expected
