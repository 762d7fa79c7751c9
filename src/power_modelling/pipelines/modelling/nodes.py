"""Nodes of the modelling template: grouped model selection, fitting, evaluation, charts.

Targets: ``power`` (dynamic W above idle) and ``runtime`` (ms per execution) are learned;
``power_total`` (W including idle) is evaluated from the power model plus each row's idle
power (``power_total - power``), as NeuralPower reports power.
"""

from __future__ import annotations

import logging
import time
import warnings
from typing import Any, Protocol

import numpy as np
import pandas as pd

from power_modelling.core.layers import LAYER_CLASSES, REPORTED_TARGETS
from power_modelling.core.metrics import (
    SELECTION_METRICS,
    regression_metrics,
    selection_loss,
)


# scikit-learn and matplotlib are imported by the nodes that use them (`kedro run --pipelines
# prediction`, or any command, imports this module without them); the annotations name what
# the nodes need of their objects, and Kedro can resolve them.
class RegressorMixin(Protocol):
    """A scikit-learn regressor."""

    def fit(self, X: Any, y: Any) -> Any: ...  # noqa: N803 (scikit-learn's API)

    def predict(self, X: Any) -> Any: ...  # noqa: N803


class Figure(Protocol):
    """A matplotlib figure."""

    def savefig(self, *args: Any, **kwargs: Any) -> None: ...


logger = logging.getLogger(__name__)

BASELINE = "baseline"


# ----------------------------------------------------------------------------- helpers
def _idle_power(frame: pd.DataFrame) -> pd.Series:
    """Idle power (W) of each row: total minus dynamic power."""
    return frame["power_total"] - frame["power"]


def _trainable_rows(frame: pd.DataFrame, target: str, context: str) -> pd.DataFrame:
    """Rows with a measured ``target``; the others are counted and logged."""
    if target not in frame.columns:
        raise KeyError(f"{context}: target column '{target}' missing; columns: {list(frame)}")
    kept = frame[frame[target].notna()]
    if len(kept) < len(frame):
        logger.info(
            "%s: %d of %d rows have no '%s' and are left out",
            context,
            len(frame) - len(kept),
            len(frame),
            target,
        )
    return kept


def _specs(target_params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The baseline and the candidate specifications of one target, by name."""
    return {BASELINE: target_params["baseline"], **(target_params.get("candidates") or {})}


def _target_shift(
    train: pd.DataFrame, target_params: dict[str, Any], spec: dict[str, Any] | None = None
) -> float:
    """Shift of the log target: the median idle power for ``model_total_power`` targets (a
    spec's own ``model_total_power`` overrides the target's)."""
    total = (spec or {}).get("model_total_power", target_params.get("model_total_power", False))
    if not total:
        return 0.0
    return float(np.nanmedian(_idle_power(train)))


def _clip_for_log(y: pd.Series, spec: dict[str, Any], shift: float, floor: float) -> pd.Series:
    """Targets of a log-space estimator are clipped so that ``y + shift >= floor``."""
    if not spec.get("log_target", False):
        return y
    clipped = y.clip(lower=floor - shift)
    if (changed := int((clipped != y).sum())) > 0:
        logger.info("%d target values clipped to the log floor %.3g", changed, floor - shift)
    return clipped


def _cv_within_rows(spec: dict[str, Any], n_rows: int, target: str) -> dict[str, Any]:
    """``spec`` with the internal CV folds (LassoCV's ``cv``) of its regressor and of its
    ``trend`` capped at the rows available: a small training set (or CV fold) must not fail
    the run."""

    def capped(regressor: dict[str, Any]) -> dict[str, Any]:
        folds = regressor.get("cv")
        if not isinstance(folds, int) or folds <= n_rows:
            return regressor
        if n_rows < 2:
            raise ValueError(f"'{target}': {n_rows} training row(s), too few to fit {spec}")
        logger.warning(
            "'%s': only %d training rows, internal CV reduced from %d to %d folds",
            target,
            n_rows,
            folds,
            n_rows,
        )
        return {**regressor, "cv": n_rows}

    capped_spec = {**spec, "regressor": capped(spec.get("regressor", {}))}
    if spec.get("trend"):
        trend = spec["trend"]
        capped_spec["trend"] = {**trend, "regressor": capped(trend.get("regressor", {}))}
    return capped_spec


def fit_spec(
    train: pd.DataFrame,
    spec: dict[str, Any],
    target_params: dict[str, Any],
    random_state: int,
    *,
    threads: int = 1,
    device_constants: dict[str, float] | None = None,
) -> RegressorMixin:
    """Build the estimator of ``spec`` and fit it on the rows of ``train`` with a target."""
    from sklearn.exceptions import ConvergenceWarning  # noqa: PLC0415 (heavy: used here only)
    from threadpoolctl import threadpool_limits  # noqa: PLC0415

    from power_modelling.core.estimators import build_estimator, required_columns  # noqa: PLC0415

    target = target_params["target"]
    missing = sorted(set(required_columns(spec)) - set(train.columns))
    if missing:
        raise KeyError(f"Feature columns {missing} missing from the training table")
    shift = _target_shift(train, target_params, spec)
    spec = _cv_within_rows(spec, len(train), target)
    estimator = build_estimator(
        spec,
        random_state=random_state,
        target_shift=shift,
        target=target,
        device_constants=device_constants,
    )
    y = _clip_for_log(train[target], spec, shift, float(target_params.get("log_floor", 1e-6)))
    # BLAS threads: `evaluation.threads` (many small fits gain nothing from more). Coordinate
    # descent at the smallest of the 500 alphas rarely converges on collinear degree-3 terms:
    # one summary line per fit instead of one warning per alpha and fold.
    with threadpool_limits(limits=threads), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        fitted = estimator.fit(train, y.to_numpy())
    unconverged = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
    if unconverged:
        logger.info(
            "%s: coordinate descent stopped at max_iter in %d of the CV fits (%s)",
            target,
            unconverged,
            (spec.get("regressor") or {}).get("type", "estimator"),
        )
    for other in (w for w in caught if not issubclass(w.category, ConvergenceWarning)):
        warnings.warn_explicit(other.message, other.category, other.filename, other.lineno)
    return fitted


def _score(frame: pd.DataFrame, predicted: np.ndarray, target: str, floors: dict) -> dict:
    """Metrics of one target, plus total power when the target is dynamic power."""
    scores = {target: regression_metrics(frame[target], predicted, floors.get(target, 0.0))}
    if target == "power":
        scores["power_total"] = regression_metrics(
            frame["power_total"], predicted + _idle_power(frame), floors.get("power_total", 0.0)
        )
    return scores


def _checked_selection(target: str, selection: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """``selection`` ({target, metric[, eligible]}) when it names a scored target, a known
    metric and, if given, estimators that exist (``eligible``: the only ones that may be
    chosen; the others are cross-validated for comparison)."""
    unknown = [name for name in selection.get("eligible") or [] if name not in names]
    if unknown:
        raise ValueError(
            f"selection.eligible of the '{target}' model names {unknown}, not among {names}"
        )
    targets = [target, "power_total"] if target == "power" else [target]
    if selection["target"] not in targets:
        raise ValueError(
            f"selection.target '{selection['target']}' of the '{target}' model is not one of "
            f"{targets}"
        )
    if selection["metric"] not in SELECTION_METRICS:
        raise ValueError(
            f"selection.metric '{selection['metric']}' of the '{target}' model is not one of "
            f"{list(SELECTION_METRICS)}"
        )
    return selection


# ----------------------------------------------------------------------------- nodes
def cross_validate_candidates(
    train: pd.DataFrame,
    target_params: dict[str, Any],
    evaluation: dict[str, Any],
    device_constants: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Grouped cross-validation (``GroupKFold`` by CNN model) of the baseline and every
    candidate; picks the best ``selection.metric`` on ``selection.target`` (the lowest error,
    or the highest ``r2`` / ``within_10pct``) among the ``selection.eligible`` ones (default:
    all).

    Returns a JSON-able report: ``selected``, ``selection``, rows used / left out, per
    candidate the out-of-fold metrics (``power`` also gives ``power_total``) and fit seconds,
    and ``calibration``: the chosen estimator's out-of-fold log residuals, from which the
    prediction intervals are made, held out by architecture family
    (``evaluation.calibration_group_by``; by CNN where there are fewer than three families):
    the width reflects networks unlike the training set.
    """
    from sklearn.model_selection import GroupKFold  # noqa: PLC0415 (heavy: used here only)

    from power_modelling.core.intervals import (  # noqa: PLC0415 (crepes, sklearn)
        calibration_groups,
        fit_conformal,
        out_of_fold_sigma,
    )

    target = target_params["target"]
    specs = _specs(target_params)
    selection = _checked_selection(target, target_params["selection"], list(specs))
    rows = _trainable_rows(train, target, f"cross-validation of '{target}'")
    groups = rows[evaluation["group_column"]]
    n_splits = min(int(evaluation["cv_folds"]), groups.nunique())
    if n_splits < 2:
        raise ValueError(f"Grouped CV of '{target}' needs 2+ models, got {groups.nunique()}")
    folds = list(GroupKFold(n_splits=n_splits).split(rows, groups=groups))
    try:  # checked before any fit
        held_out, grouped_by = calibration_groups(
            groups.to_numpy(), evaluation.get("calibration_group_by", "family")
        )
    except ValueError as error:
        raise ValueError(f"parameter evaluation.calibration_group_by: {error}") from error
    seed = int(evaluation["random_state"])
    threads = int(evaluation.get("threads", 1))
    candidates: dict[str, Any] = {}
    out_of_fold: dict[str, np.ndarray] = {}

    def out_of_fold_predictions(spec: dict[str, Any], splits: list) -> np.ndarray:
        """Each row predicted by ``spec`` fitted on the other folds of ``splits``."""
        predicted = np.full(len(rows), np.nan)
        for train_index, test_index in splits:
            model = fit_spec(
                rows.iloc[train_index],
                spec,
                target_params,
                seed,
                threads=threads,
                device_constants=device_constants,
            )
            predicted[test_index] = model.predict(rows.iloc[test_index])
        return predicted

    for name, spec in specs.items():
        started = time.perf_counter()
        predicted = out_of_fold_predictions(spec, folds)
        out_of_fold[name] = predicted
        seconds = time.perf_counter() - started
        candidates[name] = {
            **_score(rows, predicted, target, evaluation["percentage_floor"]),
            "seconds": round(seconds, 2),
        }
        logger.info(
            "CV %-18s %-8s RMSPE %.2f %% (%.1f s)",
            name,
            target,
            candidates[name][target]["rmspe"],
            seconds,
        )

    def criterion(name: str) -> float:
        metric = selection["metric"]
        return selection_loss(metric, candidates[name][selection["target"]][metric])

    eligible = selection.get("eligible") or list(candidates)
    selected = min(eligible, key=criterion)  # ties: the first listed
    logger.info(
        "'%s': selected %s by %s of %s", target, selected, selection["metric"], selection["target"]
    )
    # total power's residuals for power (the shift): its log is what the models are good at
    shift = float(np.nanmedian(_idle_power(rows))) if target == "power" else 0.0
    # the intervals' residuals hold out whole architecture families (a CNN's siblings in
    # training flatter it: docs/modelling.md), refitting the selected estimator once per fold
    calibration_folds, residual_source = folds, out_of_fold[selected]
    if grouped_by == "family":
        n_families = min(n_splits, len(set(held_out.tolist())))
        calibration_folds = list(GroupKFold(n_splits=n_families).split(rows, groups=held_out))
        residual_source = out_of_fold_predictions(specs[selected], calibration_folds)
    # normalised by each held-out layer's distance to the other folds' training layers:
    # intervals widen with distance from the training set (a batch size never trained on);
    # a table without layer classes (no domain to measure against) calibrates unnormalised
    sigma, difficulty = None, None
    if "layer_class" in rows.columns:
        sigma = out_of_fold_sigma(rows, groups.astype(str).to_numpy(), calibration_folds)
        difficulty = "domain_distance"
    calibration = fit_conformal(
        rows[target].to_numpy(), residual_source, sigma, shift=shift, difficulty=difficulty
    )
    calibration["held_out"] = grouped_by
    calibration["folds"] = len(calibration_folds)
    return {
        "target": target,
        "selected": selected,
        "selection": dict(selection),
        "group_column": evaluation["group_column"],
        "folds": n_splits,
        "n_rows": len(rows),
        "n_rows_without_target": len(train) - len(rows),
        "candidates": candidates,
        "calibration": calibration,
    }


def fit_selected_model(
    train: pd.DataFrame,
    target_params: dict[str, Any],
    cv_report: dict[str, Any],
    evaluation: dict[str, Any],
    device_constants: dict[str, float] | None = None,
) -> tuple[RegressorMixin, RegressorMixin]:
    """Fit the estimator chosen by cross-validation on the whole training set.

    Returned twice: once for ``data/06_models`` and once for the MLflow model dataset.
    """
    target = target_params["target"]
    rows = _trainable_rows(train, target, f"fitting '{target}'")
    spec = _specs(target_params)[cv_report["selected"]]
    model = fit_spec(
        rows,
        spec,
        target_params,
        int(evaluation["random_state"]),
        threads=int(evaluation.get("threads", 1)),
        device_constants=device_constants,
    )
    return model, model


def fit_baseline_model(
    train: pd.DataFrame, target_params: dict[str, Any], evaluation: dict[str, Any]
) -> RegressorMixin:
    """Fit the NeuralPower reference configuration on the whole training set (for reference
    metrics on the test models)."""
    target = target_params["target"]
    rows = _trainable_rows(train, target, f"fitting the baseline of '{target}'")
    return fit_spec(
        rows,
        target_params["baseline"],
        target_params,
        int(evaluation["random_state"]),
        threads=int(evaluation.get("threads", 1)),
    )


def predict_test_set(
    test: pd.DataFrame,
    power_model: RegressorMixin,
    runtime_model: RegressorMixin,
    power_baseline: RegressorMixin,
    runtime_baseline: RegressorMixin,
) -> pd.DataFrame:
    """Measured and predicted values of every test layer, long format: ``model, layer_name,
    target, measured, predicted, baseline`` (``power_total`` = power + the row's idle)."""
    idle = _idle_power(test)
    predictions = {
        "power": (power_model.predict(test), power_baseline.predict(test)),
        "runtime": (runtime_model.predict(test), runtime_baseline.predict(test)),
    }
    predictions["power_total"] = tuple(p + idle.to_numpy() for p in predictions["power"])
    frames = [
        pd.DataFrame(
            {
                "model": test["model"].to_numpy(),
                "layer_name": test["layer_name"].to_numpy(),
                "target": target,
                "measured": test[target].to_numpy(dtype=float),
                "predicted": predictions[target][0],
                "baseline": predictions[target][1],
            }
        )
        for target in REPORTED_TARGETS
    ]
    return pd.concat(frames, ignore_index=True)


def report_metrics(
    predictions: pd.DataFrame,
    power_cv: dict[str, Any],
    runtime_cv: dict[str, Any],
    evaluation: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    """``{target: {metric: value}}`` for ``power``, ``power_total`` and ``runtime``.

    Plain names are the chosen estimator on the held-out test models; ``cv_*`` its grouped
    cross-validation; ``baseline_*`` / ``baseline_cv_*`` the NeuralPower reference; plus the
    chosen ``estimator`` name.
    """
    floors = evaluation["percentage_floor"]
    cv_by_target = {"power": power_cv, "power_total": power_cv, "runtime": runtime_cv}
    report: dict[str, dict[str, Any]] = {}
    for target, rows in predictions.groupby("target", sort=False):
        floor = floors.get(target, 0.0)
        cv = cv_by_target[target]
        report[str(target)] = {
            **regression_metrics(rows["measured"], rows["predicted"], floor),
            **_prefixed("baseline_", regression_metrics(rows["measured"], rows["baseline"], floor)),
            **_prefixed("cv_", cv["candidates"][cv["selected"]][target]),
            **_prefixed("baseline_cv_", cv["candidates"][BASELINE][target]),
            "estimator": cv["selected"],
        }
    return report


def _prefixed(prefix: str, metrics: dict[str, float]) -> dict[str, float]:
    return {f"{prefix}{key}": value for key, value in metrics.items()}


def plot_test_model_bars(predictions: pd.DataFrame) -> tuple[Figure, Figure, Figure]:
    """Per test model, measured vs predicted (and baseline) per layer: one figure per target
    (``power``, ``power_total``, ``runtime``), one panel per test model."""
    from power_modelling.core import charts  # noqa: PLC0415 (matplotlib: used here only)

    return tuple(
        charts.bars_per_test_model(predictions[predictions["target"] == t], t)
        for t in REPORTED_TARGETS
    )


def plot_predicted_vs_measured(predictions: pd.DataFrame) -> tuple[Figure, Figure, Figure]:
    """Predicted vs measured scatter on log axes, one figure per target."""
    from power_modelling.core import charts  # noqa: PLC0415 (matplotlib: used here only)

    return tuple(
        charts.predicted_vs_measured(predictions[predictions["target"] == t], t)
        for t in REPORTED_TARGETS
    )


def estimate_device_constants(*training_tables: pd.DataFrame) -> dict[str, float]:
    """The device's constants (peak FLOP/ms, bandwidth bytes/ms, launch floor, runtime trend)
    estimated from the measured layers of every class's training table (in the order of
    ``LAYER_CLASSES``), once for all the physics estimators (fitted per class, pooling's few
    layers would set its own roofline)."""
    # scipy: imported by the node that uses it
    from power_modelling.core.physics_features import fit_device_constants  # noqa: PLC0415

    table = pd.concat(
        [
            t.assign(layer_class=layer_class)
            for layer_class, t in zip(LAYER_CLASSES, training_tables, strict=True)
            if not t.empty
        ],
        ignore_index=True,
        sort=False,
    )
    constants = fit_device_constants(table)
    logger.info(
        "Device constants from %d training layers: %s",
        len(table),
        ", ".join(f"{k} {v:.4g}" for k, v in constants.items()),
    )
    return constants


# ----------------------------------------------------------------------------- leave-one-CNN-out
def spec_fitter(
    specs: dict[tuple[str, str], tuple[dict[str, Any], dict[str, Any]]],
    random_state: int,
    *,
    threads: int = 1,
    group_column: str = "model",
) -> Any:
    """A ``core.loco.Fitter`` fitting ``specs[(layer_class, target)] = (spec, target_params)``
    as :func:`fit_selected_model` does, on the rows it is given: the physics estimators get
    the device constants of those rows (every class, re-estimated whenever the training
    groups change, i.e. once per held-out CNN: nothing of the held-out CNN leaks into them)."""
    from power_modelling.core.loco import trainable  # noqa: PLC0415 (crepes, sklearn)
    from power_modelling.core.physics_features import fit_device_constants  # noqa: PLC0415

    constants: dict[frozenset, dict[str, float]] = {}

    def fit(train: pd.DataFrame, layer_class: str, target: str) -> RegressorMixin:
        spec, target_params = specs[(layer_class, target)]
        device_constants = None
        if spec.get("physics"):
            groups = frozenset(train[group_column].unique())
            if groups not in constants:
                constants[groups] = fit_device_constants(train)
            device_constants = constants[groups]
        return fit_spec(
            trainable(train, layer_class, target),
            spec,
            target_params,
            random_state,
            threads=threads,
            device_constants=device_constants,
        )

    return fit


def evaluate_leave_one_cnn_out(
    loco: dict[str, Any], evaluation: dict[str, Any], **inputs: Any
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Leave-one-CNN-out over every CNN of the model-input tables (training and test CNNs):
    each CNN's layers predicted by the estimators the grouped CV selected (the specs
    :func:`fit_selected_model` trains), fitted on all the other CNNs.

    Keyword arguments: ``<layer_class>_train`` / ``_test`` tables, ``<layer_class>_parameters``
    (the class's ``power`` / ``runtime`` blocks) and ``<layer_class>_<target>_cv`` reports.
    ``loco``: ``enabled``, ``n_jobs``, ``domain``, ``intervals``, ``inner_folds``.
    Returns the per-layer predictions and the ``loco`` section of ``metrics.json`` (per CNN
    and per class the per-layer RMSPE and share within ±10 % of runtime and total power,
    network runtime and energy accuracy; means and medians over CNNs)."""
    if not loco.get("enabled", True):
        logger.info("Leave-one-CNN-out skipped (loco.enabled: false)")
        note = "disabled (loco.enabled: false)"
        return pd.DataFrame({"model": pd.Series(dtype=str)}), {"enabled": False, "note": note}
    from power_modelling.core.loco import leave_one_cnn_out, loco_report  # noqa: PLC0415

    started = time.perf_counter()
    group_column = evaluation["group_column"]
    table = pd.concat(
        [
            inputs[f"{layer_class}_{split}"].assign(layer_class=layer_class)
            for layer_class in LAYER_CLASSES
            for split in ("train", "test")
            if not inputs[f"{layer_class}_{split}"].empty
        ],
        ignore_index=True,
        sort=False,
    )
    specs, chosen = {}, {}
    for layer_class in LAYER_CLASSES:
        for target in ("power", "runtime"):
            target_params = inputs[f"{layer_class}_parameters"][target]
            selected = inputs[f"{layer_class}_{target}_cv"]["selected"]
            specs[(layer_class, target)] = (_specs(target_params)[selected], target_params)
            chosen.setdefault(layer_class, {})[target] = selected
    cnns = sorted(table[group_column].astype(str).unique())
    calibration_column = None
    if loco.get("intervals", False):  # calibrated as the pipeline's own intervals are
        from power_modelling.core.intervals import calibration_groups  # noqa: PLC0415

        held_out, _ = calibration_groups(
            table[group_column].to_numpy(), evaluation.get("calibration_group_by", "family")
        )
        table = table.assign(calibration_group=held_out)
        calibration_column = "calibration_group"
    n_jobs = int(loco.get("n_jobs", 1))
    logger.info(
        "Leave-one-CNN-out over %d CNNs: each predicted by the selected estimators fitted on "
        "the others (%d fits, n_jobs %d)",
        len(cnns),
        len(cnns) * len(specs),
        n_jobs,
    )
    predictions = leave_one_cnn_out(
        table,
        spec_fitter(
            specs,
            int(evaluation["random_state"]),
            threads=int(evaluation.get("threads", 1)),
            group_column=group_column,
        ),
        group_column=group_column,
        with_domain=bool(loco.get("domain", True)),
        with_intervals=bool(loco.get("intervals", False)),
        inner_folds=int(loco.get("inner_folds", 5)),
        n_jobs=n_jobs,
        calibration_column=calibration_column,
    )
    report = loco_report(predictions, evaluation["percentage_floor"])
    seconds = time.perf_counter() - started
    mean = report["summary"]["mean_over_cnns"]
    logger.info(
        "Leave-one-CNN-out, mean over %d CNNs: per-layer RMSPE runtime %.1f %%, total power "
        "%.1f %%; network accuracy runtime %.1f %%, energy %.1f %% (%.0f s)",
        len(cnns),
        mean["runtime_rmspe"],
        mean["power_total_rmspe"],
        100 * mean["network_runtime_accuracy"],
        100 * mean["network_energy_accuracy"],
        seconds,
    )
    section = {
        "enabled": True,
        "cnns": cnns,
        "estimators": chosen,
        "settings": {
            key: loco[key] for key in ("domain", "intervals", "inner_folds") if key in loco
        },
        "seconds": round(seconds, 1),
        **report,
    }
    return predictions, section


def plot_leave_one_cnn_out(loco_metrics: dict[str, Any]) -> Figure:
    """Per held-out CNN: per-layer runtime and total-power RMSPE per layer class, and network
    runtime and energy accuracy."""
    from power_modelling.core import charts  # noqa: PLC0415 (matplotlib: used here only)

    return charts.leave_one_cnn_out(loco_metrics)
