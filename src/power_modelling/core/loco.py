"""Leave-one-CNN-out evaluation and the batch-size check.

:func:`leave_one_cnn_out` holds out each CNN in turn, fits the estimators of every layer
class on the other CNNs (a ``Fitter`` decides which estimators: the current candidates or
the physics ones), predicts the held-out CNN's layers, and optionally adds the applicability
domain (fitted on the other CNNs) and 90 % conformal intervals (calibrated by an inner
grouped CV over the other CNNs only: nothing of the held-out CNN leaks into its interval).
:func:`loco_report` turns the per-layer predictions into the ``loco`` figures: per CNN the
per-layer RMSPE and ±10 % share of runtime and total power, network-level runtime and energy
accuracy, interval coverage and out-of-domain counts; summaries over CNNs and per class.

:func:`rewrite_batch` / :func:`batch_scaling` run the same engines at another batch size.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import RegressorMixin

from power_modelling.core.domain import assess, fit_domain, nearest_distance
from power_modelling.core.engines import describe_layers
from power_modelling.core.features import build_features
from power_modelling.core.intervals import (
    conformal_intervals,
    coverage,
    difficulty_sigma,
    fit_conformal,
    grouped_oof_predictions,
    network_intervals,
)
from power_modelling.core.layers import LAYER_CLASSES
from power_modelling.core.metrics import regression_metrics
from power_modelling.core.physics_features import add_physics_features

logger = logging.getLogger(__name__)

TARGETS = ("runtime", "power")
#: ``fitter(train_table, layer_class, target)`` -> an estimator fitted on the rows of
#: ``train_table`` (all classes, all CNNs it may learn from) of that class with a measured
#: ``target`` (``runtime`` in ms, ``power`` = dynamic W above idle).
Fitter = Callable[[pd.DataFrame, str, str], RegressorMixin]


def trainable(table: pd.DataFrame, layer_class: str, target: str) -> pd.DataFrame:
    """Rows of ``layer_class`` with a finite ``target``."""
    rows = table[(table["layer_class"] == layer_class) & table[target].notna()]
    return rows[np.isfinite(rows[target].to_numpy(dtype="float64"))]


def leave_one_cnn_out(
    table: pd.DataFrame,
    fitter: Fitter,
    *,
    group_column: str = "model",
    layer_classes: Iterable[str] = LAYER_CLASSES,
    with_domain: bool = True,
    with_intervals: bool = False,
    inner_folds: int = 5,
    held_out: Iterable[str] | None = None,
    n_jobs: int = 1,
    calibration_column: str | None = None,
) -> pd.DataFrame:
    """Per-layer predictions of every CNN by models that never saw it.

    ``table``: the feature tables of all classes with targets ``runtime``, ``power``,
    ``power_total`` (physics features added when absent). ``held_out``: the groups to hold
    out (default all). Returns one row per layer: identifiers, the measurements,
    ``runtime_pred``, ``power_pred`` (dynamic W), and with ``with_domain`` ``in_domain`` /
    ``domain_note``, with ``with_intervals`` ``runtime_lo|hi`` and ``power_lo|hi``.

    A class / target with no trainable row among the other CNNs stays unpredicted (NaN).
    ``calibration_column``: what the intervals' inner grouped CV holds out (default
    ``group_column``; the pipeline's ``intervals.calibration_groups``: architecture families).
    ``n_jobs``: held-out groups fitted in parallel (joblib worker processes; the fitter must
    pickle); 1 fits them one after another in this process. Either way one line per held-out
    group is logged as it completes (the predictions do not depend on ``n_jobs``).
    """
    frame = table if "bytes_total" in table.columns else add_physics_features(table)
    frame = frame.reset_index(drop=True)
    classes = [c for c in layer_classes if (frame["layer_class"] == c).any()]
    groups = list(held_out or sorted(frame[group_column].unique()))
    options = {
        "fitter": fitter,
        "classes": classes,
        "group_column": group_column,
        "with_domain": with_domain,
        "with_intervals": with_intervals,
        "inner_folds": inner_folds,
        "calibration_column": calibration_column or group_column,
    }
    if n_jobs == 1 or len(groups) < 2:
        done: Iterable = (_hold_out(frame, group, **options) for group in groups)
    else:
        from joblib import Parallel, delayed  # noqa: PLC0415 (only for parallel runs)

        done = Parallel(n_jobs=n_jobs, return_as="generator")(
            delayed(_hold_out)(frame, group, **options) for group in groups
        )
    results = []
    for index, (group, (out, seconds)) in enumerate(zip(groups, done, strict=True), start=1):
        if out is None:
            logger.info("LOCO %d/%d: %s has no modelled layer", index, len(groups), group)
            continue
        results.append(out)
        logger.info(
            "LOCO %d/%d: %s held out, %d layers predicted (%.1f s)",
            index,
            len(groups),
            group,
            len(out),
            seconds,
        )
    if not results:
        raise ValueError(f"leave-one-out over {group_column}: no group has a modelled layer")
    return pd.concat(results, ignore_index=True)


def _hold_out(
    frame: pd.DataFrame,
    group: Any,
    *,
    fitter: Fitter,
    classes: list[str],
    group_column: str,
    with_domain: bool,
    with_intervals: bool,
    inner_folds: int,
    calibration_column: str,
) -> tuple[pd.DataFrame | None, float]:
    """The predictions of ``group``'s layers by models fitted on the other groups, and the
    seconds it took (``None``: the group has no layer of ``classes``)."""
    started = time.perf_counter()
    is_test = (frame[group_column] == group).to_numpy()
    train, test = frame.loc[~is_test], frame.loc[is_test & frame["layer_class"].isin(classes)]
    if test.empty:
        return None, 0.0
    out = _identifiers(test)
    domain = fit_domain(train, train[group_column]) if with_domain or with_intervals else None
    for layer_class in classes:
        rows = (test["layer_class"] == layer_class).to_numpy()
        if not rows.any():
            continue
        for target in TARGETS:
            if trainable(train, layer_class, target).empty:
                logger.info(
                    "LOCO: %s %s of %s left unpredicted: no training row",
                    layer_class,
                    target,
                    group,
                )
                continue
            predicted, lo, hi = _fit_predict(
                train,
                test.loc[rows],
                layer_class,
                target,
                fitter,
                domain=domain,
                group_column=group_column,
                with_intervals=with_intervals,
                inner_folds=inner_folds,
                calibration_column=calibration_column,
            )
            out.loc[rows, f"{target}_pred"] = predicted
            if with_intervals:
                out.loc[rows, f"{target}_lo"] = lo
                out.loc[rows, f"{target}_hi"] = hi
    if with_domain:
        out["in_domain"], out["domain_note"] = assess(test, domain)
    return out, time.perf_counter() - started


def _identifiers(test: pd.DataFrame) -> pd.DataFrame:
    columns = ["model", "layer_name", "layer_class", "count", "runtime", "power", "power_total"]
    out = test[[c for c in columns if c in test.columns]].copy()
    for column in ("runtime_pred", "power_pred"):
        out[column] = np.nan
    return out


def _fit_predict(
    train: pd.DataFrame,
    test: pd.DataFrame,
    layer_class: str,
    target: str,
    fitter: Fitter,
    *,
    domain: dict[str, Any] | None,
    group_column: str,
    with_intervals: bool,
    inner_folds: int,
    calibration_column: str,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    predicted = fitter(train, layer_class, target).predict(test)
    if not with_intervals:
        return predicted, None, None
    rows = trainable(train, layer_class, target)

    def fit(inner_train: pd.DataFrame) -> RegressorMixin:
        seen = train[calibration_column].isin(inner_train[calibration_column].unique())
        return fitter(train.loc[seen], layer_class, target)

    def difficulty(inner_train: pd.DataFrame, inner_test: pd.DataFrame) -> np.ndarray:
        return nearest_distance(inner_test, fit_domain(inner_train, inner_train[group_column]))

    oof, sigma = grouped_oof_predictions(
        fit, rows, rows[calibration_column].to_numpy(), inner_folds, difficulty
    )
    shift = idle_power(rows) if target == "power" else 0.0
    measured = rows[target].to_numpy(dtype="float64")
    calibration = fit_conformal(measured, oof, sigma, shift=shift)
    lo, hi = conformal_intervals(
        predicted, calibration, difficulty_sigma(nearest_distance(test, domain))
    )
    return predicted, lo, hi


def idle_power(rows: pd.DataFrame) -> float:
    """Median idle power (W) of measured rows: ``power_total - power``."""
    idle = (rows["power_total"] - rows["power"]).dropna()
    return float(idle.median()) if len(idle) else 0.0


def loco_report(
    predictions: pd.DataFrame, percentage_floor: Mapping[str, float] | None = None
) -> dict[str, Any]:
    """The ``loco`` figures of :func:`leave_one_cnn_out`'s predictions (JSON-able).

    ``per_cnn[cnn]``: ``layers``, ``runtime`` / ``power_total`` metrics
    (``regression_metrics``: ``rmspe``, ``within_10pct``, ...), the same per layer class
    (``per_class``), ``network`` (count-weighted totals and accuracy ``1 - |pred - meas| /
    meas`` of runtime, dynamic energy and energy including idle), ``coverage`` and
    ``out_of_domain`` when present. ``summary``: mean and median over CNNs of the headline
    figures, overall and per layer class (over the CNNs that have layers of the class), and
    pooled per-layer figures per class.
    """
    floors = {"runtime": 0.0, "power_total": 0.0, **(percentage_floor or {})}
    frame = predictions.copy()
    frame["idle"] = frame["power_total"] - frame["power"]
    frame["power_total_pred"] = frame["power_pred"] + frame["idle"]
    has_intervals = "runtime_lo" in frame.columns
    if has_intervals:
        frame["power_total_lo"] = frame["power_lo"] + frame["idle"]
        frame["power_total_hi"] = frame["power_hi"] + frame["idle"]
    per_cnn = {
        str(cnn): _cnn_report(rows, floors, has_intervals)
        for cnn, rows in frame.groupby("model", sort=True)
    }
    headline = {
        "runtime_rmspe": [r["runtime"]["rmspe"] for r in per_cnn.values()],
        "runtime_within_10pct": [r["runtime"]["within_10pct"] for r in per_cnn.values()],
        "power_total_rmspe": [r["power_total"]["rmspe"] for r in per_cnn.values()],
        "power_total_within_10pct": [r["power_total"]["within_10pct"] for r in per_cnn.values()],
        "network_runtime_accuracy": [r["network"]["runtime_accuracy"] for r in per_cnn.values()],
        "network_energy_accuracy": [r["network"]["energy_accuracy"] for r in per_cnn.values()],
        "network_energy_total_accuracy": [
            r["network"]["energy_total_accuracy"] for r in per_cnn.values()
        ],
    }
    per_class = _per_class_headline(per_cnn)
    summary: dict[str, Any] = {
        "n_cnns": len(per_cnn),
        "mean_over_cnns": {k: _nan_safe(np.nanmean, v) for k, v in headline.items()},
        "median_over_cnns": {k: _nan_safe(np.nanmedian, v) for k, v in headline.items()},
        "n_cnns_per_class": {c: len(h["runtime_rmspe"]) for c, h in per_class.items()},
        "mean_over_cnns_per_class": {
            c: {k: _nan_safe(np.nanmean, v) for k, v in h.items()} for c, h in per_class.items()
        },
        "median_over_cnns_per_class": {
            c: {k: _nan_safe(np.nanmedian, v) for k, v in h.items()} for c, h in per_class.items()
        },
        "worst_cnn": {
            "runtime_rmspe": max(per_cnn, key=lambda c: per_cnn[c]["runtime"]["rmspe"]),
            "power_total_rmspe": max(per_cnn, key=lambda c: per_cnn[c]["power_total"]["rmspe"]),
        },
        "pooled_per_class": {
            str(layer_class): _layer_metrics(rows, floors, has_intervals)
            for layer_class, rows in frame.groupby("layer_class", sort=True)
        },
        "pooled": _layer_metrics(frame, floors, has_intervals),
    }
    if has_intervals:
        summary["network_coverage"] = {
            method: _network_coverage(frame, method) for method in ("comonotone", "independent")
        }
    if "in_domain" in frame.columns:
        summary["out_of_domain_layers"] = int((~frame["in_domain"].astype(bool)).sum())
    return {
        "definition": (
            "leave-one-CNN-out: each CNN predicted by models fitted on the other CNNs; "
            "per-layer RMSPE / within ±10 % of runtime and total power (dynamic prediction + "
            "the layer's idle power); network accuracy = 1 - |pred - meas| / meas of "
            "count-weighted totals over the modelled layers; energy = Σ count·power·runtime"
        ),
        "summary": summary,
        "per_cnn": per_cnn,
    }


def _per_class_headline(per_cnn: Mapping[str, dict]) -> dict[str, dict[str, list[float]]]:
    """``{layer_class: {runtime_rmspe: [per CNN], ...}}`` over the CNNs with that class."""
    headline: dict[str, dict[str, list[float]]] = {}
    for report in per_cnn.values():
        for layer_class, metrics in report["per_class"].items():
            figures = headline.setdefault(layer_class, {})
            for target in ("runtime", "power_total"):
                for metric in ("rmspe", "within_10pct"):
                    figures.setdefault(f"{target}_{metric}", []).append(metrics[target][metric])
    return {c: headline[c] for c in sorted(headline, key=_class_order)}


def _class_order(layer_class: str) -> tuple[int, str]:
    order = list(LAYER_CLASSES)
    return (order.index(layer_class) if layer_class in order else len(order), layer_class)


def _nan_safe(statistic: Callable[[np.ndarray], Any], values: list[float]) -> float:
    """``statistic`` of the finite values; NaN (no warning) when there is none."""
    finite = np.asarray(values, dtype="float64")
    finite = finite[np.isfinite(finite)]
    return float(statistic(finite)) if finite.size else float("nan")


def _layer_metrics(rows: pd.DataFrame, floors: Mapping[str, float], intervals: bool) -> dict:
    metrics = {
        "layers": len(rows),
        "runtime": regression_metrics(rows["runtime"], rows["runtime_pred"], floors["runtime"]),
        "power_total": regression_metrics(
            rows["power_total"], rows["power_total_pred"], floors["power_total"]
        ),
    }
    if intervals:
        metrics["coverage"] = {
            "runtime": coverage(rows["runtime"], rows["runtime_lo"], rows["runtime_hi"]),
            "power_total": coverage(
                rows["power_total"], rows["power_total_lo"], rows["power_total_hi"]
            ),
        }
    return metrics


def _cnn_report(rows: pd.DataFrame, floors: Mapping[str, float], intervals: bool) -> dict:
    report = _layer_metrics(rows, floors, intervals)
    report["per_class"] = {
        str(layer_class): _layer_metrics(class_rows, floors, intervals)
        for layer_class, class_rows in sorted(
            rows.groupby("layer_class"), key=lambda item: _class_order(str(item[0]))
        )
    }
    report["network"] = _network(rows)
    if "in_domain" in rows.columns:
        out = rows[~rows["in_domain"].astype(bool)]
        reasons = out["domain_note"].str.split("; ").explode()
        reasons = reasons.str.replace(r"\d+(\.\d+)?×", "N×", regex=True)
        report["out_of_domain"] = int(len(out))
        report["main_reason"] = str(reasons.mode().iloc[0]) if len(reasons) else ""
    return report


def _network(rows: pd.DataFrame) -> dict[str, float]:
    """Count-weighted totals over the layers with both measurements, and their accuracy."""
    rows = rows[rows["runtime"].notna() & rows["power"].notna()]
    count = rows["count"].astype("float64")
    totals = {
        "runtime_ms": (count * rows["runtime"]).sum(),
        "runtime_ms_pred": (count * rows["runtime_pred"]).sum(),
        "energy_mj": (count * rows["power"] * rows["runtime"]).sum(),
        "energy_mj_pred": (count * rows["power_pred"] * rows["runtime_pred"]).sum(),
        "energy_total_mj": (count * rows["power_total"] * rows["runtime"]).sum(),
        "energy_total_mj_pred": (count * rows["power_total_pred"] * rows["runtime_pred"]).sum(),
    }
    totals = {k: float(v) for k, v in totals.items()}
    for name, key in (
        ("runtime_accuracy", "runtime_ms"),
        ("energy_accuracy", "energy_mj"),
        ("energy_total_accuracy", "energy_total_mj"),
    ):
        measured, predicted = totals[key], totals[f"{key}_pred"]
        totals[name] = 1.0 - abs(predicted - measured) / measured if measured > 0 else np.nan
    return totals


def _network_coverage(frame: pd.DataFrame, method: str) -> dict[str, float]:
    """Share of CNNs whose measured runtime / total energy total lies in its interval."""
    rows = frame[frame["runtime"].notna() & frame["power"].notna()]
    layers = rows.assign(
        power_pred=rows["power_total_pred"],
        power_lo=rows["power_total_lo"],
        power_hi=rows["power_total_hi"],
    )
    bounds = network_intervals(layers, method=method)
    count = rows["count"].astype("float64")
    measured = (
        pd.DataFrame(
            {
                "model": rows["model"],
                "runtime_ms": count * rows["runtime"],
                "energy_mj": count * rows["power_total"] * rows["runtime"],
            }
        )
        .groupby("model", sort=True)
        .sum()
    )
    return {
        total: float(
            (
                (measured[total] >= bounds[f"{total}_lo"])
                & (measured[total] <= bounds[f"{total}_hi"])
            ).mean()
        )
        for total in ("runtime_ms", "energy_mj")
    }


# ----------------------------------------------------------------------------- batch size
def rewrite_batch(engine: Mapping[str, Any], batch_size: int) -> dict[str, Any]:
    """A copy of an engine description with every layer's input and output ``Dimensions[0]``
    set to ``batch_size`` (the same network at another batch size)."""
    rewritten = copy.deepcopy(dict(engine))
    for layer in rewritten.get("Layers", []):
        if not isinstance(layer, dict):
            continue
        for key in ("Inputs", "Outputs"):
            for tensor in layer.get(key) or []:
                dims = tensor.get("Dimensions") if isinstance(tensor, dict) else None
                if dims:
                    dims[0] = int(batch_size)
    return rewritten


def engine_features(engine: Mapping[str, Any], source: str) -> pd.DataFrame:
    """Features (with physics columns) of an engine description's layers."""
    return add_physics_features(build_features(describe_layers(dict(engine), source)))


def predict_layers(
    features: pd.DataFrame, models: Mapping[tuple[str, str], RegressorMixin]
) -> pd.DataFrame:
    """``runtime_pred`` / ``power_pred`` of every modelled layer (``models[(class, target)]``);
    rows of other classes are dropped."""
    modelled = features[features["layer_class"].isin({c for c, _ in models})].copy()
    for (layer_class, target), model in models.items():
        rows = (modelled["layer_class"] == layer_class).to_numpy()
        if rows.any():
            modelled.loc[rows, f"{target}_pred"] = model.predict(modelled.loc[rows])
    return modelled


def batch_scaling(
    engines: Mapping[str, Mapping[str, Any]],
    models: Mapping[tuple[str, str], RegressorMixin],
    domain: dict[str, Any],
    batch_sizes: Iterable[int] = (1, 2, 4, 8),
) -> pd.DataFrame:
    """Predictions of each engine rewritten at each batch size, with the domain verdict:
    ``network, layer_name, layer_class, batch_size, runtime_pred, power_pred, in_domain,
    domain_note``."""
    frames = []
    for network, engine in engines.items():
        for batch in batch_sizes:
            features = engine_features(rewrite_batch(engine, batch), f"{network}@{batch}")
            predicted = predict_layers(features, models)
            in_domain, notes = assess(predicted, domain)
            frames.append(
                pd.DataFrame(
                    {
                        "network": network,
                        "layer_name": predicted["layer_name"].to_numpy(),
                        "layer_class": predicted["layer_class"].to_numpy(),
                        "batch_size": batch,
                        "runtime_pred": predicted["runtime_pred"].to_numpy(),
                        "power_pred": predicted["power_pred"].to_numpy(),
                        "in_domain": in_domain,
                        "domain_note": notes,
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def batch_scaling_summary(scaling: pd.DataFrame, base_batch: int = 1) -> dict[str, Any]:
    """Whether predictions never decrease with the batch size (per layer, consecutive batch
    sizes), how many layers above ``base_batch`` are flagged out of domain, and the
    runtime / power ratios to ``base_batch`` per class."""
    ordered = scaling.sort_values(["network", "layer_name", "batch_size"])
    keys = ["network", "layer_name"]
    summary: dict[str, Any] = {}
    for target in ("runtime_pred", "power_pred"):
        step = ordered.groupby(keys, sort=False)[target].diff()
        summary[f"{target}_decreases"] = int((step < -1e-12 * ordered[target].abs()).sum())
    above = ordered[ordered["batch_size"] > base_batch]
    summary["layers_above_base"] = len(above)
    summary["flagged_above_base"] = int((~above["in_domain"]).sum())
    summary["flagged_at_base"] = int((~ordered.loc[ordered["batch_size"] == base_batch,
                                                    "in_domain"]).sum())  # fmt: skip
    base = ordered[ordered["batch_size"] == base_batch].set_index(keys)
    ratios = {}
    for batch, batch_rows in above.groupby("batch_size"):
        rows = batch_rows.set_index(keys)
        ratio = (rows["runtime_pred"] / base["runtime_pred"]).groupby(rows["layer_class"])
        power = (rows["power_pred"] / base["power_pred"]).groupby(rows["layer_class"])
        ratios[str(batch)] = {
            str(c): {
                "runtime_ratio_median": float(ratio.median()[c]),
                "runtime_ratio_max": float(ratio.max()[c]),
                "power_ratio_median": float(power.median()[c]),
            }
            for c in ratio.median().index
        }
    summary["ratio_to_base"] = ratios
    return summary
