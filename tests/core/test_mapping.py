"""Rules of the window join, each pinned on a small hand-computed fixture (times in ms)."""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
import pytest
from benchmarks.generate_jetson import generate_run
from hypothesis import given, settings
from hypothesis import strategies as st

from power_modelling.core.mapping import (
    LAYERWISE_COLUMNS,
    map_power_to_windows,
    range_sums,
)

T0 = pd.Timestamp("2024-11-21 05:20:00")
IDLE = 1_000_000.0
INCL = "layer_power_including_idle_power_micro_watt"
EXCL = "layer_power_excluding_idle_power_micro_watt"


def samples(*readings: tuple[float, float]) -> pd.DataFrame:
    """Samples from ``(time_ms, power_uw)`` pairs."""
    times = [T0 + pd.Timedelta(milliseconds=t) for t, _ in readings]
    return pd.DataFrame(
        {
            "timestamp": pd.Series(times, dtype="datetime64[ns]"),
            "power_uw": pd.Series([p for _, p in readings], dtype="float64"),
        }
    )


def windows(*entries: tuple) -> pd.DataFrame:
    """Windows from ``(layer, cycle, end_ms, latency_ms[, repeats])``: start = end - lat * rep."""
    rows = [(e[0], e[1], e[2], e[3], e[4] if len(e) > 4 else 1) for e in entries]
    end = pd.Series([T0 + pd.Timedelta(milliseconds=r[2]) for r in rows], dtype="datetime64[ns]")
    span = pd.to_timedelta([r[3] * r[4] for r in rows], unit="ms")
    return pd.DataFrame(
        {
            "layer_name": [r[0] for r in rows],
            "cycle": np.array([r[1] for r in rows], dtype=np.int64),
            "start": end - span,
            "end": end,
            "latency_ms": np.array([r[3] for r in rows], dtype=np.float64),
            "repeats": np.array([r[4] for r in rows], dtype=np.int64),
        }
    )


def describe(**types: str) -> pd.DataFrame:
    return pd.DataFrame({"layer_name": list(types), "layer_type": list(types.values())})


def run(s: pd.DataFrame, w: pd.DataFrame, d: pd.DataFrame | None = None, **kw):
    return map_power_to_windows(s, w, describe() if d is None else d, IDLE, **kw)


def row(table: pd.DataFrame, layer: str, cycle: int = 1) -> pd.Series:
    match = table[(table["layer_name"] == layer) & (table["cycle"] == cycle)]
    assert len(match) == 1
    return match.iloc[0]


def test_single_layer_single_reading() -> None:
    table, report = run(samples((9.5, 5e6)), windows(("conv", 1, 10.0, 1.0)), describe(conv="C"))
    assert list(table.columns) == list(LAYERWISE_COLUMNS)
    assert table.to_dict("records") == [
        {
            "cycle": 1,
            "layer_name": "conv",
            "layer_type": "C",
            INCL: 5e6,
            EXCL: 4e6,
            "layer_run_time": 1.0,
            "n_samples": 1,
        }
    ]
    assert report["windows_total"] == 1
    assert report["samples_used"] == 1


def test_several_readings_with_inclusive_ends() -> None:
    # window [9, 10]: readings at 9 and 10 (both ends) and 9.5 count, 8.999 and 10.001 don't
    s = samples((8.999, 100.0), (9.0, 2e6), (9.5, 4e6), (10.0, 9e6), (10.001, 100.0))
    table, report = run(s, windows(("conv", 1, 10.0, 1.0)))
    assert row(table, "conv")[INCL] == pytest.approx(5e6)
    assert row(table, "conv")[EXCL] == pytest.approx(4e6)
    assert row(table, "conv")["n_samples"] == 3
    assert report["samples_used"] == 3
    assert report["samples_outside_windows"] == 2


def test_layers_with_gaps_before_between_and_after() -> None:
    w = windows(("a", 1, 2.0, 1.0), ("b", 1, 5.0, 1.0), ("c", 1, 8.0, 1.0), ("d", 1, 11.0, 1.0))
    s = samples(
        (0.5, 7.0),  # before a
        (1.5, 10.0),  # a
        (3.0, 7.0),  # between a and b
        (4.5, 20.0),  # b
        (5.0, 40.0),  # b (end)
        (6.0, 7.0),  # between b and c
        (7.5, 60.0),  # c
        (9.0, 7.0),  # between c and d: d [10, 11] gets none
        (12.0, 7.0),  # after d
    )
    table, report = run(s, w)
    assert table["layer_name"].tolist() == ["a", "b", "c", "d"]
    assert table[INCL].tolist()[:3] == [10.0, 30.0, 60.0]
    assert np.isnan(row(table, "d")[INCL])  # empty, not zero, not dropped
    assert np.isnan(row(table, "d")[EXCL])
    assert table["n_samples"].tolist() == [1, 2, 1, 0]
    assert report == report | {
        "windows_total": 4,
        "windows_with_samples": 3,
        "windows_without_samples": 1,
        "samples_total": 9,
        "samples_used": 4,
        "samples_outside_windows": 5,
        "median_samples_per_layer": 1.0,
        "layers_without_samples": ["d"],
    }


def test_windows_after_the_log_ends_are_kept_with_empty_power() -> None:
    w = windows(*[(layer, c, 10.0 * c + i, 0.5) for c in (1, 2, 3) for i, layer in enumerate("ab")])
    s = samples((9.8, 5.0), (10.8, 6.0))  # only cycle 1 is covered by the log
    table, report = run(s, w)
    assert len(table) == 6
    assert table["cycle"].tolist() == [1, 1, 2, 2, 3, 3]
    assert table[INCL].iloc[:2].tolist() == [5.0, 6.0]
    assert table[INCL].iloc[2:].isna().all()
    assert report["windows_without_samples"] == 4


def test_zero_power_reading_is_a_value() -> None:
    table, report = run(samples((9.5, 0.0)), windows(("conv", 1, 10.0, 1.0)))
    assert row(table, "conv")[INCL] == 0.0
    assert row(table, "conv")[EXCL] == -IDLE
    assert row(table, "conv")["n_samples"] == 1
    assert report["windows_with_samples"] == 1


def test_overlapping_windows_share_samples() -> None:
    # a [1, 3] and b [2, 4]: the reading at 2.5 belongs to both
    w = windows(("a", 1, 3.0, 2.0), ("b", 1, 4.0, 2.0))
    s = samples((1.5, 10.0), (2.5, 20.0), (3.5, 30.0))
    table, report = run(s, w)
    assert row(table, "a")[INCL] == pytest.approx(15.0)
    assert row(table, "b")[INCL] == pytest.approx(25.0)
    assert report["samples_used"] == 3  # the shared sample counts once
    assert report["samples_outside_windows"] == 0


def test_repeats_widen_the_window_but_run_time_is_one_execution() -> None:
    # 100 executions of 0.01 ms ending at 10: window [9, 10]
    w = windows(("conv", 1, 10.0, 0.01, 100))
    table, _ = run(samples((9.05, 8.0), (9.95, 10.0)), w)
    assert row(table, "conv")[INCL] == pytest.approx(9.0)
    assert row(table, "conv")["layer_run_time"] == 0.01


def test_shuffled_input_gives_the_same_table() -> None:
    gen = generate_run(n_cycles=40, n_layers=7, sample_rate_hz=5_000, seed=3)
    expected, expected_report = map_power_to_windows(
        gen.samples, gen.windows, gen.descriptions, gen.idle_power_uw
    )
    rng = np.random.default_rng(0)
    shuffled_windows = gen.windows.sample(frac=1.0, random_state=1).reset_index(drop=True)
    shuffled_samples = gen.samples.iloc[rng.permutation(len(gen.samples))]
    table, report = map_power_to_windows(
        shuffled_samples, shuffled_windows, gen.descriptions.iloc[::-1], gen.idle_power_uw
    )
    pd.testing.assert_frame_equal(table, expected, check_exact=False, rtol=1e-12)
    assert report == expected_report
    # rows come in execution order: by cycle, then by when each layer runs
    assert table["layer_name"].iloc[:7].tolist() == [f"layer_{i:03d}" for i in range(7)]
    assert table["cycle"].is_monotonic_increasing
    assert expected_report["windows_with_samples"] > 0


def test_windows_stored_layer_by_layer_give_the_same_table() -> None:
    """The layout of a latency file (each layer's cycles in a block) takes a shortcut."""
    gen = generate_run(n_cycles=30, n_layers=5, sample_rate_hz=5_000, seed=4)
    expected, expected_report = map_power_to_windows(
        gen.samples, gen.windows, gen.descriptions, gen.idle_power_uw
    )
    by_layer = gen.windows.sort_values(["layer_name", "cycle"], ignore_index=True)
    table, report = map_power_to_windows(gen.samples, by_layer, gen.descriptions, gen.idle_power_uw)
    pd.testing.assert_frame_equal(table, expected)
    assert report == expected_report
    # blocks of one layer twice: not the shortcut's layout, the repeat is found
    twice = by_layer.assign(layer_name=by_layer["layer_name"].replace("layer_004", "layer_003"))
    with pytest.raises(ValueError, match="layer 'layer_003' has two windows for cycle 1"):
        map_power_to_windows(gen.samples, twice, gen.descriptions, gen.idle_power_uw)


def test_out_of_order_layers_are_ordered_by_execution_then_cycle() -> None:
    w = windows(("late", 2, 20.0, 1.0), ("early", 2, 15.0, 1.0), ("late", 1, 10.0, 1.0))
    table, _ = run(samples(), pd.concat([w, windows(("early", 1, 5.0, 1.0))]))
    assert list(zip(table["cycle"], table["layer_name"], strict=True)) == [
        (1, "early"),
        (1, "late"),
        (2, "early"),
        (2, "late"),
    ]


def test_layer_type_from_descriptions_or_unknown() -> None:
    w = windows(("conv", 1, 2.0, 1.0), ("mystery", 1, 4.0, 1.0))
    table, report = run(samples(), w, describe(conv="CaskConvolution", other="CaskPooling"))
    assert table["layer_type"].tolist() == ["CaskConvolution", "Unknown"]
    assert report["layers_unknown_type"] == 1


def test_cycles_start_at_one() -> None:
    table, _ = run(samples(), windows(("a", 1, 2.0, 1.0), ("a", 2, 4.0, 1.0)))
    assert table["cycle"].tolist() == [1, 2]
    with pytest.raises(ValueError, match="layer 'a' has cycle 0"):
        run(samples(), windows(("a", 0, 2.0, 1.0)))


def test_repeated_cycle_of_a_layer_is_an_error_naming_it() -> None:
    with pytest.raises(ValueError, match="layer 'conv' has two windows for cycle 3"):
        run(samples(), windows(("conv", 3, 2.0, 1.0), ("conv", 3, 4.0, 1.0)))


def test_windows_without_timestamps_keep_runtime_and_get_empty_power() -> None:
    w = windows(("a", 1, 2.0, 1.0), ("a", 2, 4.0, 1.0))
    w["start"] = w["end"] = pd.NaT
    table, report = run(samples((1.5, 3.0)), w)
    assert table[INCL].isna().all()
    assert table["layer_run_time"].tolist() == [1.0, 1.0]
    assert report["windows_without_timestamps"] == 2
    assert report["samples_outside_windows"] == 1


def test_microsecond_timestamps_are_read_as_such() -> None:
    s, w = samples((9.5, 5.0)), windows(("conv", 1, 10.0, 1.0))
    s["timestamp"] = s["timestamp"].astype("datetime64[us]")
    w["start"], w["end"] = w["start"].astype("datetime64[us]"), w["end"].astype("datetime64[us]")
    table, _ = run(s, w)
    assert row(table, "conv")[INCL] == 5.0


def test_invalid_samples_are_dropped_and_counted() -> None:
    s = samples((9.5, 5.0), (9.6, float("nan")))
    table, report = run(s, windows(("conv", 1, 10.0, 1.0)))
    assert row(table, "conv")[INCL] == 5.0
    assert report["samples_invalid_dropped"] == 1


def test_layers_below_min_samples_are_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    w = windows(("a", 1, 2.0, 1.0), ("b", 1, 4.0, 1.0))
    s = samples((1.2, 1.0), (1.4, 1.0), (1.6, 1.0), (3.5, 1.0))
    with caplog.at_level(logging.WARNING):
        _, report = run(s, w, min_samples_per_layer=2, source="net")
    assert report["layers_below_min_samples"] == ["b"]
    assert report["median_samples_per_layer"] == 2.0
    assert "net: 1 of 2 layers have fewer than 2 power samples" in caplog.text
    assert "b (1)" in caplog.text


def test_no_windows_and_no_samples() -> None:
    table, report = run(samples(), windows())
    assert table.empty
    assert list(table.columns) == list(LAYERWISE_COLUMNS)
    assert report["windows_total"] == 0


def _brute_force(s: pd.DataFrame, w: pd.DataFrame) -> list[float]:
    """The reference semantics written plainly: mean of samples with start <= t <= end."""
    means = []
    for start, end in zip(w["start"], w["end"], strict=True):
        inside = s["power_uw"][(s["timestamp"] >= start) & (s["timestamp"] <= end)]
        means.append(inside.mean() if len(inside) else np.nan)
    return means


@settings(max_examples=60, deadline=None)
@given(
    sample_times=st.lists(st.integers(0, 60), max_size=25),
    entries=st.lists(st.tuples(st.integers(1, 60), st.integers(0, 15)), min_size=1, max_size=8),
    data=st.data(),
)
def test_matches_brute_force(sample_times: list[int], entries: list, data: st.DataObject) -> None:
    powers = data.draw(st.lists(st.integers(0, 10**7), min_size=len(sample_times)))
    s = samples(*zip(sample_times, map(float, powers[: len(sample_times)]), strict=True))
    w = windows(*[(f"l{i}", 1, float(end), float(lat)) for i, (end, lat) in enumerate(entries)])
    table, report = run(s, w)
    expected = pd.Series(_brute_force(s, w), index=w["layer_name"])
    got = table.set_index("layer_name")[INCL].reindex(expected.index)
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=1e-9, atol=1e-6)
    assert report["samples_used"] + report["samples_outside_windows"] == len(s)


def test_sparse_cycle_numbers_are_ordered_and_checked() -> None:
    w = windows(("a", 10**7, 4.0, 1.0), ("b", 1, 2.0, 1.0), ("a", 1, 1.0, 0.5))
    table, _ = run(samples(), w)
    assert table["cycle"].tolist() == [1, 1, 10**7]
    assert table["layer_name"].tolist() == ["a", "b", "a"]
    with pytest.raises(ValueError, match="layer 'a' has two windows for cycle 10000000"):
        run(samples(), pd.concat([w, w.iloc[:1]]))


@pytest.mark.parametrize("huge", [1e15, -1e15, 1e20, 1.7e308])
def test_one_huge_reading_outside_every_window_changes_no_layer(huge: float) -> None:
    gen = generate_run(n_cycles=300, n_layers=12, sample_rate_hz=5_000, seed=5)
    clean, clean_report = map_power_to_windows(
        gen.samples, gen.windows, gen.descriptions, gen.idle_power_uw
    )
    # first in the log (every running sum carries it), an hour before any window
    far = pd.DataFrame({"timestamp": [gen.samples["timestamp"].min() - pd.Timedelta(hours=1)]})
    spiked = pd.concat([far.assign(power_uw=huge), gen.samples], ignore_index=True)
    table, report = map_power_to_windows(spiked, gen.windows, gen.descriptions, gen.idle_power_uw)
    assert report["samples_outside_windows"] == clean_report["samples_outside_windows"] + 1
    for column in (INCL, EXCL):
        got, expected = table[column].to_numpy(), clean[column].to_numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-6)
        np.testing.assert_array_equal(got, expected)  # exact, in fact
    per_layer = table.groupby("layer_name")[INCL].mean()
    truth = pd.Series(gen.layer_power_uw)
    assert ((per_layer - truth).abs() / truth).max() < 0.01


def test_a_window_holding_the_huge_reading_gets_it_and_its_neighbours_do_not() -> None:
    s = samples((1.0, 5e6), (2.0, 1e25), (3.0, 7e6), (5.0, 2.5), (6.0, 3.5))
    w = windows(("a", 1, 1.5, 1.0), ("b", 1, 2.5, 1.0), ("c", 1, 3.5, 1.0), ("d", 1, 6.0, 1.0))
    table, _ = run(s, w)
    assert table[INCL].tolist() == [5e6, 1e25, 7e6, 3.0]  # 2.5 and 3.5 µW: fractions kept


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(
        st.one_of(
            st.integers(-(10**9), 10**10).map(float),
            st.floats(-1e9, 1e9, allow_nan=False),
            st.sampled_from([1e15, -1e18, 1e22, 2.0**40, 2.0**40 + 2, 1.7e308, -1.7e308]),
        ),
        min_size=1,
        max_size=40,
    ),
    data=st.data(),
)
def test_range_sums_equal_exact_sums(values: list[float], data: st.DataObject) -> None:
    n = len(values)
    bounds = data.draw(st.lists(st.tuples(st.integers(0, n), st.integers(0, n)), min_size=1))
    lo = np.array([min(a, b) for a, b in bounds])
    hi = np.array([max(a, b) for a, b in bounds])
    got = range_sums(np.array(values), lo, hi)
    for value, a, b in zip(got, lo, hi, strict=True):
        inside = values[a:b]
        if all(abs(v) <= 2.0**40 for v in inside):  # readings of a sane size: exact sums
            assert value == pytest.approx(math.fsum(inside), rel=1e-12, abs=1e-6)
