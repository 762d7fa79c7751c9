"""A real ``kedro run`` of the whole training chain (the ``kedro`` command, in a subprocess,
its console output kept), then ``--pipeline prediction``, on a subset of the bundled H200
data, with a real sqlite MLflow store."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml

from tests.helpers import SMALL_MODELS, run_kedro
from tests.synthetic import small_modelling_parameters

pytestmark = pytest.mark.integration

LAYER_TYPES = ("convolutional", "pooling", "dense")
TRAINING_RUN = "training · h200_isolated_v1"
#: Console lines still allowed to say WARNING, each with the change that removes it.
KNOWN_WARNINGS = (
    # the subset's 4 training CNNs give some layer classes < 10 rows (not the bundled data's 17)
    "internal CV reduced",
)


@pytest.fixture(scope="module")
def trained_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.helpers import make_project

    # no parameter changed: the bundled dataset's declared hold-out, as far as the subset has it
    project = make_project(tmp_path_factory.mktemp("e2e"))
    tracking = f"sqlite:///{project / 'mlflow.db'}"
    # as a user sees it in a terminal 200 columns wide: stdout and stderr in order
    console = subprocess.run(
        [str(Path(sys.executable).with_name("kedro")), "run"],
        cwd=project,
        env={
            **os.environ,
            "COLUMNS": "200",
            "PYTHONUNBUFFERED": "1",
            "MLFLOW_TRACKING_URI": tracking,
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=1200,
        check=False,
    )
    output = console.stdout
    (project / "kedro_run.out").write_text(output)
    assert console.returncode == 0, output[-5000:]
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(project)
        mp.setenv("MLFLOW_TRACKING_URI", tracking)
        run_kedro(project, "prediction")
    return project


def _training_run(project: Path) -> mlflow.entities.Run:
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    training = [run for run in runs if run.info.run_name == TRAINING_RUN]
    assert len(training) == 1, [run.info.run_name for run in runs]  # one run per `kedro run`
    return training[0]


def test_the_run_ends_with_its_results_and_no_warning(trained_project: Path) -> None:
    output = (trained_project / "kedro_run.out").read_text()
    warnings = [
        line
        for line in output.splitlines()
        if ("WARNING" in line or "Warning:" in line)
        and not any(known in line for known in KNOWN_WARNINGS)
    ]
    assert warnings == []
    assert f"Mlflow run '{TRAINING_RUN}'" in output
    start = output.rindex("Training results")
    assert start > output.rindex("Created version")  # the table is the last word of the run
    table = output[start:]
    metrics = json.loads((trained_project / "data/08_reporting/metrics.json").read_text())
    for layer_class in LAYER_TYPES:
        runtime = metrics[layer_class]["runtime"]
        row = (
            f"{layer_class} +runtime +{runtime['estimator']} +{runtime['cv_rmspe']:.1f} % +"
            f"{runtime['rmspe']:.1f} %"
        )
        assert re.search(row, table), row
    assert "mean over lenet, resnet18:" in table
    loco = metrics["loco"]["summary"]["mean_over_cnns"]
    assert (
        f"Leave-one-CNN-out, mean over {len(SMALL_MODELS)} CNNs (each predicted by models fitted "
        "on the others):\n"
        f"  per-layer RMSPE runtime {loco['runtime_rmspe']:.1f} %  total power "
        f"{loco['power_total_rmspe']:.1f} %"
    ) in table
    assert f"models skipped 0 of {len(SMALL_MODELS)}" in table
    assert "Models written to data/06_models/" in table

    run = _training_run(trained_project)
    assert "Training results" in run.data.tags["mlflow.note.content"]  # the run's description
    assert len(run.data.metrics) <= 100


def test_every_stage_wrote_one_partition_per_model(trained_project: Path) -> None:
    data = trained_project / "data"
    for folder in ("power_samples", "layer_windows", "layer_descriptions"):
        written = sorted(p.stem for p in (data / "02_intermediate" / folder).glob("*.parquet"))
        assert written == sorted(SMALL_MODELS), folder
    layerwise = pd.read_parquet(data / "03_primary" / "layerwise" / "resnet18.parquet")
    assert list(layerwise.columns[:6]) == [
        "cycle",
        "layer_name",
        "layer_type",
        "layer_power_including_idle_power_micro_watt",
        "layer_power_excluding_idle_power_micro_watt",
        "layer_run_time",
    ]
    assert layerwise["cycle"].min() == 1
    # 14 unique layer configurations in resnet18, every one measured
    assert layerwise["layer_name"].nunique() == 14
    # H200 board power under load lies between idle (121 W) and the 700 W limit
    power_w = layerwise["layer_power_including_idle_power_micro_watt"].dropna() / 1e6
    assert power_w.between(100, 700).all()


def test_training_tables_split_by_cnn(trained_project: Path) -> None:
    model_input = trained_project / "data" / "05_model_input"
    for layer_class in LAYER_TYPES:
        train = pd.read_parquet(model_input / f"{layer_class}_train.parquet")
        test = pd.read_parquet(model_input / f"{layer_class}_test.parquet")
        assert set(test["model"]) <= {"lenet", "resnet18", "vgg16"}
        assert not set(train["model"]) & set(test["model"])
        assert (train["runtime"] > 0).all()


def test_metrics_models_and_mlflow_run(trained_project: Path) -> None:
    metrics = json.loads((trained_project / "data" / "08_reporting" / "metrics.json").read_text())
    for layer_class in LAYER_TYPES:
        for target in ("power", "power_total", "runtime"):
            assert "rmspe" in json.dumps(metrics[layer_class][target]).lower()
        for target in ("power", "runtime"):
            assert (
                trained_project
                / "data/06_models/h200_isolated_v1"
                / f"{layer_class}_{target}.skops"
            ).exists()
    reporting = trained_project / "data" / "08_reporting"
    quality = json.loads((reporting / "data_quality.json").read_text())
    assert {"ingestion", "power_mapping", "feature_engineering"} <= set(quality)
    # leave-one-CNN-out: every CNN, test CNNs included, predicted by models of the others
    loco = metrics["loco"]
    assert sorted(loco["per_cnn"]) == sorted(SMALL_MODELS)
    for layer_class, targets in loco["estimators"].items():
        assert targets["runtime"] == metrics[layer_class]["runtime"]["estimator"]
    resnet18 = loco["per_cnn"]["resnet18"]
    assert set(resnet18["per_class"]) == set(LAYER_TYPES)
    for figures in resnet18["per_class"].values():
        assert 0.0 <= figures["runtime"]["within_10pct"] <= 1.0
        assert figures["power_total"]["rmspe"] >= 0.0
    assert 0.5 < resnet18["network"]["runtime_accuracy"] <= 1.0
    assert (reporting / "loco.png").stat().st_size > 10_000

    run = _training_run(trained_project)
    logged = run.data.metrics
    assert logged["convolutional.runtime.rmspe"] == metrics["convolutional"]["runtime"]["rmspe"]
    assert logged["data_quality.ingestion._summary.models_ingested"] == len(SMALL_MODELS)
    assert "network.mean.runtime_accuracy" in logged
    assert logged["loco.summary.mean_over_cnns.runtime_rmspe"] == pytest.approx(
        metrics["loco"]["summary"]["mean_over_cnns"]["runtime_rmspe"]
    )
    assert not any(name.startswith("loco.per_cnn") for name in logged)
    # per-model counts only in the JSON artifact
    assert not any(name.startswith("data_quality.power_mapping.") for name in logged)
    assert run.data.tags["raw_dataset"] == "h200_isolated_v1"  # the data it was trained on
    assert run.data.tags["raw_dataset.versioning"] == "unversioned"  # the copy is not in git
    models = mlflow.search_logged_models(
        experiment_ids=[run.info.experiment_id], output_format="list"
    )
    names = {model.name for model in models if model.source_run_id == run.info.run_id}
    assert {f"{lt}_{t}" for lt in LAYER_TYPES for t in ("power", "runtime")} <= names
    assert "prediction_model" in names


def test_prediction_of_the_shipped_engine(trained_project: Path) -> None:
    output = trained_project / "data" / "07_model_output"
    layers = pd.read_csv(output / "predictions" / "jetson_orin_resnet18.csv")
    assert len(layers) == 26  # every engine layer listed, `other` ones included
    modelled = layers.dropna(subset=["runtime_prediction"])
    assert len(modelled) == 23  # 20 conv + 1 GEMM (dense) + 2 pooling
    assert (modelled["runtime_prediction"] > 0).all()
    summary = pd.read_csv(output / "prediction_summary.csv").set_index("network")
    row = summary.loc["jetson_orin_resnet18"]
    energy = modelled["count"] * modelled["power_prediction"] * modelled["runtime_prediction"]
    assert row["energy_mj"] == pytest.approx(energy.sum(), rel=1e-6)
    assert row["avg_power_w"] == pytest.approx(row["energy_mj"] / row["total_runtime_ms"], rel=1e-6)
    # every modelled layer says whether it is inside what the models were trained on, and
    # carries its 90 % intervals; the network totals get intervals too
    assert modelled["in_domain"].notna().all()
    assert (modelled["runtime_lo"] <= modelled["runtime_prediction"]).all()
    assert (modelled["runtime_prediction"] <= modelled["runtime_hi"]).all()
    assert (modelled["power_lo"] <= modelled["power_prediction"]).all()
    assert (modelled["power_prediction"] <= modelled["power_hi"]).all()
    assert row["runtime_lo_ms"] <= row["total_runtime_ms"] <= row["runtime_hi_ms"]
    assert row["energy_lo_mj"] <= row["energy_mj"] <= row["energy_hi_mj"]
    assert row["layers_out_of_domain"] == (modelled["in_domain"] == False).sum()  # noqa: E712
    metrics = json.loads((trained_project / "data/08_reporting/metrics.json").read_text())
    coverage = metrics["network"]["interval_coverage"]
    assert set(coverage) == set(LAYER_TYPES)
    assert all(
        0.0 <= c[t]["coverage"] <= 1.0 for c in coverage.values() for t in ("runtime", "power")
    )
    # the intervals widen with distance from the training set, and need no crepes to predict
    from power_modelling.core.intervals import min_calibration_rows

    models = trained_project / "data/06_models/h200_isolated_v1"
    calibrations = json.loads((models / "prediction_intervals.json").read_text())
    for by_target in calibrations.values():
        for calibration in by_target.values():
            assert calibration["difficulty"] == "domain_distance"
            assert max(calibration["sigmas"]) > 1.0
            if calibration["n"] >= min_calibration_rows():
                assert calibration["half_width"]["0.9"] > 0


def test_jetson_dialect_dataset_selected_at_run_time(
    kedro_project: Callable[..., Path],
) -> None:
    """Generated Jetson/TensorRT raw data (INA3221 mV,mA log with a truncated last line,
    2-element latency entries, `_tensorrt.json`), picked with `raw_dataset`: ingestion →
    power mapping → features recover every layer's true power."""
    from benchmarks.generate_jetson import generate_run, write_idle_power, write_raw_model

    project = kedro_project(models=())
    raw = project / "data" / "01_raw" / "jetson_generated"
    runs = {f"net{seed}": generate_run(200, 12, seed=seed) for seed in range(3)}
    write_idle_power(raw, next(iter(runs.values())).idle_power_uw)
    for model, run in runs.items():
        write_raw_model(run, raw, model)

    for pipeline in ("ingestion", "power_mapping", "feature_engineering"):
        run_kedro(project, pipeline, raw_dataset="jetson_generated")

    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    runs_by_pipeline = {
        r.info.run_name: r.data.tags
        for r in mlflow.search_runs(search_all_experiments=True, output_format="list")
    }
    # later runs name the dataset their inputs were ingested from, not the default one
    assert runs_by_pipeline["feature_engineering · jetson_generated"]["raw_dataset"] == (
        "jetson_generated"
    )

    quality = json.loads((project / "data/08_reporting/data_quality.json").read_text())
    for model, run in runs.items():
        report = quality["ingestion"][model]
        assert report["dialect"] == "jetson"
        assert report["power_log"]["malformed"] == 1  # the truncated last line
        assert report["latency"]["form"] == "2-element"
        layerwise = pd.read_parquet(project / f"data/03_primary/layerwise/{model}.parquet")
        assert len(layerwise) == 200 * 12  # every window kept
        mapped = layerwise.groupby("layer_name")["layer_power_including_idle_power_micro_watt"]
        truth = pd.Series(run.layer_power_uw)
        relative = (mapped.mean() / truth.reindex(mapped.mean().index) - 1).abs()
        assert relative.max() < 0.02
    # 12 layers cycling conv, conv, pooling, GEMM conv (dense), Reformat (other): per model
    # 6 convolutional, 2 pooling, 2 dense rows; the 2 Reformat layers are `other`
    rows = {
        layer_class: len(pd.read_parquet(project / f"data/04_feature/{layer_class}.parquet"))
        for layer_class in LAYER_TYPES
    }
    assert rows == {"convolutional": 18, "pooling": 6, "dense": 6}


def _kedro_console(project: Path, *args: str) -> str:
    """``kedro run <args>`` in a subprocess, as a user runs it; returns its console output."""
    done = subprocess.run(
        [str(Path(sys.executable).with_name("kedro")), "run", *args],
        cwd=project,
        env={
            **os.environ,
            "COLUMNS": "200",
            "PYTHONUNBUFFERED": "1",
            "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}",
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=1200,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-5000:]
    return done.stdout


def test_an_own_dataset_with_any_cnn_names_trains_beside_the_bundled_models(
    trained_project: Path,
) -> None:
    """A Jetson-dialect dataset of one's own, CNNs named anything: `kedro run --params
    raw_dataset=<name>` trains with no other change; the H200 models stay as they were and
    remain the prediction default; each model set predicts with its own device's check."""
    from benchmarks.generate_jetson import generate_run, write_idle_power, write_raw_model

    project = trained_project
    h200 = project / "data" / "06_models" / "h200_isolated_v1"
    before = {p.name: p.read_bytes() for p in h200.iterdir()}
    raw = project / "data" / "01_raw" / "my_boards"
    names = ["squeeze_a", "squeeze_b", "tiny_cnn", "wide_net", "deep_net", "edge_v2"]
    for seed, name in enumerate(names):
        run = generate_run(1500, 12, median_latency_us=200.0, seed=seed)
        write_raw_model(run, raw, name)
    write_idle_power(raw, run.idle_power_uw)
    orin = {"name": "Jetson AGX Orin", "kind": "jetson"}
    (raw / "device.json").write_text(json.dumps(orin))

    # a smaller model search than the default keeps the test quick; nothing else is set
    small = small_modelling_parameters(project / "conf")
    (project / "conf/local/parameters_modelling.yml").write_text(yaml.safe_dump(small))
    output = _kedro_console(project, "--params", "raw_dataset=my_boards")
    assert "Held-out test CNNs (auto): " in output
    mine = project / "data" / "06_models" / "my_boards"
    card = json.loads((mine / "model_card.json").read_text())
    assert card["device"] == orin and card["raw_dataset"] == "my_boards"
    assert card["test_models_chosen_by"] == "auto" and len(card["test_models"]) == 1
    assert {p.name: p.read_bytes() for p in h200.iterdir()} == before  # untouched
    client = mlflow.MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    registered = {m.name for m in client.search_registered_models()}
    assert {"power_modelling-h200_isolated_v1", "power_modelling-my_boards"} <= registered

    # prediction still uses the bundled (H200) models by default, and says the Orin engine
    # is not their device
    output = _kedro_console(project, "--pipelines", "prediction")
    assert "Predicting with the models of 'h200_isolated_v1' (NVIDIA H200)" in output
    assert (
        "jetson_orin_resnet18 runs on Jetson AGX Orin, but the models 'h200_isolated_v1' were "
        "trained on NVIDIA H200"
    ) in output
    summary = pd.read_csv(project / "data/07_model_output/prediction_summary.csv")
    assert summary[["models", "device_match"]].values.tolist() == [["h200_isolated_v1", False]]
    output = _kedro_console(
        project, "--pipelines", "prediction", "--params", "prediction.models=my_boards"
    )
    assert "Predicting with the models of 'my_boards' (Jetson AGX Orin)" in output
    assert "runs on Jetson AGX Orin, but" not in output
    summary = pd.read_csv(project / "data/07_model_output/prediction_summary.csv")
    assert summary[["models", "device_match"]].values.tolist() == [["my_boards", True]]
