"""Nodes on synthetic frames: grouped selection, NaN targets, determinism, report shape."""

import numpy as np
import pytest

from power_modelling.core.layers import LAYER_CLASSES
from power_modelling.pipelines.modelling.nodes import (
    cross_validate_candidates,
    evaluate_leave_one_cnn_out,
    fit_baseline_model,
    fit_selected_model,
    fit_spec,
    plot_leave_one_cnn_out,
    plot_predicted_vs_measured,
    plot_test_model_bars,
    predict_test_set,
    report_metrics,
    spec_fitter,
)
from tests.synthetic import EVALUATION, small_target_params


def test_cross_validation_counts_missing_targets_and_selects(conv_table):
    report = cross_validate_candidates(conv_table, small_target_params("power"), EVALUATION)
    assert report["n_rows"] == len(conv_table) - 2
    assert report["n_rows_without_target"] == 2
    assert report["folds"] == 3
    assert set(report["candidates"]) == {"baseline", "extra_trees"}
    assert set(report["candidates"]["baseline"]) == {"power", "power_total", "seconds"}
    chosen = report["selected"]
    rmspe = {name: c["power_total"]["rmspe"] for name, c in report["candidates"].items()}
    assert rmspe[chosen] == min(rmspe.values())


def test_cross_validation_needs_two_groups(conv_table):
    one_model = conv_table[conv_table["model"] == "net0"]
    with pytest.raises(ValueError, match="2\\+ models"):
        cross_validate_candidates(one_model, small_target_params("runtime"), EVALUATION)


def test_missing_feature_column_is_named(conv_table):
    with pytest.raises(KeyError, match="flops"):
        fit_selected_model(
            conv_table.drop(columns="flops"),
            small_target_params("runtime"),
            {"selected": "extra_trees"},
            EVALUATION,
        )


def _evaluate(table):
    train, test = table[table["model"] != "net5"], table[table["model"] == "net5"]
    params = {t: small_target_params(t) for t in ("power", "runtime")}
    cv = {t: cross_validate_candidates(train, params[t], EVALUATION) for t in params}
    models = {t: fit_selected_model(train, params[t], cv[t], EVALUATION)[0] for t in params}
    baselines = {t: fit_baseline_model(train, params[t], EVALUATION) for t in params}
    predictions = predict_test_set(
        test, models["power"], models["runtime"], baselines["power"], baselines["runtime"]
    )
    return predictions, report_metrics(predictions, cv["power"], cv["runtime"], EVALUATION)


def test_evaluation_is_deterministic_and_complete(conv_table):
    predictions, metrics = _evaluate(conv_table)
    again, metrics_again = _evaluate(conv_table)
    assert metrics == metrics_again
    assert set(metrics) == {"power", "power_total", "runtime"}
    for target_metrics in metrics.values():
        for key in (
            "rmspe",
            "rmse",
            "mae",
            "mape",
            "r2",
            "within_10pct",
            "cv_rmspe",
            "baseline_rmspe",
            "baseline_cv_rmspe",
        ):
            assert key in target_metrics
        assert target_metrics["estimator"] in {"baseline", "extra_trees"}
    # total power = dynamic prediction + the row's idle power (120 W in the synthetic data)
    power = predictions[predictions["target"] == "power"]["predicted"].to_numpy()
    total = predictions[predictions["target"] == "power_total"]["predicted"].to_numpy()
    np.testing.assert_allclose(total - power, 120.0)
    assert metrics["runtime"]["rmspe"] < 20  # runtime follows the FLOPs closely
    figures = plot_test_model_bars(predictions) + plot_predicted_vs_measured(predictions)
    assert len(figures) == 6


def test_trend_candidate_learns_dynamic_power_with_capped_inner_folds(conv_table):
    """A spec's ``model_total_power: false`` overrides the target's (no idle shift), and the
    trend's LassoCV folds are capped at the rows like the regressor's."""
    params = small_target_params("power")
    spec = {
        "features": ["flops", "input_bytes"],
        "log_inputs": True,
        "trend": {"scaler": "standard", "regressor": {"type": "lasso_cv", "cv": 50}},
        "regressor": {"type": "extra_trees", "n_estimators": 5},
        "log_target": True,
        "model_total_power": False,
    }
    rows = conv_table[conv_table["power"].notna()].iloc[:20]
    model = fit_spec(rows, spec, params, random_state=0)
    assert model.transformer_.named_steps["shift"].kw_args == {"c": [0.0, 1.0]}
    trend = model.regressor_.named_steps["regressor"].trend_
    assert trend.named_steps["regressor"].cv == 20
    np.testing.assert_allclose(model.predict(rows), rows["power"], rtol=0.1)  # repeated inputs


@pytest.mark.parametrize(
    ("selection", "message"),
    [
        ({"target": "power_total", "metric": "rmsle"}, "selection.metric 'rmsle'"),
        ({"target": "runtime", "metric": "rmspe"}, "selection.target 'runtime'"),
    ],
)
def test_selection_must_name_a_scored_target_and_known_metric(conv_table, selection, message):
    params = {**small_target_params("power"), "selection": selection}
    with pytest.raises(ValueError, match=message):
        cross_validate_candidates(conv_table, params, EVALUATION)


def test_selection_by_a_higher_is_better_metric_picks_the_highest(conv_table):
    params = {**small_target_params("power"), "selection": {"target": "power", "metric": "r2"}}
    report = cross_validate_candidates(conv_table, params, EVALUATION)
    r2 = {name: c["power"]["r2"] for name, c in report["candidates"].items()}
    assert r2[report["selected"]] == max(r2.values())


def test_only_eligible_estimators_are_chosen_and_their_residuals_calibrate_intervals(conv_table):
    params = small_target_params("runtime")
    free = cross_validate_candidates(conv_table, params, EVALUATION)
    assert free["selected"] != "baseline"  # on this table another estimator wins...
    params = {**params, "selection": {**params["selection"], "eligible": ["baseline"]}}
    report = cross_validate_candidates(conv_table, params, EVALUATION)
    assert report["selected"] == "baseline"  # ...but only the eligible one may be chosen
    assert report["candidates"].keys() == free["candidates"].keys()  # all still compared
    calibration = report["calibration"]
    # rows with a positive measurement and prediction (log residuals)
    assert 0 < calibration["n"] <= report["n_rows"] and calibration["shift"] == 0.0
    assert len(calibration["residuals"]) == calibration["n"]
    with pytest.raises(ValueError, match=r"selection.eligible .* names \['nope'\]"):
        cross_validate_candidates(
            conv_table,
            {**params, "selection": {**params["selection"], "eligible": ["nope"]}},
            EVALUATION,
        )


def _loco_inputs(conv_table, selected: str = "extra_trees") -> dict:
    """The leave-one-CNN-out node's keyword inputs: convolutions only (the other classes'
    tables empty), nets 0-4 training and net5 test."""
    empty = conv_table.iloc[:0]
    inputs = {}
    for layer_class in LAYER_CLASSES:
        table = conv_table if layer_class == "convolutional" else empty
        inputs[f"{layer_class}_train"] = table[table["model"] != "net5"]
        inputs[f"{layer_class}_test"] = table[table["model"] == "net5"]
        inputs[f"{layer_class}_parameters"] = {
            t: small_target_params(t) for t in ("power", "runtime")
        }
        for target in ("power", "runtime"):
            inputs[f"{layer_class}_{target}_cv"] = {"selected": selected}
    return inputs


def test_leave_one_cnn_out_predicts_every_cnn_with_the_selected_estimators(conv_table):
    loco = {"enabled": True, "n_jobs": 1, "domain": False, "intervals": False}
    predictions, section = evaluate_leave_one_cnn_out(loco, EVALUATION, **_loco_inputs(conv_table))
    cnns = [f"net{i}" for i in range(6)]  # training and test CNNs alike
    assert section["enabled"] is True
    assert section["cnns"] == cnns and sorted(section["per_cnn"]) == cnns
    assert section["estimators"]["convolutional"] == {
        "power": "extra_trees",
        "runtime": "extra_trees",
    }
    assert len(predictions) == len(conv_table)
    assert predictions["runtime_pred"].notna().all()
    net5 = predictions[predictions["model"] == "net5"]
    rmspe = 100 * np.sqrt(np.mean((net5["runtime_pred"] / net5["runtime"] - 1) ** 2))
    assert section["per_cnn"]["net5"]["per_class"]["convolutional"]["runtime"]["rmspe"] == (
        pytest.approx(rmspe)
    )
    assert section["summary"]["n_cnns"] == 6
    figure = plot_leave_one_cnn_out(section)
    assert len(figure.axes) == 3


def test_leave_one_cnn_out_can_be_turned_off(conv_table):
    predictions, section = evaluate_leave_one_cnn_out(
        {"enabled": False}, EVALUATION, **_loco_inputs(conv_table)
    )
    assert predictions.empty
    assert section == {"enabled": False, "note": "disabled (loco.enabled: false)"}
    assert plot_leave_one_cnn_out(section).texts  # a figure that says so


def test_physics_estimators_get_the_device_constants_of_their_training_cnns(conv_table):
    from power_modelling.core.physics_features import fit_device_constants

    spec = {"physics": "convolutional", "settings": {"n_estimators": 5}}
    fit = spec_fitter({("convolutional", "runtime"): (spec, small_target_params("runtime"))}, 7)
    table = conv_table.assign(layer_class="convolutional")
    train = table[table["model"] != "net0"]
    model = fit(train, "convolutional", "runtime")
    assert model.device_constants == fit_device_constants(train)  # not the held-out CNN's
    assert model.device_constants != fit_device_constants(table)


def test_intervals_hold_out_whole_architecture_families(conv_table):
    """The calibration residuals come from folds holding out whole families (name prefixes)
    once the training CNNs span three or more; the selection CV still holds out CNNs."""
    from sklearn.model_selection import GroupKFold

    params = small_target_params("runtime")
    one_family = cross_validate_candidates(conv_table, params, EVALUATION)
    assert one_family["calibration"]["held_out"] == "model"  # net0..net5: a single family
    names = {"net0": "alpha1", "net1": "alpha2", "net2": "beta1", "net3": "beta2",
             "net4": "gamma1", "net5": "gamma2"}  # fmt: skip
    renamed = conv_table.assign(model=conv_table["model"].map(names))
    report = cross_validate_candidates(renamed, params, EVALUATION)
    calibration = report["calibration"]
    assert (calibration["held_out"], calibration["folds"]) == ("family", 3)
    for name, scores in report["candidates"].items():  # selection: the same CNN folds
        assert scores["runtime"] == one_family["candidates"][name]["runtime"]
    # the residuals are the selected estimator's, refitted with each family held out
    rows = renamed[renamed["runtime"].notna()].reset_index(drop=True)
    families = rows["model"].str.rstrip("0123456789").to_numpy()
    spec = params["candidates"].get(report["selected"]) or params["baseline"]
    oof = np.full(len(rows), np.nan)
    for train, test in GroupKFold(n_splits=3).split(rows, groups=families):
        model = fit_spec(rows.iloc[train], spec, params, EVALUATION["random_state"])
        oof[test] = model.predict(rows.iloc[test])
    usable = oof > 0
    expected = (np.log(rows["runtime"].to_numpy()[usable]) - np.log(oof[usable])).round(6)
    np.testing.assert_allclose(calibration["residuals"], expected, atol=1e-12)
    assert calibration["residuals"] != one_family["calibration"]["residuals"]
    with pytest.raises(
        ValueError, match="evaluation.calibration_group_by: calibration grouping 'nope'"
    ):
        cross_validate_candidates(renamed, params, {**EVALUATION, "calibration_group_by": "nope"})
