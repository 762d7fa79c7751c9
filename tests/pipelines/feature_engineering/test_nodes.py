"""Aggregation, power filtering, tables, quality report and split, on hand-made frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from power_modelling.core.engines import describe_layers
from power_modelling.core.features import FEATURE_COLUMNS
from power_modelling.core.layers import LAYER_CLASSES
from power_modelling.pipelines.feature_engineering.nodes import (
    aggregate_measurements,
    assemble_feature_tables,
    build_layer_features,
    choose_test_models,
    split_train_test,
)

CONV = {
    "Name": "conv",
    "LayerType": "CaskConvolution",
    "ParameterType": "Convolution",
    "Inputs": [{"Dimensions": [1, 3, 8, 8], "Format/Datatype": "Half"}],
    "Outputs": [{"Dimensions": [1, 4, 8, 8], "Format/Datatype": "Half"}],
    "Kernel": [3, 3],
    "PrePadding": [1, 1],
    "PostPadding": [1, 1],
    "Stride": [1, 1],
}
POOL = {
    "Name": "pool",
    "LayerType": "CaskPooling",
    "ParameterType": "Pooling",
    "Inputs": [{"Dimensions": [1, 4, 8, 8], "Format/Datatype": "Half"}],
    "Outputs": [{"Dimensions": [1, 4, 4, 4], "Format/Datatype": "Half"}],
    "WindowSize": [2, 2],
    "Stride": [2, 2],
}
FC = {
    "Name": "fc",
    "LayerType": "CaskGemmConvolution",
    "ParameterType": "Convolution",
    "Inputs": [{"Dimensions": [1, 64, 1, 1], "Format/Datatype": "Half"}],
    "Outputs": [{"Dimensions": [1, 10, 1, 1], "Format/Datatype": "Half"}],
    "Kernel": [1, 1],
}
REFORMAT = {
    "Name": "reformat",
    "LayerType": "Reformat",
    "ParameterType": "Reformat",
    "Inputs": [{"Dimensions": [1, 4, 8, 8], "Format/Datatype": "Half"}],
    "Outputs": [{"Dimensions": [1, 4, 8, 8], "Format/Datatype": "Float"}],
}
UNMEASURED = {**REFORMAT, "Name": "unmeasured"}


def _layerwise(layer: str, powers_uw: list[float], samples: list[int], runtimes: list[float]):
    return pd.DataFrame(
        {
            "cycle": np.arange(1, len(powers_uw) + 1),
            "layer_name": layer,
            "layer_type": "x",
            "layer_power_including_idle_power_micro_watt": np.asarray(powers_uw) + 5e6,
            "layer_power_excluding_idle_power_micro_watt": powers_uw,
            "layer_run_time": runtimes,
            "n_samples": samples,
        }
    )


@pytest.fixture
def features() -> pd.DataFrame:
    engine_a = {"Layers": [CONV, POOL, FC, REFORMAT, UNMEASURED]}
    engine_b = {"Layers": [CONV, FC]}
    return build_layer_features(
        {
            "net_a": lambda: describe_layers(engine_a, "a.json"),
            "net_b": describe_layers(engine_b, "b.json"),
        }
    )


@pytest.fixture
def measurements() -> pd.DataFrame:
    net_a = pd.concat(
        [
            _layerwise("conv", [1e6, np.nan, 3e6], [4, 0, 8], [0.1, 0.2, 0.3]),
            _layerwise("pool", [2e6, 2e6], [2, 3], [0.05, 0.05]),  # 5 samples < 10
            _layerwise("fc", [4e6, 6e6], [5, 5], [0.4, 0.6]),
            _layerwise("reformat", [1e6, 1e6], [6, 6], [0.01, 0.01]),
            _layerwise("ghost", [1e6], [20], [0.01]),  # measured, not described
        ]
    )
    net_b = pd.concat(
        [
            _layerwise("conv", [2e6] * 3, [5] * 3, [0.2] * 3),
            _layerwise("fc", [1e6] * 2, [10] * 2, [0.5] * 2),
        ]
    )
    return aggregate_measurements({"net_a": lambda: net_a, "net_b": net_b})


def test_aggregation_means_over_cycles_with_power(measurements: pd.DataFrame) -> None:
    conv = measurements.set_index(["model", "layer_name"]).loc[("net_a", "conv")]
    assert conv["power"] == pytest.approx(2.0)  # (1 + 3) / 2 W, the empty cycle skipped
    assert conv["power_total"] == pytest.approx(7.0)
    assert conv["power_std"] == pytest.approx(np.std([1, 3], ddof=1))
    assert conv["runtime"] == pytest.approx(0.2)  # every cycle counts for runtime
    assert conv["n_cycles"] == 3
    assert conv["n_power_cycles"] == 2
    assert conv["n_power_samples"] == 12


def test_aggregation_names_partition_with_missing_columns() -> None:
    bad = _layerwise("conv", [1e6], [1], [0.1]).drop(columns="layer_run_time")
    with pytest.raises(ValueError, match=r"layerwise partition 'net_x'.*layer_run_time"):
        aggregate_measurements({"net_x": bad})


def test_tables_keep_short_layers_for_runtime_only(
    features: pd.DataFrame, measurements: pd.DataFrame
) -> None:
    assembled = assemble_feature_tables(features, measurements, 10)
    conv, pool, dense, report = (assembled[k] for k in (*LAYER_CLASSES, "report"))
    assert len(conv) == 2 and len(pool) == 1 and len(dense) == 2
    assert list(conv.columns[:5]) == ["model", "layer_name", "layer_type", "layer_class", "count"]
    assert set(FEATURE_COLUMNS["dense"]) <= set(dense.columns)
    assert "kernel_0" not in dense.columns
    assert pool.loc[0, "power_excluded"]
    assert np.isnan(pool.loc[0, "power"]) and np.isnan(pool.loc[0, "power_total"])
    assert pool.loc[0, "runtime"] == pytest.approx(0.05)  # still usable for runtime
    assert pool.loc[0, "kernel_0"] == 2
    kept = conv.set_index("model")
    assert kept.loc["net_a", "power"] == pytest.approx(2.0)  # 12 samples: kept
    assert kept.loc["net_b", "power"] == pytest.approx(2.0)  # 15 samples: kept
    net_a = report["net_a"]
    assert net_a["convolutional"] == 1 and net_a["pooling"] == 1 and net_a["dense"] == 1
    assert net_a["other"] == 1
    assert net_a["other_by_type"] == {"Reformat": 1}
    assert net_a["power_excluded"] == 1
    assert net_a["power_excluded_layers"] == ["pool"]
    assert net_a["described_not_measured"] == 1
    assert net_a["measured_not_described"] == 1
    assert report["net_b"]["power_excluded"] == 0
    assert report["_tables"]["convolutional"] == {"rows": 2, "models": 2, "power_excluded": 0}
    assert report["_tables"]["pooling"]["power_excluded"] == 1


def test_split_by_model(features: pd.DataFrame, measurements: pd.DataFrame) -> None:
    conv = assemble_feature_tables(features, measurements, 10)["convolutional"]
    train, test = split_train_test(conv, {"test_models": ["net_b"]})
    assert train["model"].tolist() == ["net_a"]
    assert test["model"].tolist() == ["net_b"]
    assert len(train) + len(test) == len(conv)


def test_test_models_are_chosen_from_what_was_ingested(features: pd.DataFrame) -> None:
    chosen = choose_test_models(features, {"test_models": "net_b"}, "x")
    assert chosen == {"test_models": ["net_b"], "chosen_by": "parameter", "raw_dataset": "x"}
    with pytest.raises(ValueError, match="holds out 2 of the 2 CNN.*at least 1 must be left"):
        choose_test_models(features, {"test_models": "net_a,net_b"}, "x")
    with pytest.raises(ValueError, match=r"test_models names CNN\(s\) \['lenet'\].*net_a, net_b"):
        choose_test_models(features, {"test_models": ["lenet"]}, "x")


def test_build_layer_features_needs_partitions() -> None:
    with pytest.raises(ValueError, match="ingestion"):
        build_layer_features({})


def test_duplicate_layers_are_named(features: pd.DataFrame, measurements: pd.DataFrame) -> None:
    doubled = pd.concat([features, features.iloc[[0]]], ignore_index=True)
    with pytest.raises(ValueError, match=r"layer_descriptions.*\('net_a', 'conv'\)"):
        assemble_feature_tables(doubled, measurements, 10)
