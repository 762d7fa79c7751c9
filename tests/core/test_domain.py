"""Applicability domain: batch sizes, pooling kinds and sizes never trained on are flagged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from power_modelling.core.domain import assess, fit_domain, nearest_distance
from power_modelling.core.loco import engine_features, rewrite_batch
from tests.core.conftest import conv_layer, features_of, pool_layer
from tests.helpers import BUNDLED_RAW

TRAINED = ("alexnet", "mobilenet_v3_small", "resnet18", "resnet34", "vgg11", "vgg13")


def _engine(model: str) -> dict:
    path = Path(BUNDLED_RAW) / model / "trt_profiling" / "trt_engine_info.json"
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def training() -> pd.DataFrame:
    """Features of real bundled engines (batch 1): the domain needs no measurement."""
    frames = [engine_features(_engine(m), m).assign(model=m) for m in TRAINED]
    table = pd.concat(frames, ignore_index=True)
    return table[table["layer_class"] != "other"].reset_index(drop=True)


@pytest.fixture(scope="module")
def domain(training: pd.DataFrame) -> dict:
    return fit_domain(training, training["model"])


def test_training_layers_are_in_domain(training: pd.DataFrame, domain: dict) -> None:
    in_domain, notes = assess(training, domain)
    assert in_domain.all(), notes[~in_domain][:3]
    assert (notes == "").all()


def test_domain_records_what_was_trained(domain: dict) -> None:
    pooling = domain["classes"]["pooling"]
    assert pooling["categories"]["batch_size"] == [1]
    assert pooling["categories"]["pooling_kind"] == ["AVG 1x1", "AVG global", "MAX 2x2", "MAX 3x3"]
    assert domain["classes"]["convolutional"]["categories"]["element_bytes"] == [2]
    assert "3x3 depthwise" in domain["classes"]["convolutional"]["categories"]["conv_kind"]
    assert domain["classes"]["dense"]["n_groups"] == len(TRAINED)
    assert json.loads(json.dumps(domain)) == domain  # JSON-able as it is


def test_every_batch_8_layer_is_flagged(domain: dict) -> None:
    features = engine_features(rewrite_batch(_engine("resnet18"), 8), "resnet18@8")
    modelled = features[features["layer_class"] != "other"]
    in_domain, notes = assess(modelled, domain)
    assert len(modelled) == 14
    assert not in_domain.any()
    assert all("batch_size 8 outside trained [1, 1]" in note for note in notes)


def test_unseen_pooling_kind_is_flagged(domain: dict) -> None:
    """DenseNet's transition: 2x2 / stride-2 average pooling, never seen in training."""
    features = features_of(
        [
            pool_layer("transition", c=128, h=56, window=2, stride=2, kind="AVERAGE"),
            pool_layer("maxpool", c=64, h=112, window=3, stride=2, kind="MAX"),
        ]
    )
    in_domain, notes = assess(features, domain)
    assert notes[0].startswith("pooling_type AVG 2x2 never seen")
    assert not in_domain[0]
    assert in_domain[1], notes[1]  # resnet's stem max pooling: trained


def test_magnitude_outside_the_range_is_quantified(training: pd.DataFrame, domain: dict):
    conv = training[training["layer_class"] == "convolutional"]
    largest = conv.loc[conv["flops"].idxmax()]
    # vgg's largest 3x3 convolution with 4x the output channels: 4x the FLOPs
    bigger = features_of(
        [conv_layer("big", int(largest["input_size_0"]), int(largest["input_size_1"]),
                    4 * int(largest["output_size_0"]), kernel=3)]
    )  # fmt: skip
    ratio = bigger["flops"].iloc[0] / conv["flops"].max()
    in_domain, notes = assess(bigger, domain)
    assert not in_domain[0]
    assert f"flops {ratio:.1f}× above trained max" in notes[0]
    assert "below trained min" not in notes[0]


def test_other_layers_are_not_modelled(domain: dict) -> None:
    frame = features_of([conv_layer("c", 64, 56, 64)]).assign(layer_class="other")
    in_domain, notes = assess(frame, domain)
    assert not in_domain[0] and notes[0] == "layer class other not modelled"


def test_distance_is_calibrated_by_held_out_cnns(training: pd.DataFrame, domain: dict):
    """The threshold is a quantile of leave-one-CNN-out distances: the training layers sit at
    distance 0; a held-out CNN's layers rarely beyond 1 (the 0.99 quantile)."""
    assert np.nanmax(nearest_distance(training, domain)) == pytest.approx(
        0.0, abs=1e-4
    )  # points stored at 6 decimals
    held_out = training["model"] == "vgg13"
    partial = fit_domain(training[~held_out], training.loc[~held_out, "model"])
    ratio = nearest_distance(training[held_out], partial)
    assert np.mean(ratio <= 1.0) >= 0.9


def test_intervals_widen_with_distance_from_the_training_set(training: pd.DataFrame) -> None:
    """Calibrated on out-of-fold domain distances, a batch-8 layer's interval is wider than
    the same layer's at batch 1 (same prediction, farther from anything trained)."""
    from sklearn.model_selection import GroupKFold

    from power_modelling.core.intervals import (
        conformal_intervals,
        fit_conformal,
        out_of_fold_sigma,
        prediction_sigma,
    )

    rows = training[training["layer_class"] == "convolutional"].reset_index(drop=True)
    groups = rows["model"].to_numpy()
    folds = list(GroupKFold(3).split(rows, groups=groups))
    sigma = out_of_fold_sigma(rows, groups, folds)
    assert (sigma >= 1).all() and sigma.max() > 1.2  # some held-out layers are far
    rng = np.random.default_rng(0)
    truth = np.exp(rng.normal(0, 1, len(rows)))
    predicted = truth * np.exp(rng.normal(0, 0.1 * sigma))  # error grows with distance
    calibration = fit_conformal(truth, predicted, sigma, difficulty="domain_distance")
    assert calibration["difficulty"] == "domain_distance"
    assert prediction_sigma({**calibration, "difficulty": None}, np.ones(2)) is None

    domain = fit_domain(training, training["model"])
    near = engine_features(_engine("resnet18"), "resnet18")
    far = engine_features(rewrite_batch(_engine("resnet18"), 8), "resnet18@8")
    widths = []
    for features in (near, far):
        conv = features[features["layer_class"] == "convolutional"].iloc[:5]
        ratio = nearest_distance(conv, domain)
        lo, hi = conformal_intervals(np.ones(5), calibration, prediction_sigma(calibration, ratio))
        widths.append(np.log(hi) - np.log(lo))
    assert (widths[1] > widths[0] * 1.05).all()
