"""Generalisation of the layer models (issue 16): leave-one-CNN-out and the batch-size check.

``python -m benchmarks generalisation`` (or ``python benchmarks/bench_generalisation.py
[--families] [--no-intervals]``) on the feature tables of the bundled data (run ``kedro run
--pipelines ingestion,power_mapping,feature_engineering`` first):

1. leave-one-CNN-out over every CNN, for the current estimators (the candidate the grouped CV
   of ``parameters_modelling.yml`` selects, ``trend_extra_trees`` unless
   ``data/08_reporting/model_selection`` says otherwise) and for the physics estimators of
   ``power_modelling.core`` (with applicability domain and 90 % conformal intervals);
2. ``--families``: the same holding out whole families (vgg, resnet, resnext, mobilenet,
   convnext, alexnet, lenet): the closest stand-in for "networks unlike the training set";
3. ``--cv5``: the pipeline's grouped CV (``GroupKFold(5)`` by CNN over the training CNNs,
   the test CNNs of ``parameters_feature_engineering.yml`` left out), the basis of the
   "no worse than today" comparison;
4. the batch-size check: both model sets trained on all bundled (batch-1) data predict the
   bundled engines rewritten at batch 2/4/8; counts of predictions that decrease with batch
   size and of batch > 1 layers flagged out of domain.

Writes ``data/08_reporting/generalisation.json`` and ``generalisation_loco.png``. Single
threaded (``n_jobs=1``): the machines are shared. ~6 min with intervals on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from matplotlib.figure import Figure
from sklearn.base import RegressorMixin
from sklearn.model_selection import GroupKFold

from power_modelling.core.domain import fit_domain
from power_modelling.core.intervals import calibration_groups
from power_modelling.core.layers import LAYER_CLASSES
from power_modelling.core.loco import (
    batch_scaling,
    batch_scaling_summary,
    leave_one_cnn_out,
    loco_report,
    trainable,
)
from power_modelling.core.physics_estimators import (
    FixedCostRuntimeRegressor,
    ThroughputPowerRegressor,
)
from power_modelling.core.physics_features import add_physics_features, fit_device_constants
from power_modelling.core.splits import family, resolve_test_models
from power_modelling.pipelines.modelling.nodes import spec_fitter

PROJECT = Path(__file__).resolve().parents[1]
FEATURES = PROJECT / "data" / "04_feature"
RAW = PROJECT / "data" / "01_raw" / "h200_isolated_v1"
REPORTING = PROJECT / "data" / "08_reporting"
PARAMETERS = PROJECT / "conf" / "base" / "parameters_modelling.yml"
SPLIT = PROJECT / "conf" / "base" / "parameters_feature_engineering.yml"
PERCENTAGE_FLOOR = {"runtime": 0.0, "power_total": 0.0}


def load_table() -> pd.DataFrame:
    """The feature tables of all classes, with targets and physics features."""
    paths = [FEATURES / f"{layer_class}.parquet" for layer_class in LAYER_CLASSES]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise SystemExit(
            f"{missing} missing: run `kedro run --pipelines "
            "ingestion,power_mapping,feature_engineering` first"
        )
    return add_physics_features(pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True))


# ----------------------------------------------------------------------------- fitters
def current_fitter(selected: dict[tuple[str, str], str]) -> Any:
    """Fits the current pipeline estimator (``selected[(class, target)]`` of the candidates;
    ``baseline`` = NeuralPower) as the pipeline's leave-one-CNN-out does (``spec_fitter``:
    device constants of the training CNNs for the physics ones), single-threaded."""
    parameters = yaml.safe_load(PARAMETERS.read_text())
    specs = {}
    for (layer_class, target), name in selected.items():
        target_params = parameters[layer_class][target]
        spec = (
            target_params["baseline"] if name == "baseline" else target_params["candidates"][name]
        )
        specs[(layer_class, target)] = (_single_threaded(spec), target_params)
    return spec_fitter(specs, 42)


def _single_threaded(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` with ``n_jobs: 1`` in its regressor and its trend's (physics specs: as is)."""
    if "regressor" in spec:
        spec = {**spec, "regressor": {**spec["regressor"], "n_jobs": 1}}
    if spec.get("trend"):
        regressor = spec["trend"]["regressor"]
        spec = {**spec, "trend": {**spec["trend"], "regressor": {**regressor, "n_jobs": 1}}}
    return spec


def selected_estimators() -> dict[tuple[str, str], str]:
    """The estimator grouped CV chose per (class, target): the saved selection when present,
    else ``trend_extra_trees`` (docs/modelling.md)."""
    chosen = {}
    for layer_class in LAYER_CLASSES:
        for target in ("runtime", "power"):
            report = REPORTING / "model_selection" / f"{layer_class}_{target}.json"
            name = "trend_extra_trees"
            if report.exists():
                name = json.loads(report.read_text()).get("selected", name)
            chosen[(layer_class, target)] = name
    return chosen


def physics_fitter() -> Any:
    """Fits the physics estimators with device constants from the training CNNs (all
    classes), cached per set of training CNNs."""
    cached: dict[frozenset[str], dict[str, float]] = {}

    def fit(train: pd.DataFrame, layer_class: str, target: str) -> RegressorMixin:
        models = frozenset(train["model"].unique())
        if models not in cached:
            cached[models] = fit_device_constants(train[train["runtime"].notna()])
        constants = cached[models]
        rows = trainable(train, layer_class, target)
        if target == "runtime":
            model = FixedCostRuntimeRegressor(layer_class, device_constants=constants)
        else:
            model = ThroughputPowerRegressor(layer_class, device_constants=constants)
        return model.fit(rows, rows[target])

    return fit


def training_folds(table: pd.DataFrame) -> pd.DataFrame:
    """The training CNNs' rows with the pipeline's ``GroupKFold(5)`` fold as ``fold``."""
    params = yaml.safe_load(SPLIT.read_text())["feature_engineering"]
    test_models, _ = resolve_test_models(  # `auto`: the dataset's declared hold-out
        params["test_models"],
        table["model"].unique(),
        RAW.name,
        params.get("test_models_by_dataset"),
    )
    train = table[~table["model"].isin(test_models)].reset_index(drop=True)
    fold = np.zeros(len(train), dtype=int)
    for index, (_, test) in enumerate(GroupKFold(n_splits=5).split(train, groups=train["model"])):
        fold[test] = index
    return train.assign(fold=fold)


# ----------------------------------------------------------------------------- runs
def run_loco(table: pd.DataFrame, fitter: Any, group: str, intervals: bool) -> dict[str, Any]:
    """Held-out ``group``s; intervals calibrated as the pipeline's are (inner CV holding out
    architecture families: ``intervals.calibration_groups``)."""
    started = time.perf_counter()
    predictions = leave_one_cnn_out(
        table,
        fitter,
        group_column=group,
        with_domain=True,
        with_intervals=intervals,
        calibration_column="calibration_group",
    )
    report = loco_report(predictions, PERCENTAGE_FLOOR)
    report["seconds"] = round(time.perf_counter() - started, 1)
    return report


def run_batch_check(table: pd.DataFrame, fitters: dict[str, Any]) -> dict[str, Any]:
    engines = {
        path.parents[1].name: json.loads(path.read_text())
        for path in sorted(RAW.glob("*/trt_profiling/trt_engine_info.json"))
    }
    domain = fit_domain(table, table["model"])
    results = {}
    for name, fitter in fitters.items():
        models = {
            (layer_class, target): fitter(table, layer_class, target)
            for layer_class in LAYER_CLASSES
            for target in ("runtime", "power")
        }
        scaling = batch_scaling(engines, models, domain)
        results[name] = batch_scaling_summary(scaling)
    return results


def headline(report: dict[str, Any]) -> dict[str, float]:
    summary = report["summary"]
    pooled = summary["pooled_per_class"]
    figures = {
        "mean CNN runtime RMSPE %": summary["mean_over_cnns"]["runtime_rmspe"],
        "mean CNN runtime ±10 %": summary["mean_over_cnns"]["runtime_within_10pct"],
        "mean CNN total-power RMSPE %": summary["mean_over_cnns"]["power_total_rmspe"],
        "mean network runtime accuracy": summary["mean_over_cnns"]["network_runtime_accuracy"],
        "mean network energy accuracy": summary["mean_over_cnns"]["network_energy_accuracy"],
        "mean network total-energy accuracy": summary["mean_over_cnns"][
            "network_energy_total_accuracy"
        ],
    }
    for layer_class, metrics in pooled.items():
        figures[f"{layer_class} runtime RMSPE %"] = metrics["runtime"]["rmspe"]
        figures[f"{layer_class} total-power RMSPE %"] = metrics["power_total"]["rmspe"]
        if "coverage" in metrics:
            figures[f"{layer_class} runtime coverage"] = metrics["coverage"]["runtime"]
            figures[f"{layer_class} power coverage"] = metrics["coverage"]["power_total"]
    return figures


def chart(reports: dict[str, dict[str, Any]]) -> Figure:
    """Per-CNN per-layer runtime and total-power RMSPE, current vs physics estimators."""
    fig = Figure(figsize=(12, 6))
    axes = fig.subplots(2, 1, sharex=True)
    names = list(reports)
    cnns = sorted(reports[names[0]]["per_cnn"])
    x = np.arange(len(cnns))
    width = 0.8 / len(names)
    for ax, target in zip(axes, ("runtime", "power_total"), strict=True):
        for i, name in enumerate(names):
            values = [reports[name]["per_cnn"][c][target]["rmspe"] for c in cnns]
            ax.bar(x + (i - (len(names) - 1) / 2) * width, values, width, label=name)
        ax.set_ylabel(f"{target} RMSPE (%)")
        ax.set_title(f"leave-one-CNN-out, per-layer {target} RMSPE", fontsize=9)
    axes[1].set_xticks(x, cnns, rotation=60, fontsize=7)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", action="store_true", help="also leave-one-family-out")
    parser.add_argument("--no-intervals", action="store_true", help="skip conformal intervals")
    parser.add_argument("--cv5", action="store_true", help="also the pipeline's grouped 5-fold CV")
    parser.add_argument("--no-batch", action="store_true", help="skip the batch-size check")
    args = parser.parse_args(argv if argv is not None else [])
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore", category=UserWarning)
    table = load_table()
    table["family"] = table["model"].map(family)
    table["calibration_group"], _ = calibration_groups(table["model"].to_numpy())
    fitters = {"current": current_fitter(selected_estimators()), "physics": physics_fitter()}
    results: dict[str, Any] = {"selected_current": {
        f"{c}.{t}": n for (c, t), n in selected_estimators().items()
    }}  # fmt: skip
    groupings = ["model", "family"] if args.families else ["model"]
    for group in groupings:
        section = "loco" if group == "model" else "leave_one_family_out"
        results[section] = {
            name: run_loco(table, fitter, group, not args.no_intervals and name == "physics")
            for name, fitter in fitters.items()
        }
        print(f"\n== {section}")
        _print_table({name: headline(report) for name, report in results[section].items()})
    if args.cv5:
        train = training_folds(table)
        results["grouped_cv5"] = {
            name: run_loco(train, fitter, "fold", False) for name, fitter in fitters.items()
        }
        print("\n== grouped 5-fold CV over the training CNNs")
        _print_table({name: headline(report) for name, report in results["grouped_cv5"].items()})
    if not args.no_batch:
        results["batch_check"] = run_batch_check(table, fitters)
        print("\n== batch check (engines at batch 2/4/8, models trained at batch 1)")
        for name, summary in results["batch_check"].items():
            print(
                f"{name:8s} runtime decreases {summary['runtime_pred_decreases']}, power "
                f"decreases {summary['power_pred_decreases']}, flagged "
                f"{summary['flagged_above_base']}/{summary['layers_above_base']} batch>1 layers"
            )
    REPORTING.mkdir(parents=True, exist_ok=True)
    (REPORTING / "generalisation.json").write_text(json.dumps(results, indent=2, default=float))
    chart(results["loco"]).savefig(REPORTING / "generalisation_loco.png", dpi=110)
    print(f"\nwrote {REPORTING / 'generalisation.json'}")
    return results


def _print_table(rows: dict[str, dict[str, float]]) -> None:
    names = list(rows)
    print(f"{'':40s}" + "".join(f"{n:>12s}" for n in names))
    for key in dict.fromkeys(k for figures in rows.values() for k in figures):
        print(f"{key:40s}" + "".join(f"{rows[n].get(key, float('nan')):12.3f}" for n in names))


if __name__ == "__main__":
    main(sys.argv[1:])
