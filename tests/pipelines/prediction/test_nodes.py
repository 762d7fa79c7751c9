"""The prediction nodes in memory: bad networks are isolated, named (file and layer) and
counted; a network without a modelled layer has no totals. On many networks: one table, the
summary, capped CSVs."""

from __future__ import annotations

import json
import logging

import pandas as pd
import pytest

from power_modelling.core.networks import LOGGED_NETWORKS
from power_modelling.pipelines.inference.nodes import predict_layers
from power_modelling.pipelines.prediction.nodes import (
    read_prediction_networks,
    report_predictions,
)
from tests.standins import TINY_ENERGY_MJ, standin_models, tiny_engine

FOLDER = "data/01_raw/predict"
OPTIONS = {"models": "h200_isolated_v1", "batch_size": 1, "onnx_precision": "FP16"}


def _files() -> dict[str, bytes]:
    huge = tiny_engine()
    huge["Layers"][0]["Inputs"][0]["Dimensions"] = [1, 10**9, 224, 224]
    activations = {"Layers": [tiny_engine()["Layers"][2]]}  # one ReLU
    no_dims = tiny_engine()
    no_dims["Layers"][1]["Outputs"][0]["Dimensions"] = [1, 4, 0, 4]
    return {
        "tiny.json": json.dumps(tiny_engine()).encode(),
        "huge.json": json.dumps(huge).encode(),
        "activations.json": json.dumps(activations).encode(),
        "empty.json": b'{"Layers": []}',
        "zero.json": json.dumps(no_dims).encode(),
    }


def _predict(files: dict[str, bytes]) -> tuple[dict, pd.DataFrame, pd.DataFrame, dict]:
    loaders = {path: (lambda data=data: data) for path, data in files.items()}
    layers, networks = read_prediction_networks(loaders, "predict", OPTIONS)
    predictions = predict_layers(layers, None, **standin_models())
    return report_predictions(predictions, networks, None, OPTIONS)


def test_bad_networks_are_named_counted_and_left_without_totals(caplog):
    tables, _, summary, quality = _predict(_files())
    summary = summary.set_index("network")
    assert summary["status"].to_dict() == {
        "activations": "no modelled layer",
        "empty": "no modelled layer",
        "huge": "bad input",
        "tiny": "predicted",
    }
    assert summary.loc["tiny", "energy_mj"] == pytest.approx(TINY_ENERGY_MJ)
    unpredicted = summary.drop(index="tiny")
    assert unpredicted[["total_runtime_ms", "avg_power_w", "energy_mj"]].isna().all().all()
    assert summary.loc["huge", "note"] == (
        f"{FOLDER}/huge.json: bad input: layer 'conv1': input_dims [1, 1000000000, 224, 224]: "
        "a 5.02e+13-element tensor, beyond 1.1e+12 bytes (no device holds it); no totals"
    )
    assert summary.loc["empty", "note"] == (
        f"{FOLDER}/empty.json: no layer at all (an empty 'Layers' list); no totals"
    )
    assert summary.loc["activations", "note"] == (
        f"{FOLDER}/activations.json: no layer of a modelled class (convolutional, pooling, "
        "dense), only: ReLU; no totals"
    )
    assert (summary.loc["empty", "layers_predicted"], summary.loc["empty", "layers_other"]) == (
        0,
        0,
    )
    assert summary.loc["activations", "layers_other"] == 3  # Count 3

    assert quality["networks_predicted"] == 1
    assert quality["networks_failed"] == 1  # zero.json: the engine reader names file and layer
    assert quality["errors"]["zero"].startswith(f"{FOLDER}/zero.json: layer 'pool': Outputs")
    assert quality["networks_bad_input"] == {"huge": summary.loc["huge", "note"]}
    assert sorted(quality["networks_without_modelled_layer"]) == ["activations", "empty"]
    assert quality["layers_bad_input"] == 1

    assert tables["huge"]["problem"].notna().tolist() == [True, False, False, False]
    assert tables["huge"]["power_prediction"].tolist()[1] == 2.0  # its other layers predicted
    assert "huge not predicted (bad input): data/01_raw/predict/huge.json" in caplog.text


def test_only_empty_networks_still_report():
    tables, _, summary, quality = _predict({"empty.json": b'{"Layers": []}'})
    assert tables == {}
    assert summary["status"].tolist() == ["no modelled layer"]
    assert quality["networks_predicted"] == 0
    assert quality["networks_without_modelled_layer"] == {"empty": summary["note"].iloc[0]}


NETWORKS = 25
#: The models' card as the device_idle_power record carries it (no idle power: no totals).
CARD = {"device": {"name": "NVIDIA H200"}, "precisions": ["FP16"]}


@pytest.fixture
def predicted() -> tuple[pd.DataFrame, dict]:
    """25 copies of the tiny engine (``net_00`` ... ``net_24``) read and predicted."""
    files = {f"net_{i:02d}.json": json.dumps(tiny_engine()).encode() for i in range(NETWORKS)}
    loaders = {path: (lambda data=data: data) for path, data in files.items()}
    layers, networks = read_prediction_networks(loaders, "many", {"models": "m"})
    return predict_layers(layers, None, **standin_models()), networks


def _report(predicted: tuple[pd.DataFrame, dict], **options: object) -> tuple:
    layer_predictions, networks = predicted
    return report_predictions(layer_predictions, networks, CARD, {"models": "m", **options})


@pytest.mark.parametrize(("cap", "csvs"), [(None, NETWORKS), (10, 10), (0, 0), (100, NETWORKS)])
def test_csvs_are_capped_but_the_table_and_summary_hold_every_network(
    predicted: tuple, cap: int | None, csvs: int
) -> None:
    tables, table, summary, quality = _report(predicted, max_network_csvs=cap)
    assert list(tables) == [f"net_{i:02d}" for i in range(csvs)]  # the first, in name order
    assert table["network"].nunique() == NETWORKS and len(table) == 4 * NETWORKS
    assert len(summary) == NETWORKS
    assert summary["energy_mj"].tolist() == pytest.approx([TINY_ENERGY_MJ] * NETWORKS)
    assert quality["network_csvs"] == csvs and quality["networks_predicted"] == NETWORKS
    # a CSV is its network's rows of the table, without the network column
    for network, frame in tables.items():
        rows = table[table["network"] == network].drop(columns="network")
        pd.testing.assert_frame_equal(frame, rows.reset_index(drop=True))


def test_the_default_cap_is_100_csvs(predicted: tuple) -> None:
    tables, *_ = _report(predicted)
    assert len(tables) == NETWORKS  # 25 <= 100


def test_a_few_networks_are_logged_by_name_the_rest_counted(
    predicted: tuple, caplog: pytest.LogCaptureFixture
) -> None:
    layer_predictions, networks = predicted
    for info in networks["networks"].values():  # every network on another device
        info["device"] = {"name": "Jetson AGX Orin"}
    with caplog.at_level(logging.INFO):
        report_predictions(layer_predictions, networks, CARD, {"models": "m"})
    summaries = [r for r in caplog.records if "Total runtime" in r.getMessage()]
    assert len(summaries) == LOGGED_NETWORKS
    assert f"... and {NETWORKS - LOGGED_NETWORKS} more network(s): every network" in caplog.text
    device = [r for r in caplog.records if "runs on Jetson AGX Orin" in r.getMessage()]
    assert len(device) == LOGGED_NETWORKS
    assert f"... and {NETWORKS - LOGGED_NETWORKS} more network(s) run on another" in caplog.text
