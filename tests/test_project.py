"""Project foundation: configuration, registry, offline defaults, shared datasets."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import mlflow
import numpy as np
import pytest
import yaml
from kedro.config import OmegaConfigLoader
from kedro.framework.project import settings
from kedro.framework.startup import bootstrap_project

from power_modelling.datasets import ReportSectionDataset
from tests.helpers import PROJECT_ROOT


def _config_loader(**runtime_params: object) -> OmegaConfigLoader:
    bootstrap_project(PROJECT_ROOT)
    return OmegaConfigLoader(
        conf_source=str(PROJECT_ROOT / "conf"),
        runtime_params=runtime_params or None,
        **settings.CONFIG_LOADER_ARGS,
    )


def test_raw_dataset_defaults_to_bundled_data_and_is_overridable() -> None:
    assert _config_loader()["parameters"]["raw_dataset"] == "h200_isolated_v1"
    overridden = _config_loader(raw_dataset="my_jetson_data")["parameters"]["raw_dataset"]
    assert overridden == "my_jetson_data"
    assert (PROJECT_ROOT / "data" / "01_raw" / "h200_isolated_v1" / "idling_power.json").exists()


def test_local_globals_move_parameter_and_catalog_together(tmp_path: Path) -> None:
    """One default per dataset folder: conf/local/globals.yml moves the parameter and every
    catalog entry that reads the folder; --params still wins."""
    conf = tmp_path / "conf"
    shutil.copytree(PROJECT_ROOT / "conf", conf)
    (conf / "local").mkdir(exist_ok=True)
    (conf / "local" / "globals.yml").write_text("raw_dataset: orin\npredict_dataset: engines\n")

    def resolved(**runtime_params: object) -> tuple[str, ...]:
        loader = OmegaConfigLoader(
            conf_source=str(conf),
            runtime_params=runtime_params or None,
            **settings.CONFIG_LOADER_ARGS,
        )
        params, catalog = loader["parameters"], loader["catalog"]
        return (
            params["raw_dataset"],
            catalog["raw_measurement_files"]["path"],
            catalog["raw_data_version"]["path"],
            params["predict_dataset"],
            catalog["prediction_files"]["path"],
            catalog["{layer_class}.{target}_model"]["filepath"],
            params["prediction"]["models"],
        )

    bootstrap_project(PROJECT_ROOT)
    assert resolved() == (
        "orin",
        "data/01_raw/orin",
        "data/01_raw/orin",
        "engines",
        "data/01_raw/engines",
        "data/06_models/orin/{layer_class}_{target}.skops",
        "orin",
    )
    assert resolved(raw_dataset="x")[:3] == ("x", "data/01_raw/x", "data/01_raw/x")
    # models belong to the raw dataset; prediction.models picks another set
    assert resolved(raw_dataset="x")[5:] == ("data/06_models/x/{layer_class}_{target}.skops", "x")
    assert resolved(prediction={"models": "y"})[5:] == (
        "data/06_models/y/{layer_class}_{target}.skops",
        "y",
    )


def test_mlflow_defaults_to_sqlite_and_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    server = _config_loader()["mlflow"]["server"]
    assert server["mlflow_tracking_uri"] == f"sqlite:///{PROJECT_ROOT.as_posix()}/mlflow.db"
    monkeypatch.chdir(PROJECT_ROOT / "notebooks")  # a kernel's folder: the same store
    server = _config_loader()["mlflow"]["server"]
    assert server["mlflow_tracking_uri"] == f"sqlite:///{PROJECT_ROOT.as_posix()}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "https://dagshub.com/u/r.mlflow")
    server = _config_loader()["mlflow"]["server"]
    assert server["mlflow_tracking_uri"] == "https://dagshub.com/u/r.mlflow"


def test_kedro_telemetry_is_declined_for_the_project() -> None:
    assert yaml.safe_load((PROJECT_ROOT / ".telemetry").read_text()) == {"consent": False}


def test_registry_default_is_the_training_chain() -> None:
    bootstrap_project(PROJECT_ROOT)
    from power_modelling.pipeline_registry import DEFAULT_PIPELINES, register_pipelines

    pipelines = register_pipelines()
    default_nodes = {n.name for n in pipelines["__default__"].nodes}
    for name in DEFAULT_PIPELINES:
        if name in pipelines:
            assert {n.name for n in pipelines[name].nodes} <= default_nodes


def test_report_sections_merge_and_log_to_mlflow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = tmp_path / "report.json"
    first = ReportSectionDataset(str(report), section="ingestion", mlflow_prefix="dq.")
    second = ReportSectionDataset(str(report), section="power_mapping", mlflow_prefix="dq.")
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_experiment("report-sections")  # not the one an earlier Kedro run left active
    with mlflow.start_run() as run:
        first.save({"resnet18": {"lines": 10, "ok": True, "note": "x"}})
        second.save({"resnet18": {"windows": np.int64(3), "median": float("nan")}})
        first.save({"resnet18": {"lines": 12, "ok": True, "note": "x"}})
    written = json.loads(report.read_text())
    assert set(written) == {"ingestion", "power_mapping"}
    assert written["ingestion"] == {"resnet18": {"lines": 12, "ok": True, "note": "x"}}
    assert written["power_mapping"] == {"resnet18": {"windows": 3, "median": None}}
    assert first.load() == {"resnet18": {"lines": 12, "ok": True, "note": "x"}}
    metrics = mlflow.get_run(run.info.run_id).data.metrics
    assert metrics["dq.ingestion.resnet18.lines"] == 12.0
    assert metrics["dq.ingestion.resnet18.ok"] == 1.0
    assert metrics["dq.power_mapping.resnet18.windows"] == 3.0
    assert "dq.power_mapping.resnet18.median" not in metrics  # NaN is not logged


def test_modelling_is_one_template_in_three_namespaces_with_layered_catalog() -> None:
    """What kedro-viz shows: three collapsible namespaces, datasets on the data layers."""
    bootstrap_project(PROJECT_ROOT)
    from power_modelling.pipeline_registry import register_pipelines

    default = register_pipelines()["__default__"]
    namespaces = {node.namespace for node in default.nodes} - {None}
    assert namespaces == {"convolutional", "pooling", "dense"}
    per_namespace = {
        ns: sorted(n.name.split(".", 1)[1] for n in default.nodes if n.namespace == ns)
        for ns in namespaces
    }
    assert per_namespace["convolutional"] == per_namespace["pooling"] == per_namespace["dense"]

    catalog = _config_loader()["catalog"]
    layer = {
        name: entry.get("metadata", {}).get("kedro-viz", {}).get("layer")
        for name, entry in catalog.items()
    }
    assert layer["raw_measurement_files"] == "raw"
    assert layer["layerwise"] == "primary"
    assert layer["{layer_class}.model_input_{split}"] == "model_input"
    assert layer["{layer_class}.{target}_model"] == "models"
