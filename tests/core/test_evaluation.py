"""Network-level accuracy: count-weighted totals of the test CNNs' modelled layers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from power_modelling.core.engines import describe_layers
from power_modelling.core.evaluation import network_accuracy
from power_modelling.core.features import build_features
from power_modelling.core.predictor import predict_layers
from tests.standins import standin_models, tiny_engine

# measured (power W, runtime ms) of the tiny engine's layers in test CNN "net_a"
MEASURED = {"conv1": (8.0, 0.5), "pool": (2.0, 0.1), "fc": (5.0, 0.25)}


def _test_tables() -> dict[str, pd.DataFrame]:
    features = build_features(describe_layers(tiny_engine(), "tiny.json"))
    features = features[features["layer_class"] != "other"].assign(model="net_a")
    features["power"] = features["layer_name"].map(lambda n: MEASURED[n][0])
    features["runtime"] = features["layer_name"].map(lambda n: MEASURED[n][1])
    # net_b: the pooling layer alone, its power unmeasured (left out of both sides)
    net_b = features[features["layer_name"] == "pool"].assign(model="net_b", power=np.nan)
    tables = pd.concat([features, net_b], ignore_index=True)
    tables["power_total"] = tables["power"] + 100.0
    return {
        layer_class: tables[tables["layer_class"] == layer_class]
        for layer_class in ("convolutional", "pooling", "dense")
    }


def _predictions() -> pd.DataFrame:
    """The inference's output for the two test CNNs (the stand-ins' constants)."""
    layers = describe_layers(tiny_engine(), "tiny.json")
    both = pd.concat([layers.assign(network="net_a"), layers.assign(network="net_b")])
    return predict_layers(both.reset_index(drop=True), standin_models())


def test_network_totals_and_accuracy_are_count_weighted() -> None:
    metadata = {
        "net_a": lambda: {"whole_model": {"latency_ms": 2.0, "avg_power_w": 110.0, "energy_mj": 7}},
        "net_b": lambda: {"whole_model": None},
    }
    section = network_accuracy(_test_tables(), _predictions(), metadata, idle_power_w=100.0)
    net_a = section["networks"]["net_a"]
    assert net_a["layers"] == 4  # conv1 counts twice
    # measured 2·0.5 + 0.1 + 0.25 = 1.35 ms; predicted 2·0.5 + 0.1 + 0.2 = 1.3 ms
    assert net_a["runtime_ms"]["measured"] == pytest.approx(1.35)
    assert net_a["runtime_ms"]["predicted"] == pytest.approx(1.3)
    assert net_a["runtime_accuracy"] == pytest.approx(1 - 0.05 / 1.35)
    # measured 2·8·0.5 + 2·0.1 + 5·0.25 = 9.45 mJ; predicted 2·10·0.5 + 2·0.1 + 5·0.2 = 11.2 mJ
    assert net_a["energy_mj"]["measured"] == pytest.approx(9.45)
    assert net_a["energy_mj"]["predicted"] == pytest.approx(11.2)
    assert net_a["energy_accuracy"] == pytest.approx(1 - 1.75 / 9.45)
    assert net_a["avg_power_w"]["measured"] == pytest.approx(9.45 / 1.35)
    # with idle: + 100 W over the runtime
    assert net_a["energy_total_mj"]["measured"] == pytest.approx(9.45 + 135.0)
    assert net_a["energy_total_accuracy"] == pytest.approx(1 - abs(141.2 - 144.45) / 144.45)
    whole = net_a["whole_model_measured"]
    assert whole["latency_ms"] == 2.0
    assert whole["dynamic_energy_per_inference_mj"] == pytest.approx(20.0)
    assert net_a["modelled_share_of_latency"] == pytest.approx(1.35 / 2.0)

    net_b = section["networks"]["net_b"]
    assert (net_b["layers"], net_b["layers_unmeasured"]) == (0, 1)
    assert "whole_model_measured" not in net_b
    assert section["n_networks"] == 2
    assert section["mean"]["runtime_accuracy"] == pytest.approx(net_a["runtime_accuracy"])


def test_without_idle_power_there_is_no_total_energy() -> None:
    section = network_accuracy(_test_tables(), _predictions(), {}, idle_power_w=None)
    assert "energy_total_mj" not in section["networks"]["net_a"]
    assert set(section["mean"]) == {"runtime_accuracy", "energy_accuracy", "avg_power_accuracy"}


def test_a_measured_layer_without_prediction_is_an_error_naming_it() -> None:
    predictions = _predictions()
    predictions = predictions[predictions["layer_name"] != "fc"]
    with pytest.raises(ValueError, match=r"1 measured test layer\(s\).*'net_a', 'fc'"):
        network_accuracy(_test_tables(), predictions, {}, idle_power_w=None)
