"""The results table that ends a training run, and the run's name."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import mlflow
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Pipeline, node
from kedro_datasets.json import JSONDataset

from power_modelling.datasets import ReportSectionDataset, SkopsModelDataset
from power_modelling.hooks import RunNameMlflowHook, run_name
from power_modelling.run_summary import DESCRIPTION_TAG, RunSummaryHook, summary_table


def _figures(estimator: str, cv: float, test: float | None, within: float) -> dict:
    return {
        "estimator": estimator,
        "cv_rmspe": cv,
        "rmspe": test,
        "within_10pct": within,
        "baseline_rmspe": 99.0,
        "n": 22.0,
    }


LAYER_METRICS = {
    "convolutional": {
        # targets in another order than reported: the table puts them in the usual one
        "runtime": _figures("trend_extra_trees", 21.94, 1.57, 1.0),
        "power": _figures("trend_extra_trees", 26.9, 12.95, 0.909),
        "power_total": _figures("trend_extra_trees", 6.74, 1.76, 1.0),
    },
    "dense": {
        "power": _figures("lasso", 10.6, None, 0.57),  # NaN in the model is null in the JSON
        "runtime": _figures("extra_trees", 13.5, 23.64, 0.714),
    },
}
NETWORK = {
    "n_networks": 2,
    "mean": {"runtime_accuracy": 0.9717, "energy_accuracy": 0.8996, "avg_power_accuracy": 0.93},
    "networks": {"resnet18": {}, "lenet": {}},
}
QUALITY = {
    "ingestion": {
        "_summary": {
            "models_found": 7,
            "models_ingested": 6,
            "models_skipped": 1,
            "skipped": {"broken": "data/01_raw/x/broken: missing power log"},
            "malformed_power_lines": 3,
        },
        "lenet": {"dialect": "nvml"},
    },
    "power_mapping": {
        "lenet": {
            "windows_total": 1000,
            "windows_without_samples": 2,
            "samples_invalid_dropped": 1,
        },
        "vgg11": {
            "windows_total": 1500,
            "windows_without_samples": 0,
            "samples_invalid_dropped": 4,
        },
    },
    "feature_engineering": {
        "lenet": {"other": 1, "measured_not_described": 0},
        "vgg11": {"other": 2, "measured_not_described": 1},
        "_tables": {
            "convolutional": {"rows": 1234, "models": 6, "power_excluded": 1},
            "dense": {"rows": 20, "models": 6, "power_excluded": 0},
        },
    },
}


def test_summary_table_lists_each_layer_class_and_target_then_network_data_and_models() -> None:
    table = summary_table(LAYER_METRICS, NETWORK, QUALITY, "data/06_models/h200_isolated_v1/")
    lines = table.splitlines()
    assert lines[1].split() == [
        "layer", "class", "target", "estimator", "CV", "RMSPE", "test", "RMSPE",
        "test", "within", "10", "%",
    ]  # fmt: skip
    assert lines[3].split() == [
        "convolutional", "power", "trend_extra_trees", "26.9", "%", "12.9", "%", "91", "%",
    ]  # fmt: skip
    assert [line.split()[:2] for line in lines[3:8]] == [
        ["convolutional", "power"],
        ["convolutional", "power_total"],
        ["convolutional", "runtime"],
        ["dense", "power"],
        ["dense", "runtime"],
    ]
    assert lines[6].split()[3:] == ["10.6", "%", "-", "57", "%"]  # no test figure: "-"
    # columns line up: every row as wide as the header rule (right-aligned numbers)
    assert {len(line) for line in lines[1:8]} == {len(lines[2])}
    assert lines[8:] == [
        "Network-level accuracy, mean over lenet, resnet18:",
        "  runtime 97.2 %  energy 90.0 %  average power 93.0 %",
        "Left out:",
        "  models skipped 1 of 7 (broken); malformed power-log lines 3",
        "  layer windows without power samples 2 of 2,500; invalid power samples 5",
        "  layers without power target 1; measured but not described 1; other types (not "
        "modelled) 3",
        "Layer rows: 1,234 convolutional, 20 dense",
        "Models written to data/06_models/h200_isolated_v1/",
    ]


def test_summary_table_leaves_out_what_is_missing() -> None:
    table = summary_table({"pooling": {"runtime": _figures("extra_trees", 15.3, 31.3, 0.9)}})
    assert table.splitlines()[3].split() == [
        "pooling", "runtime", "extra_trees", "15.3", "%", "31.3", "%", "90", "%",
    ]  # fmt: skip
    assert len(table.splitlines()) == 4
    assert "Network" not in table
    assert "Left out" not in table
    assert "Models written" not in table


def test_run_names_say_what_ran_on_what() -> None:
    assert run_name(None, "h200_isolated_v1") == "training · h200_isolated_v1"
    assert run_name(["__default__"], "h200_isolated_v1") == "training · h200_isolated_v1"
    assert run_name(["modelling"], "jetson") == "modelling · jetson"
    assert run_name(["prediction"], "predict") == "prediction · predict"
    assert run_name(["ingestion", "power_mapping"], "x") == "ingestion+power_mapping · x"
    assert run_name(["ingestion"], None) == "ingestion"


@pytest.mark.filterwarnings("ignore:One or more dataset names contain '.'")
def test_run_name_hook_names_the_dataset_a_run_works_on(tmp_path: Path) -> None:
    def context(configured: str | None) -> SimpleNamespace:
        run = SimpleNamespace(name=configured)
        params = {"raw_dataset": "h200_isolated_v1", "predict_dataset": "predict"}
        return SimpleNamespace(
            mlflow=SimpleNamespace(tracking=SimpleNamespace(run=run)), params=params
        )

    recorded = JSONDataset(filepath=str(tmp_path / "raw_data_version.json"))
    catalog = DataCatalog(datasets={"ingested_data_version": recorded})
    ingests = Pipeline([node(_identity, "raw_data_version", "ingested_data_version", name="i")])
    hook, ctx = RunNameMlflowHook(), context(None)
    hook.after_context_created(ctx)

    def named(names: list[str] | None, pipeline: Pipeline | None = None) -> str:
        hook.before_pipeline_run({"pipeline_names": names}, pipeline or Pipeline([]), catalog)
        return ctx.mlflow.tracking.run.name

    assert named(["modelling"]) == "modelling · h200_isolated_v1"  # nothing ingested yet
    recorded.save({"raw_dataset": "jetson_generated"})
    # a run that starts after ingestion works on what was ingested, whatever raw_dataset says
    assert named(["modelling"]) == "modelling · jetson_generated"
    assert named(None, ingests) == "training · h200_isolated_v1"  # one that ingests: raw_dataset
    assert named(["prediction"]) == "prediction · predict"

    configured = context("my run")  # mlflow.yml's tracking.run.name is kept
    hook.after_context_created(configured)
    hook.before_pipeline_run({"pipeline_names": ["modelling"]}, Pipeline([]), catalog)
    assert configured.mlflow.tracking.run.name == "my run"


def _report(tmp_path: Path, name: str, section: str) -> ReportSectionDataset:
    return ReportSectionDataset(str(tmp_path / f"{name}.json"), section=section, metrics=[])


def _logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "power_modelling.run_summary"]


def _identity(value: object) -> object:
    return value


@pytest.mark.filterwarnings("ignore:One or more dataset names contain '.'")
def test_hook_reads_the_sections_through_the_catalog_and_describes_the_mlflow_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    datasets = {
        **{f"{lc}.metrics": _report(tmp_path, "metrics", lc) for lc in LAYER_METRICS},
        "network_metrics": _report(tmp_path, "metrics", "network"),
        **{f"{s}_data_quality": _report(tmp_path, "data_quality", s) for s in QUALITY},
        "convolutional.power_model": SkopsModelDataset(
            filepath="data/06_models/jetson/convolutional_power.skops"
        ),
    }
    for name, section in {
        **{f"{lc}.metrics": figures for lc, figures in LAYER_METRICS.items()},
        "network_metrics": NETWORK,
        **{f"{stage}_data_quality": section for stage, section in QUALITY.items()},
    }.items():
        datasets[name].save(section)
    catalog = DataCatalog(datasets={**datasets, "dense.features": MemoryDataset()})
    trained = Pipeline(
        [
            node(_identity, "dense.features", "dense.metrics", name="report_dense"),
            node(_identity, "dense.features", "network_metrics", name="report_network"),
        ]
    )

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_experiment("run-summary")
    hook = RunSummaryHook()
    with caplog.at_level("INFO", logger="power_modelling.run_summary"):
        with mlflow.start_run() as run:
            hook.before_pipeline_run()
        hook.after_pipeline_run(trained, catalog)  # kedro-mlflow has ended the run by then
    table = summary_table(
        {"dense": LAYER_METRICS["dense"]}, NETWORK, QUALITY, "data/06_models/jetson/"
    )
    assert _logged(caplog) == [table]  # the classes this run trained, read from the reports
    assert mlflow.get_run(run.info.run_id).data.tags[DESCRIPTION_TAG] == f"```\n{table}\n```"

    caplog.clear()
    hook.after_pipeline_run(Pipeline([node(_identity, "dense.features", "x", name="n")]), catalog)
    assert _logged(caplog) == []  # a run that trained nothing ends without a table


def test_summary_table_ends_its_figures_with_the_leave_one_cnn_out_means() -> None:
    loco = {
        "enabled": True,
        "summary": {
            "n_cnns": 20,
            "mean_over_cnns": {
                "runtime_rmspe": 13.29,
                "power_total_rmspe": 4.25,
                "network_runtime_accuracy": 0.9479,
                "network_energy_accuracy": 0.9221,
                "network_energy_total_accuracy": 0.9451,
            },
            "mean_over_cnns_per_class": {
                "convolutional": {"runtime_rmspe": 12.31, "power_total_rmspe": 4.32},
                "pooling": {"runtime_rmspe": 6.13, "power_total_rmspe": None},
            },
        },
    }
    table = summary_table(LAYER_METRICS, NETWORK, loco=loco)
    assert table.splitlines()[-4:] == [
        "Leave-one-CNN-out, mean over 20 CNNs (each predicted by models fitted on the others):",
        "  per-layer RMSPE runtime 13.3 %  total power 4.2 %",
        "  per class (runtime / total power): convolutional 12.3 / 4.3 %, pooling 6.1 / -",
        "  network accuracy runtime 94.8 %  energy 92.2 %  energy with idle 94.5 %",
    ]
    off = summary_table(LAYER_METRICS, loco={"enabled": False, "note": "disabled (x: false)"})
    assert off.splitlines()[-1] == "Leave-one-CNN-out: disabled (x: false)"
