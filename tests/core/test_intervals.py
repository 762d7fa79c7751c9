"""Conformal intervals: coverage on synthetic data with known noise, network totals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from power_modelling.core.intervals import (
    conformal_intervals,
    coverage,
    difficulty_sigma,
    fit_conformal,
    grouped_oof_predictions,
    network_intervals,
)


class _Exact:
    """A model of ``y = exp(2 x)`` that knows the law (errors = the noise only)."""

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.exp(2 * frame["x"].to_numpy())


def _synthetic(
    n_groups: int, per_group: int, seed: int, noise, network_sd: float = 0.1
) -> pd.DataFrame:
    """``y = exp(2x + network effect + layer noise)``: log-normal errors of known spread."""
    rng = np.random.default_rng(seed)
    group = np.repeat(np.arange(n_groups), per_group)
    x = rng.uniform(0, 3, group.size)
    d = rng.uniform(0, 3, group.size)  # a difficulty the noise grows with (when asked to)
    log_noise = rng.normal(0, network_sd, n_groups)[group] + rng.normal(0, 1, group.size) * noise(d)
    return pd.DataFrame({"group": group, "x": x, "d": d, "y": np.exp(2 * x + log_noise)})


def test_coverage_and_width_match_the_known_noise() -> None:
    calibration_set = _synthetic(40, 25, seed=1, noise=lambda d: 0.2)
    oof, sigma = grouped_oof_predictions(
        lambda rows: _Exact(), calibration_set, calibration_set["group"].to_numpy()
    )
    assert (sigma == 1).all()
    calibration = fit_conformal(calibration_set["y"], oof, sigma)
    new = _synthetic(100, 20, seed=2, noise=lambda d: 0.2)
    lo, hi = conformal_intervals(_Exact().predict(new), calibration)
    assert coverage(new["y"], lo, hi) == pytest.approx(0.9, abs=0.03)
    # 90 % of a normal with sd sqrt(0.1² + 0.2²) in log space: ±1.645·0.224
    half_width = 0.5 * np.log(hi / lo)
    assert np.median(half_width) == pytest.approx(1.645 * np.hypot(0.1, 0.2), rel=0.1)


def test_normalised_intervals_cover_hard_and_easy_rows_alike() -> None:
    def noise(d):
        return 0.05 * (1 + d)

    calibration_set = _synthetic(40, 25, seed=3, noise=noise, network_sd=0.0)
    sigma = difficulty_sigma(calibration_set["d"].to_numpy())
    calibration = fit_conformal(calibration_set["y"], _Exact().predict(calibration_set), sigma)
    new = _synthetic(100, 20, seed=4, noise=noise, network_sd=0.0)
    lo, hi = conformal_intervals(_Exact().predict(new), calibration, difficulty_sigma(new["d"]))
    easy, hard = (new["d"] < 1).to_numpy(), (new["d"] > 2).to_numpy()
    assert coverage(new["y"][easy], lo[easy], hi[easy]) >= 0.85
    assert coverage(new["y"][hard], lo[hard], hi[hard]) >= 0.85
    assert np.median(hi[hard] / lo[hard]) > np.median(hi[easy] / lo[easy])


def test_power_intervals_are_calibrated_on_total_power() -> None:
    """Dynamic power ~0 W has a meaningless relative error; the idle shift fixes it."""
    calibration = fit_conformal([12.0, 1.0, 50.0] * 10, [11.0, 2.0, 52.0] * 10, shift=100.0)
    assert calibration["shift"] == 100.0
    assert max(np.abs(calibration["residuals"])) == pytest.approx(np.log(152 / 150), abs=1e-6)
    lo, hi = conformal_intervals(np.array([1.0]), calibration)
    assert lo[0] < 1.0 < hi[0] and hi[0] - lo[0] < 3.0  # ±~1 W, not ±100 %


def test_too_few_calibration_rows_give_an_unbounded_interval() -> None:
    calibration = fit_conformal([1.0, 2.0, 3.0], [1.1, 2.1, 2.9])
    lo, hi = conformal_intervals(np.array([2.0]), calibration)
    assert lo[0] == 0.0 and np.isinf(hi[0])


def test_network_totals_sum_the_bounds() -> None:
    layers = pd.DataFrame(
        {
            "model": ["a", "a", "b"],
            "count": [2, 1, 1],
            "runtime_pred": [1.0, 2.0, 4.0],
            "runtime_lo": [0.5, 1.0, 3.0],
            "runtime_hi": [2.0, 3.0, 5.0],
            "power_pred": [10.0, 20.0, 5.0],
            "power_lo": [5.0, 10.0, 4.0],
            "power_hi": [20.0, 30.0, 6.0],
        }
    )
    totals = network_intervals(layers)
    assert totals.loc["a", ["runtime_ms", "runtime_ms_lo", "runtime_ms_hi"]].tolist() == [
        4.0,
        2.0,
        7.0,
    ]
    # energy: 2·10·1 + 20·2 = 60; lo 2·5·0.5 + 10·1 = 15; hi 2·20·2 + 30·3 = 170
    assert totals.loc["a", ["energy_mj", "energy_mj_lo", "energy_mj_hi"]].tolist() == [
        60.0,
        15.0,
        170.0,
    ]
    independent = network_intervals(layers, method="independent")
    # below: sqrt((2·0.5)² + 1²) = sqrt(2)
    assert independent.loc["a", "runtime_ms_lo"] == pytest.approx(4.0 - np.sqrt(2.0))
    assert independent.loc["b", "runtime_ms_hi"] == pytest.approx(5.0)


def test_the_stored_half_width_gives_crepes_intervals_without_crepes() -> None:
    """Prediction computes crepes' normalised interval from the half-width crepes gave at
    calibration: the same bounds, and no import of crepes (scikit-learn, SciPy)."""
    import json
    import subprocess
    import sys

    rng = np.random.default_rng(3)
    truth = np.exp(rng.normal(0, 1, 400))
    predicted = truth * np.exp(rng.normal(0, 0.2, 400))
    sigma = 1 + rng.uniform(0, 2, 400)
    calibration = fit_conformal(truth, predicted, sigma)
    assert set(calibration["half_width"]) == {"0.9"}
    new, new_sigma = np.array([0.5, 2.0, 30.0]), np.array([1.0, 1.7, 3.0])
    stored = conformal_intervals(new, calibration, new_sigma)
    asked = conformal_intervals(new, {**calibration, "half_width": {}}, new_sigma)  # crepes
    np.testing.assert_allclose(stored, asked, rtol=1e-12)
    code = (
        "import json, sys\n"
        "from power_modelling.core.intervals import conformal_intervals\n"
        f"lo, hi = conformal_intervals({new.tolist()}, json.loads({json.dumps(calibration)!r}),"
        f" {new_sigma.tolist()})\n"
        "print(json.dumps([[m for m in ('crepes', 'sklearn', 'scipy') if m in sys.modules],"
        " lo.tolist(), hi.tolist()]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    heavy, lo, hi = json.loads(done.stdout.strip().splitlines()[-1])
    assert heavy == []
    np.testing.assert_allclose([lo, hi], stored, rtol=1e-12)


def test_calibration_holds_out_families_when_there_are_three_or_more() -> None:
    from power_modelling.core.intervals import MIN_CALIBRATION_FAMILIES, calibration_groups

    cnns = ["vgg11", "vgg19", "resnet18", "resnext50_32x4d", "mobilenet_v2"]
    groups, how = calibration_groups(cnns)
    assert how == "family" and list(groups) == ["vgg", "vgg", "resnet", "resnext", "mobilenet"]
    assert MIN_CALIBRATION_FAMILIES == 3
    two_families = ["vgg11", "vgg19", "resnet18", "resnet50"]
    groups, how = calibration_groups(two_families)
    assert how == "model" and list(groups) == two_families
    assert calibration_groups(cnns, "model")[1] == "model"
    with pytest.raises(ValueError, match="not one of"):
        calibration_groups(cnns, "layer")
