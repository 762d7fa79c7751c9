"""Nodes: lazy per-model mapping, and the quality section (one model in memory at a time)."""

from __future__ import annotations

import logging

import pandas as pd
import pytest
from benchmarks.generate_jetson import generate_run

from power_modelling.pipelines.power_mapping.nodes import map_power, report_power_mapping

INCL = "layer_power_including_idle_power_micro_watt"


@pytest.fixture
def runs():
    return {name: generate_run(n_cycles=20, n_layers=4, seed=i) for i, name in enumerate("ab")}


def _loaders(runs, attribute: str, loaded: list[str], suffix: str = "") -> dict:
    def loader(name: str):
        def load() -> pd.DataFrame:
            loaded.append(f"{name}.{attribute}")
            return getattr(runs[name], attribute)

        return load

    return {f"{name}{suffix}": loader(name) for name in runs}


def test_map_power_returns_one_lazy_partition_per_model(runs) -> None:
    loaded: list[str] = []
    partitions = map_power(
        _loaders(runs, "samples", loaded, suffix=".parquet"),  # a suffix in the id is dropped
        _loaders(runs, "windows", loaded),
        _loaders(runs, "descriptions", loaded),
        {"avg_idle_power_uw": 4.2e6},
    )
    assert sorted(partitions) == ["a", "b"]
    assert loaded == []  # nothing is read before Kedro saves the partition
    table = partitions["a"]()
    assert sorted(loaded) == ["a.descriptions", "a.samples", "a.windows"]
    assert len(table) == 80
    assert table[INCL].notna().any()


def test_report_holds_every_model_and_warns_once(runs, caplog) -> None:
    loaded: list[str] = []
    with caplog.at_level(logging.WARNING):
        report = report_power_mapping(
            _loaders(runs, "samples", loaded),
            _loaders(runs, "windows", loaded),
            _loaders(runs, "descriptions", loaded),
            {"min_samples_per_layer": 10**6},
        )
    assert sorted(report) == ["a", "b"]
    assert report["b"]["windows_total"] == 80
    assert report["a"]["layers_below_min_samples_count"] == 4
    assert caplog.text.count("have fewer than 1000000 power samples") == 2


def test_model_without_samples_or_descriptions_is_still_mapped(caplog) -> None:
    gen = generate_run(n_cycles=5, n_layers=3)
    table = map_power({}, {"net": lambda: gen.windows}, {}, {"avg_idle_power_uw": 1.0})["net"]()
    assert table[INCL].isna().all()
    assert set(table["layer_type"]) == {"Unknown"}
    with caplog.at_level(logging.WARNING):
        report = report_power_mapping(
            {"x": lambda: gen.samples}, {"net": lambda: gen.windows}, {}, {}
        )
    assert report["net"]["samples_total"] == 0
    assert "no power samples" in caplog.text
    assert "without layer windows (not mapped): ['x']" in caplog.text


def test_no_models() -> None:
    assert map_power({}, {}, {}, {"avg_idle_power_uw": 1.0}) == {}
    assert report_power_mapping({}, {}, {}, {}) == {}
