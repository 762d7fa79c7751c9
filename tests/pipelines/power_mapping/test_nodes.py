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


def _map(runs, loaded: list[str], params: dict | None = None, suffix: str = ""):
    return map_power(
        _loaders(runs, "samples", loaded, suffix=suffix),
        _loaders(runs, "windows", loaded),
        _loaders(runs, "descriptions", loaded),
        {"avg_idle_power_uw": 4.2e6},
        params or {},
    )


def test_map_power_returns_one_lazy_partition_per_model(runs) -> None:
    loaded: list[str] = []
    partitions, reports = _map(runs, loaded, suffix=".parquet")  # a suffix in ids is dropped
    assert sorted(partitions) == sorted(reports) == ["a", "b"]
    assert loaded == []  # nothing is read before Kedro saves the partition
    table = partitions["a"]()
    assert sorted(loaded) == ["a.descriptions", "a.samples", "a.windows"]
    assert len(table) == 80
    assert table[INCL].notna().any()


def test_each_model_is_joined_once_and_its_report_warns_once(runs, caplog) -> None:
    loaded: list[str] = []
    with caplog.at_level(logging.WARNING):
        tables, reports = _map(runs, loaded, {"min_samples_per_layer": 10**6})
        for load in tables.values():  # Kedro saves the tables first (output order)
            load()
        report = report_power_mapping(reports)
    assert sorted(report) == ["a", "b"]
    assert report["b"]["windows_total"] == 80
    assert report["a"]["layers_below_min_samples_count"] == 4
    assert caplog.text.count("have fewer than 1000000 power samples") == 2
    assert sorted(loaded) == sorted(
        f"{m}.{t}" for m in "ab" for t in ("samples", "windows", "descriptions")
    )


def test_a_report_asked_for_first_is_joined_for_it(runs) -> None:
    loaded: list[str] = []
    tables, reports = _map(runs, loaded)
    assert reports["a"]()["windows_total"] == 80
    assert sorted(loaded) == ["a.descriptions", "a.samples", "a.windows"]


def test_model_without_samples_or_descriptions_is_still_mapped(caplog) -> None:
    gen = generate_run(n_cycles=5, n_layers=3)
    with caplog.at_level(logging.WARNING):
        tables, reports = map_power(
            {"x": lambda: gen.samples},
            {"net": lambda: gen.windows},
            {},
            {"avg_idle_power_uw": 1.0},
            {},
        )
        table = tables["net"]()
    assert table[INCL].isna().all()
    assert set(table["layer_type"]) == {"Unknown"}
    assert report_power_mapping(reports)["net"]["samples_total"] == 0
    assert "no power samples" in caplog.text
    assert "without layer windows (not mapped): ['x']" in caplog.text


def test_no_models() -> None:
    assert map_power({}, {}, {}, {"avg_idle_power_uw": 1.0}, {}) == ({}, {})
    assert report_power_mapping({}) == {}
