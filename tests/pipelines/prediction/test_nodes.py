"""The prediction pipeline's nodes on many networks: one table, the summary, capped CSVs."""

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

NETWORKS = 25
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
    return report_predictions(layer_predictions, networks, None, CARD, {"models": "m", **options})


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
        report_predictions(layer_predictions, networks, None, CARD, {"models": "m"})
    summaries = [r for r in caplog.records if "Total runtime" in r.getMessage()]
    assert len(summaries) == LOGGED_NETWORKS
    assert f"... and {NETWORKS - LOGGED_NETWORKS} more network(s): every network" in caplog.text
    device = [r for r in caplog.records if "runs on Jetson AGX Orin" in r.getMessage()]
    assert len(device) == LOGGED_NETWORKS
    assert f"... and {NETWORKS - LOGGED_NETWORKS} more network(s) run on another" in caplog.text
