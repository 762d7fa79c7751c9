"""Real Kedro runs: ``kedro run --pipelines prediction`` on engine files, and the MLflow round
trip (training logs the served model; it is loaded from the sqlite store and predicts)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml
from kedro.pipeline import Node, Pipeline

from power_modelling import pipeline_registry
from power_modelling.core.engines import describe_layers
from power_modelling.core.predictor import predict_layers
from power_modelling.pipelines.inference.pipeline import model_datasets
from tests.helpers import run_kedro
from tests.standins import (
    TINY_ENERGY_MJ,
    TINY_RUNTIME_MS,
    expected_columns,
    install_standin_models,
    standin_models,
    tiny_engine,
)

pytestmark = pytest.mark.integration

SHIPPED = "jetson_orin_resnet18"
IDLE_W = 121.0


MODELS = "h200_isolated_v1"


def _write_models(project: Path) -> None:
    install_standin_models(project, MODELS)


def _write_idle_power(project: Path, idle_w: float | None = IDLE_W) -> None:
    path = project / "data" / "06_models" / MODELS / "device_idle_power.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    idle_uw = None if idle_w is None else idle_w * 1e6
    device = {"device": {"name": "H200"}, "precisions": ["FP16"]}
    path.write_text(json.dumps({"avg_idle_power_uw": idle_uw, "source": "test", **device}))


@pytest.fixture
def predict_project(kedro_project: Callable[..., Path]) -> Path:
    """A project copy with the shipped engine, a tiny engine, three bad files and models."""
    project = kedro_project(models=())
    folder = project / "data" / "01_raw" / "predict"
    (folder / "tiny.json").write_text(json.dumps(tiny_engine()))
    (folder / "not_json.json").write_text("Layers: conv1, conv2\n")
    (folder / "no_layers.json").write_text(json.dumps({"Bindings": ["input"]}))
    no_dims = tiny_engine()
    del no_dims["Layers"][0]["Inputs"][0]["Dimensions"]
    (folder / "no_dims.json").write_text(json.dumps(no_dims))
    _write_models(project)
    _write_idle_power(project, idle_w=None)  # the device's idle power unknown
    return project


def test_prediction_pipeline_writes_tables_summary_and_reports_bad_files(
    predict_project: Path,
) -> None:
    run_kedro(predict_project, "prediction")
    output = predict_project / "data" / "07_model_output"
    written = sorted(p.stem for p in (output / "predictions").glob("*.csv"))
    assert written == [SHIPPED, "tiny"]

    tiny = pd.read_csv(output / "predictions" / "tiny.csv")
    assert list(tiny.columns) == expected_columns(with_idle=False, model_set=True)  # idle unknown
    assert tiny["layer_name"].tolist() == ["conv1", "pool", "relu", "fc"]
    assert tiny.loc[tiny["layer_class"] == "other", "power_prediction"].isna().all()
    shipped = pd.read_csv(output / "predictions" / f"{SHIPPED}.csv")
    assert len(shipped) == 26 and shipped["runtime_prediction"].notna().sum() == 23
    # every network's layers in one table as well, the CSVs' rows with a network column
    table = pd.read_parquet(output / "predictions.parquet")
    assert table["network"].unique().tolist() == [SHIPPED, "tiny"]
    for network, csv in ((SHIPPED, shipped), ("tiny", tiny)):
        rows = table[table["network"] == network].drop(columns="network")
        # through a CSV: parquet keeps None / <NA> where a CSV reads back NaN
        rows = pd.read_csv(io.StringIO(rows.to_csv(index=False)))
        pd.testing.assert_frame_equal(rows.reset_index(drop=True), csv, check_dtype=False)

    summary = pd.read_csv(output / "prediction_summary.csv").set_index("network")
    assert list(summary.columns) == [
        "format",
        "batch_size",
        "precision",
        "models",
        "device",
        "device_match",
        "layers_predicted",
        "layers_other",
        "total_runtime_ms",
        "avg_power_w",
        "energy_mj",
        "status",
        "note",
        "layers_out_of_domain",
        "runtime_lo_ms",
        "runtime_hi_ms",
        "energy_lo_mj",
        "energy_hi_mj",
    ]
    assert summary["status"].tolist() == ["predicted", "predicted"]
    assert summary.loc["tiny", "layers_predicted"] == 4
    assert summary.loc["tiny", "layers_other"] == 3
    assert summary.loc["tiny", "total_runtime_ms"] == pytest.approx(TINY_RUNTIME_MS)
    assert summary.loc["tiny", "energy_mj"] == pytest.approx(TINY_ENERGY_MJ)
    # 20 conv · (10 W, 0.5 ms) + 2 pool · (2 W, 0.1 ms) + 1 dense · (5 W, 0.2 ms)
    assert summary.loc[SHIPPED, "total_runtime_ms"] == pytest.approx(10.4)
    assert summary.loc[SHIPPED, "energy_mj"] == pytest.approx(100.0 + 0.4 + 1.0)

    quality = json.loads((predict_project / "data/08_reporting/data_quality.json").read_text())
    report = quality["prediction"]
    assert (report["networks_predicted"], report["networks_failed"]) == (2, 3)
    assert "data/01_raw/predict/not_json.json: not valid JSON" in report["errors"]["not_json"]
    assert "'Layers'" in report["errors"]["no_layers"]
    assert "layer 'conv1' has no Inputs[0].Dimensions" in report["errors"]["no_dims"]


def test_the_models_idle_power_adds_total_power(predict_project: Path) -> None:
    _write_idle_power(predict_project)
    run_kedro(predict_project, "prediction")
    tiny = pd.read_csv(predict_project / "data/07_model_output/predictions/tiny.csv")
    assert tiny["power_total_prediction"].tolist()[0] == pytest.approx(10.0 + IDLE_W)


def test_a_raw_dataset_predicts_every_model_folders_engine(
    kedro_project: Callable[..., Path],
) -> None:
    project = kedro_project(models=("lenet", "resnet18"))
    _write_models(project)
    _write_idle_power(project)
    run_kedro(project, "prediction", predict_dataset="h200_isolated_v1")
    output = project / "data" / "07_model_output"
    assert sorted(p.stem for p in (output / "predictions").glob("*.csv")) == ["lenet", "resnet18"]
    summary = pd.read_csv(output / "prediction_summary.csv").set_index("network")
    # resnet18 in the NVML dialect: 14 unique configurations standing for 21 modelled layers
    # (20 Conv2d incl. 3 downsample 1x1, 1 Linear; + max pool, adaptive avg pool)
    resnet18 = pd.read_csv(output / "predictions" / "resnet18.csv")
    assert len(resnet18) == 14
    assert summary.loc["resnet18", "layers_predicted"] == resnet18["count"].sum()


def _measure_idle_power() -> dict:
    """Stand-in for the idle power derived from the training tables."""
    return {"avg_idle_power_uw": IDLE_W * 1e6, "source": "test", "device": {"name": "H200"}}


def _empty_domain() -> dict:
    """Stand-in for the applicability domain: no class described, in_domain stays empty."""
    return {"version": 1, "classes": {}}


def _no_intervals() -> dict:
    """Stand-in for the interval calibrations: none, the bounds stay empty."""
    return {}


def _fit_standins(idle_power: dict) -> tuple:
    """Stand-in for the modelling pipeline: the six fitted models, saved locally and logged
    to the MLflow run (``<layer_class>.<target>_model_mlflow``)."""
    models = standin_models()
    return tuple(models[key] for key in model_datasets()) * 2


def test_training_logs_a_servable_model_that_predicts_a_real_engine(
    predict_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = {
        name: {
            "type": "power_modelling.datasets.SkopsModelDataset",
            "filepath": f"data/06_models/{MODELS}/{key}.skops",
        }
        for key, name in model_datasets().items()
    }
    (predict_project / "conf/local/catalog_standin.yml").write_text(yaml.safe_dump(catalog))
    outputs = list(model_datasets().values())
    training = Pipeline(
        [
            Node(_measure_idle_power, None, "device_idle_power", name="measure_idle_power"),
            Node(_empty_domain, None, "applicability_domain", name="empty_domain"),
            Node(_no_intervals, None, "prediction_intervals", name="no_intervals"),
            Node(
                _fit_standins,
                "device_idle_power",
                outputs + [f"{name}_mlflow" for name in outputs],
                name="fit",
            ),
        ]
    )
    project_pipelines = pipeline_registry.register_pipelines
    monkeypatch.setattr(
        pipeline_registry,
        "register_pipelines",
        lambda: {"__default__": training},
    )
    run_kedro(predict_project)

    mlflow.set_tracking_uri(f"sqlite:///{predict_project / 'mlflow.db'}")
    # registered per raw dataset: a model of another device never replaces it
    uri = f"models:/{pipeline_registry.REGISTERED_MODEL_NAME}-{MODELS}/1"
    served = mlflow.pyfunc.load_model(uri)
    # defined in code, its models skops files: nothing in it is unpickled
    files = {p.name for p in Path(mlflow.artifacts.download_artifacts(uri)).rglob("*")}
    assert "serving.py" in files and not {f for f in files if f.endswith((".pkl", ".pickle"))}
    engine = predict_project / "data/01_raw/predict" / f"{SHIPPED}.json"
    layers = describe_layers(json.loads(engine.read_text()), str(engine))
    predicted = served.predict(layers)
    expected = predict_layers(
        layers, standin_models(), idle_power_w=IDLE_W, domain=_empty_domain(), calibrations={}
    )
    pd.testing.assert_frame_equal(predicted, expected)

    # and the prediction pipeline reads that run's models instead of data/06_models (a
    # configuration environment, not a code path)
    monkeypatch.setattr(pipeline_registry, "register_pipelines", project_pipelines)
    run_id = mlflow.search_runs(search_all_experiments=True)["run_id"].iloc[-1]
    for local in (predict_project / "data" / "06_models" / MODELS).iterdir():
        local.unlink()
    run_kedro(predict_project, "prediction", env="mlflow_models", model_run_id=run_id)
    shipped = pd.read_csv(predict_project / "data/07_model_output/predictions" / f"{SHIPPED}.csv")
    total = set(shipped["power_total_prediction"].dropna())
    assert total == {10.0 + IDLE_W, 2.0 + IDLE_W, 5.0 + IDLE_W}


def test_prediction_finds_models_and_idle_power_from_a_subfolder(
    predict_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A notebook kernel runs in notebooks/: models and idle power are catalog datasets, read
    from the project root."""
    _write_idle_power(predict_project)
    (predict_project / "notebooks").mkdir()
    monkeypatch.chdir(predict_project / "notebooks")
    run_kedro(predict_project, "prediction")
    tiny = pd.read_csv(predict_project / "data/07_model_output/predictions/tiny.csv")
    assert list(tiny.columns) == expected_columns(with_idle=True, model_set=True)
    modelled = tiny.dropna(subset=["power_prediction"])
    assert (modelled["power_total_prediction"] == modelled["power_prediction"] + IDLE_W).all()
    assert not (predict_project / "notebooks" / "data").exists()


def _dynamic_batch_onnx() -> bytes:
    """Conv 3→4 (3x3, pad 1) → Flatten → Gemm 256→10 on a ["N", 3, 8, 8] input."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [
            helper.make_node(
                "Conv", ["x", "w"], ["c"], "/conv/Conv", kernel_shape=[3, 3], pads=[1] * 4
            ),
            helper.make_node("Flatten", ["c"], ["f"], "/Flatten"),
            helper.make_node("Gemm", ["f", "fc.w"], ["y"], "/fc/Gemm", transB=1),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])],
        initializer=[
            numpy_helper.from_array(np.zeros((4, 3, 3, 3), np.float32), "w"),
            numpy_helper.from_array(np.zeros((10, 256), np.float32), "fc.w"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def test_onnx_models_are_predicted_beside_engines_like_them(
    kedro_project: Callable[..., Path],
) -> None:
    """data/01_raw/<predict_dataset>/ with an ONNX export and the engine file of the same CNN,
    a dynamic-batch ONNX graph and a broken one: one prediction run, the same per-layer
    predictions for the shared layers, the batch size used said in the summary."""
    project = kedro_project(models=())
    folder = project / "data" / "01_raw" / "mixed"
    folder.mkdir(parents=True)
    onnx_dir = Path(__file__).resolve().parents[2] / "data" / "onnx_models"
    (folder / "resnet18.onnx").write_bytes((onnx_dir / "resnet18.onnx").read_bytes())
    engine = project / "data/01_raw/h200_isolated_v1/resnet18/trt_profiling/trt_engine_info.json"
    if not engine.exists():  # the subset copy: take the bundled engine file
        engine = Path(__file__).resolve().parents[3] / (
            "data/01_raw/h200_isolated_v1/resnet18/trt_profiling/trt_engine_info.json"
        )
    (folder / "resnet18_engine.json").write_bytes(engine.read_bytes())
    (folder / "dynamic.onnx").write_bytes(_dynamic_batch_onnx())
    (folder / "broken.onnx").write_bytes((onnx_dir / "lenet.onnx").read_bytes()[:300])
    _write_models(project)
    _write_idle_power(project)

    run_kedro(project, "prediction", predict_dataset="mixed", prediction={"batch_size": 4})
    output = project / "data" / "07_model_output"
    summary = pd.read_csv(output / "prediction_summary.csv").set_index("network")
    assert sorted(summary.index) == ["dynamic", "resnet18", "resnet18_engine"]
    assert summary.loc["dynamic", ["format", "batch_size"]].tolist() == ["onnx", 4]
    assert summary.loc["resnet18", ["format", "batch_size", "precision"]].tolist() == [
        "onnx",
        1,
        "FP16",
    ]
    assert summary.loc["resnet18_engine", "format"] == "tensorrt"
    by_onnx = pd.read_csv(output / "predictions" / "resnet18.csv").dropna(
        subset=["runtime_prediction"]
    )
    by_engine = pd.read_csv(output / "predictions" / "resnet18_engine.csv").dropna(
        subset=["runtime_prediction"]
    )
    columns = ["layer_name", "layer_class", "count", "power_prediction", "runtime_prediction"]
    pd.testing.assert_frame_equal(
        by_onnx[columns].sort_values("layer_name").reset_index(drop=True),
        by_engine[columns].sort_values("layer_name").reset_index(drop=True),
    )
    quality = json.loads((project / "data/08_reporting/data_quality.json").read_text())
    assert list(quality["prediction"]["errors"]) == ["broken"]
    assert "data/01_raw/mixed/broken.onnx" in quality["prediction"]["errors"]["broken"]
