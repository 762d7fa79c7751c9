"""Generated Jetson-style runs with a known power per layer: the mapping must recover it."""

from __future__ import annotations

import pandas as pd
import pytest
from benchmarks.generate_jetson import generate_run, write_idle_power, write_raw_model

from power_modelling.core.mapping import map_power_to_windows

INCL = "layer_power_including_idle_power_micro_watt"


def _relative_errors(table: pd.DataFrame, truth: dict[str, float]) -> pd.Series:
    mapped = table.groupby("layer_name")[INCL].mean()
    expected = pd.Series(truth)
    assert set(mapped.index) == set(expected.index)
    return ((mapped - expected) / expected).abs()


@pytest.mark.parametrize("seed", [0, 1])
def test_per_layer_power_within_two_percent_of_truth(seed: int) -> None:
    # Jetson-like: windows of ~40 µs between samples 1.3 ms apart, 2 % sensor noise
    gen = generate_run(n_cycles=3_000, n_layers=30, noise_fraction=0.02, seed=seed)
    table, report = map_power_to_windows(
        gen.samples, gen.windows, gen.descriptions, gen.idle_power_uw
    )
    errors = _relative_errors(table, gen.layer_power_uw)
    assert errors.max() < 0.02, errors.sort_values().tail()
    excl = table.groupby("layer_name")["layer_power_excluding_idle_power_micro_watt"].mean()
    incl = table.groupby("layer_name")[INCL].mean()
    pd.testing.assert_series_equal(excl, incl - gen.idle_power_uw, check_names=False)
    assert report["windows_total"] == 3_000 * 30
    assert report["layers_without_samples"] == []
    assert report["samples_outside_windows"] > 0  # the idle gaps between inferences


def _parsers():
    from power_modelling.core.raw.latency import parse_layer_latency
    from power_modelling.core.raw.power_log import parse_power_log

    return parse_power_log, parse_layer_latency


def test_raw_files_round_trip_through_the_ingestion_parsers(tmp_path) -> None:
    parse_power_log, parse_layer_latency = _parsers()
    gen = generate_run(n_cycles=500, n_layers=12, seed=5)
    folder = write_raw_model(gen, tmp_path, "net")
    write_idle_power(tmp_path, gen.idle_power_uw)
    log = folder / "net_power_log.log"
    latency = folder / "trt_profiling" / "trt_layer_latency.json"
    samples, _ = parse_power_log(log.read_bytes(), str(log))
    windows, _ = parse_layer_latency(latency.read_bytes(), str(latency))
    assert len(samples) == len(gen.samples)  # the truncated last line is not a sample
    table, _ = map_power_to_windows(samples, windows, gen.descriptions, gen.idle_power_uw)
    expected, _ = map_power_to_windows(
        gen.samples, gen.windows, gen.descriptions, gen.idle_power_uw
    )
    pd.testing.assert_frame_equal(table, expected, check_exact=False, rtol=1e-9)
