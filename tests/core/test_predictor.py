"""Per-layer predictions, count weighting, ``other`` layers, the summary, bad engine files."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest

from power_modelling.core.engines import describe_layers
from power_modelling.core.predictor import predict_layers, summarise, summarise_networks
from tests.helpers import PROJECT_ROOT
from tests.standins import (
    TINY_ENERGY_MJ,
    TINY_RUNTIME_MS,
    expected_columns,
    standin_models,
    tiny_engine,
)

SHIPPED_ENGINE = PROJECT_ROOT / "data" / "01_raw" / "predict" / "jetson_orin_resnet18.json"


@pytest.fixture
def tiny_layers() -> pd.DataFrame:
    return describe_layers(tiny_engine(), "tiny.json")


def test_every_layer_is_listed_and_other_layers_have_empty_predictions(
    tiny_layers: pd.DataFrame,
) -> None:
    table = predict_layers(tiny_layers, standin_models())
    assert list(table.columns) == expected_columns(with_idle=False)
    assert list(table["layer_name"]) == ["conv1", "pool", "relu", "fc"]
    assert list(table["layer_class"]) == ["convolutional", "pooling", "other", "dense"]
    assert list(table["count"]) == [2, 1, 3, 1]
    assert table["power_prediction"].tolist()[:2] == [10.0, 2.0]
    assert table["runtime_prediction"].tolist()[:2] == [0.5, 0.1]
    assert table.loc[3, ["power_prediction", "runtime_prediction"]].tolist() == [5.0, 0.2]
    assert table.loc[2, ["power_prediction", "runtime_prediction"]].isna().all()


def test_summary_weights_every_layer_by_its_count(tiny_layers: pd.DataFrame) -> None:
    row = summarise(predict_layers(tiny_layers, standin_models()), "tiny")
    assert row["network"] == "tiny"
    assert row["layers_predicted"] == 4  # 2 conv + pool + fc
    assert row["layers_other"] == 3  # ReLU × 3
    assert row["total_runtime_ms"] == pytest.approx(TINY_RUNTIME_MS)
    assert row["energy_mj"] == pytest.approx(TINY_ENERGY_MJ)
    assert row["avg_power_w"] == pytest.approx(TINY_ENERGY_MJ / TINY_RUNTIME_MS)


def test_idle_power_adds_the_total_power_column(tiny_layers: pd.DataFrame) -> None:
    table = predict_layers(tiny_layers, standin_models(), idle_power_w=3.0)
    assert list(table.columns) == expected_columns(with_idle=True)
    assert table["power_total_prediction"].tolist()[:2] == [13.0, 5.0]
    assert np.isnan(table.loc[2, "power_total_prediction"])


def test_negative_model_outputs_are_clipped_and_logged(
    tiny_layers: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    models = standin_models()
    models["pooling_power"].constant_ = np.array([[-1.0]])
    with caplog.at_level(logging.WARNING):
        table = predict_layers(tiny_layers, models)
    assert table.loc[1, "power_prediction"] == 0.0
    assert "pooling_power: 1 negative predictions clipped" in caplog.text


def test_a_missing_model_is_named(tiny_layers: pd.DataFrame) -> None:
    models = standin_models()
    del models["dense_runtime"]
    with pytest.raises(KeyError, match="dense_runtime"):
        predict_layers(tiny_layers, models)


def test_shipped_tensorrt_engine_is_predicted_layer_by_layer() -> None:
    layers = describe_layers(json.loads(SHIPPED_ENGINE.read_text()), str(SHIPPED_ENGINE))
    table = predict_layers(layers, standin_models())
    assert len(table) == 26
    classes = table["layer_class"].value_counts().to_dict()
    assert classes == {"convolutional": 20, "pooling": 2, "dense": 1, "other": 3}
    assert table["runtime_prediction"].notna().sum() == 23


def test_many_networks_are_predicted_in_one_call_and_summarised_per_network(
    tiny_layers: pd.DataFrame,
) -> None:
    layers = pd.concat([tiny_layers.assign(network=f"net{i}") for i in range(3)], ignore_index=True)
    table = predict_layers(layers, standin_models())
    assert list(table.columns[:2]) == ["network", "layer_name"]
    assert table["network"].tolist() == [f"net{i}" for i in range(3) for _ in range(4)]
    summary = summarise_networks(table)
    assert summary["network"].tolist() == ["net0", "net1", "net2"]
    assert summary["total_runtime_ms"].tolist() == pytest.approx([TINY_RUNTIME_MS] * 3)
    assert summary["energy_mj"].tolist() == pytest.approx([TINY_ENERGY_MJ] * 3)
    assert summary["layers_other"].tolist() == [3, 3, 3]


def _bad(layers: pd.DataFrame, row: int, **cells: object) -> pd.DataFrame:
    """``layers`` with cells of one row replaced (lists kept as cells)."""
    layers = layers.copy()
    for column, value in cells.items():
        layers[column] = layers[column].astype(object)
        layers.at[row, column] = value  # noqa: PD008 (.loc would spread a list over cells)
    return layers


@pytest.mark.parametrize(
    ("cells", "problem"),
    [
        (
            {"input_dims": [1, 0, 8, 8]},
            "input_dims [1, 0, 8, 8]: expected a non-empty list of positive integers",
        ),
        (
            {"input_dims": [1, -3, 8, 8]},
            "input_dims [1, -3, 8, 8]: expected a non-empty list of positive integers",
        ),
        ({"output_dims": []}, "output_dims []: expected a non-empty list of positive integers"),
        ({"output_dims": None}, "output_dims None: expected a non-empty list of positive integers"),
        (
            {"input_dims": [1, 2.5, 8, 8]},
            "input_dims [1, 2.5, 8, 8]: expected a non-empty list of positive integers",
        ),
        ({"kernel": [3, 0]}, "kernel [3, 0]: expected integers >= 1"),
        ({"pre_padding": [-1, 1]}, "pre_padding [-1, 1]: expected integers >= 0"),
        ({"count": -5}, "count -5: expected an integer >= 1"),
        ({"groups": "two"}, "groups 'two': expected an integer >= 1"),
        (
            {"input_dims": [1, 10**9, 224, 224]},
            "input_dims [1, 1000000000, 224, 224]: a 5.02e+13-element tensor, beyond 1.1e+12 "
            "bytes (no device holds it)",
        ),
        (  # 34 GB tensors, 1.3e15 FLOPs: a 3x3 convolution of 4096 channels at 2048x2048
            {"input_dims": [1, 4096, 2048, 2048], "output_dims": [1, 4096, 2048, 2048]},
            "1.27e+15 FLOPs, beyond 1e+15 per layer (no device runs that)",
        ),
    ],
)
def test_a_bad_layer_is_named_and_its_network_gets_no_totals_the_others_do(
    tiny_layers: pd.DataFrame, cells: dict, problem: str, caplog: pytest.LogCaptureFixture
) -> None:
    layers = pd.concat(
        [tiny_layers.assign(network="good"), _bad(tiny_layers, 0, **cells).assign(network="bad")],
        ignore_index=True,
    )
    table = predict_layers(layers, standin_models())
    bad = table[table["network"] == "bad"].reset_index(drop=True)
    assert bad.loc[0, "problem"] == problem
    assert bad.loc[0, ["power_prediction", "runtime_prediction"]].isna().all()
    assert bad.loc[[1, 3], "power_prediction"].tolist() == [2.0, 5.0]  # its other layers
    assert table.loc[table["network"] == "good", "problem"].isna().all()
    assert f"1 layer(s) not predicted, bad input: bad: layer 'conv1': {problem}" in caplog.text

    summary = summarise_networks(table).set_index("network")
    assert summary.loc["good", "status"] == "predicted" and pd.isna(summary.loc["good", "note"])
    assert summary.loc["good", "energy_mj"] == pytest.approx(TINY_ENERGY_MJ)
    assert summary.loc["bad", "status"] == "bad input"
    assert summary.loc["bad", "note"] == f"bad input: layer 'conv1': {problem}; no totals"
    assert summary.loc["bad", ["total_runtime_ms", "avg_power_w", "energy_mj"]].isna().all()


def test_the_served_input_path_reports_bad_counts_and_groups_instead_of_failing(
    tiny_layers: pd.DataFrame,
) -> None:
    from power_modelling.pipelines.inference.nodes import predict_layers as inference_node

    layers = _bad(_bad(tiny_layers, 0, count=-5), 3, groups="two")
    table = inference_node(layers, None, **standin_models())
    assert table["problem"].tolist() == [
        "count -5: expected an integer >= 1",
        None,
        None,
        "groups 'two': expected an integer >= 1",
    ]
    assert table["count"].tolist() == [-5, 1, 3, 1]
    row = summarise(table, "tiny")
    assert row["status"] == "bad input" and row["layers_other"] == 3  # not -3
    assert row["note"] == (
        "bad input: layer 'conv1': count -5: expected an integer >= 1 (and 1 more bad "
        "layer(s)); no totals"
    )


def test_a_network_of_unmodelled_layers_has_no_totals_not_zero_cost(
    tiny_layers: pd.DataFrame,
) -> None:
    relu_only = tiny_layers.iloc[[2, 2]].assign(layer_type=["ReLU", "Shuffle"])
    layers = pd.concat(
        [tiny_layers.assign(network="tiny"), relu_only.assign(network="activations")],
        ignore_index=True,
    )
    summary = summarise_networks(predict_layers(layers, standin_models())).set_index("network")
    row = summary.loc["activations"]
    assert (row["status"], row["layers_predicted"], row["layers_other"]) == (
        "no modelled layer",
        0,
        6,
    )
    assert row[["total_runtime_ms", "avg_power_w", "energy_mj"]].isna().all()
    assert row["note"] == (
        "no layer of a modelled class (convolutional, pooling, dense), only: ReLU, Shuffle; "
        "no totals"
    )
    assert summary.loc["tiny", "status"] == "predicted"


def test_no_layer_at_all_predicts_an_empty_table() -> None:
    empty = describe_layers({"Layers": []}, "empty.json").assign(network=[])
    table = predict_layers(empty, standin_models())
    assert table.empty and "problem" in table.columns


def test_a_pooling_kernel_never_trained_on_says_so_in_its_domain_note(
    synthetic_table: pd.DataFrame,
) -> None:
    """DenseNet's transition (2x2 average pooling) beside models trained on max pools and
    global average pools: predicted from the device trend, out of domain, and the note says
    why; the max pool beside it keeps its trees and its note."""
    from power_modelling.core.domain import fit_domain
    from power_modelling.core.loco import trainable
    from power_modelling.core.physics_estimators import (
        FixedCostRuntimeRegressor,
        ThroughputPowerRegressor,
    )
    from power_modelling.core.physics_features import device_trend, fit_device_constants
    from power_modelling.core.predictor import KERNEL_FALLBACK_NOTE
    from tests.core.conftest import features_of, pool_layer

    constants = fit_device_constants(synthetic_table)
    models = {}
    for layer_class in ("convolutional", "pooling", "dense"):
        rows = trainable(synthetic_table, layer_class, "runtime")
        settings = {"device_constants": constants, "n_estimators": 20}
        models[f"{layer_class}_runtime"] = FixedCostRuntimeRegressor(layer_class, **settings).fit(
            rows, rows["runtime"]
        )
        models[f"{layer_class}_power"] = ThroughputPowerRegressor(layer_class, **settings).fit(
            rows, rows["power"]
        )
    domain = fit_domain(synthetic_table, synthetic_table["model"])
    layers = [
        pool_layer("transition", 128, 56, 2, 2, kind="AVERAGE"),
        pool_layer("maxpool", 128, 56, 2, 2, kind="MAX"),
    ]
    table = predict_layers(describe_layers({"Layers": layers}, "densenet.json"), models, 100.0,
                           domain)  # fmt: skip
    transition, maxpool = table.iloc[0], table.iloc[1]
    assert transition["domain_note"].endswith(KERNEL_FALLBACK_NOTE)
    assert "pooling_type AVG 2x2 never seen" in transition["domain_note"]
    assert not transition["in_domain"]
    assert KERNEL_FALLBACK_NOTE not in str(maxpool["domain_note"])
    features = features_of([layers[0]])
    _, trend = device_trend(features["flops"].to_numpy(), features["bytes_total"].to_numpy(),
                            constants)  # fmt: skip
    assert transition["runtime_prediction"] == pytest.approx(trend[0], rel=1e-12)
