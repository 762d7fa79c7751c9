"""The generator node: one model at a time, cumulative quality section."""

from __future__ import annotations

import pandas as pd
from benchmarks.generate_jetson import generate_run

from power_modelling.pipelines.power_mapping.nodes import map_power


def test_models_are_loaded_and_yielded_one_at_a_time() -> None:
    runs = {name: generate_run(n_cycles=20, n_layers=4, seed=i) for i, name in enumerate("ab")}
    loaded: list[str] = []

    def loader(name: str, attribute: str):
        def load() -> pd.DataFrame:
            loaded.append(f"{name}.{attribute}")
            return getattr(runs[name], attribute)

        return load

    outputs = map_power(
        {f"{n}.parquet": loader(n, "samples") for n in runs},  # a suffix in the id is dropped
        {n: loader(n, "windows") for n in runs},
        {n: loader(n, "descriptions") for n in runs},
        {"avg_idle_power_uw": 4.2e6},
        {"min_samples_per_layer": 10},
    )
    tables, report = next(outputs)
    assert list(tables) == ["a"]
    assert sorted(loaded) == ["a.descriptions", "a.samples", "a.windows"]
    assert list(report) == ["a"]
    tables, report = next(outputs)
    assert list(tables) == ["b"]
    assert list(report) == ["a", "b"]
    assert report["b"]["windows_total"] == 80
    assert list(outputs) == []


def test_model_without_samples_or_descriptions_is_still_mapped() -> None:
    gen = generate_run(n_cycles=5, n_layers=3)
    (tables, report), *_ = map_power(
        {}, {"net": lambda: gen.windows}, {}, {"avg_idle_power_uw": 1.0}, {}
    )
    assert tables["net"]["layer_power_including_idle_power_micro_watt"].isna().all()
    assert set(tables["net"]["layer_type"]) == {"Unknown"}
    assert report["net"]["samples_total"] == 0


def test_no_models_yields_an_empty_section() -> None:
    assert list(map_power({}, {}, {}, {"avg_idle_power_uw": 1.0}, {})) == [({}, {})]
