"""The template builds per layer type from parameters alone; a real Kedro run end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from kedro.config import OmegaConfigLoader
from omegaconf.resolvers import oc

from power_modelling import pipeline_registry
from power_modelling.core.layers import LAYER_CLASSES
from power_modelling.pipelines.modelling.pipeline import create_pipeline
from tests.synthetic import small_modelling_parameters, synthetic_conv_table

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def _parameters(conf: Path) -> dict:
    loader = OmegaConfigLoader(
        str(conf), base_env="base", default_run_env="local", custom_resolvers={"oc.env": oc.env}
    )
    return loader["parameters"]


def _lookup(parameters: dict, dotted: str):
    value = parameters
    for key in dotted.split("."):
        value = value[key]
    return value


def test_template_builds_for_every_layer_type_from_parameters():
    pipeline = create_pipeline()
    parameters = _parameters(PROJECT_ROOT / "conf")
    for layer_class in LAYER_CLASSES:
        nodes = [n for n in pipeline.nodes if n.namespace == layer_class]
        assert len(nodes) == 10
        assert {f"{layer_class}.model_input_train", f"{layer_class}.model_input_test"} <= {
            name for n in nodes for name in n.inputs
        }
        for name in {i for n in nodes for i in n.inputs if i.startswith("params:")}:
            assert _lookup(parameters, name.removeprefix("params:")) is not None, name
    assert {f"{lt}.{t}_model" for lt in LAYER_CLASSES for t in ("power", "runtime")} <= (
        pipeline.all_outputs()
    )
    assert {f"{lt}.metrics" for lt in LAYER_CLASSES} <= pipeline.all_outputs()


@pytest.mark.integration
def test_kedro_run_writes_models_metrics_charts_and_one_mlflow_run(kedro_project, monkeypatch):
    import mlflow
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    project = kedro_project(models=("lenet",))
    (project / "conf" / "local" / "parameters_modelling.yml").write_text(
        yaml.safe_dump(small_modelling_parameters(project / "conf", physics=False))
    )
    table = synthetic_conv_table(n_models=5, layers=10).assign(
        input_size=lambda f: f["input_size_0"],
        output_size=lambda f: f["output_size_0"],
        gemm_m=1,
        gemm_k=lambda f: f["input_size_0"],
        gemm_n=lambda f: f["output_size_0"],
    )
    model_input = project / "data" / "05_model_input"
    model_input.mkdir(parents=True)
    for layer_class in LAYER_CLASSES:
        table[table["model"] != "net4"].to_parquet(model_input / f"{layer_class}_train.parquet")
        table[table["model"] == "net4"].to_parquet(model_input / f"{layer_class}_test.parquet")

    bootstrap_project(project)
    # the modelling template alone (the registry's `modelling` adds network evaluation)
    monkeypatch.setattr(
        pipeline_registry, "register_pipelines", lambda: {"__default__": create_pipeline()}
    )
    with KedroSession.create(project_path=project) as session:
        session.run()

    for layer_class in LAYER_CLASSES:
        for target in ("power", "runtime"):
            assert (
                project / "data/06_models/h200_isolated_v1" / f"{layer_class}_{target}.skops"
            ).exists()
        for chart in ("power_bars", "power_total_scatter", "runtime_scatter"):
            assert (project / "data" / "08_reporting" / layer_class / f"{chart}.png").exists()
    metrics = json.loads((project / "data" / "08_reporting" / "metrics.json").read_text())
    assert set(metrics) == {*LAYER_CLASSES, "loco"}
    assert set(metrics["dense"]) == {"power", "power_total", "runtime"}
    # leave-one-CNN-out over the training and test CNNs, with the selected estimators
    loco = metrics["loco"]
    assert sorted(loco["per_cnn"]) == [f"net{i}" for i in range(5)]
    assert loco["estimators"]["dense"]["runtime"] == metrics["dense"]["runtime"]["estimator"]
    assert (project / "data" / "08_reporting" / "loco.png").exists()
    runs = mlflow.search_runs(search_all_experiments=True)
    assert len(runs) == 1
    assert "metrics.convolutional.runtime.rmspe" in runs.columns
    logged_loco = sorted(c for c in runs.columns if c.startswith("metrics.loco."))
    assert len(logged_loco) == 14  # the means over CNNs only, not the per-CNN figures
    assert runs["metrics.loco.summary.mean_over_cnns.runtime_rmspe"][0] == pytest.approx(
        loco["summary"]["mean_over_cnns"]["runtime_rmspe"]
    )
    logged = mlflow.search_logged_models(
        experiment_ids=[runs["experiment_id"][0]], output_format="list"
    )
    assert sorted(m.name for m in logged) == sorted(
        f"{lt}_{t}" for lt in LAYER_CLASSES for t in ("power", "runtime")
    )
