"""Which numeric leaves of a report section become MLflow metrics (the rest stay in the JSON)."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
from kedro.config import OmegaConfigLoader
from kedro.framework.project import settings
from kedro.framework.startup import bootstrap_project
from kedro.io import DataCatalog

from power_modelling.datasets import ReportSectionDataset
from power_modelling.datasets.report_section import selected_metrics
from tests.helpers import PROJECT_ROOT

SECTION = {
    "power": {"rmspe": 12.5, "cv_rmspe": 26.9, "baseline_rmspe": 174.6, "n": 22, "estimator": "x"},
    "runtime": {"rmspe": 1.5, "cv_rmspe": None, "within_10pct": 1.0},
}


def test_patterns_select_leaves_by_their_dotted_name() -> None:
    assert selected_metrics("conv", SECTION, ["*.rmspe"]) == {
        "conv.power.rmspe": 12.5,
        "conv.runtime.rmspe": 1.5,
    }
    # `*` spans dots; several patterns add up; strings and nulls are never metrics
    assert set(selected_metrics("conv", SECTION, ["conv.power.*", "*within*"])) == {
        "conv.power.rmspe",
        "conv.power.cv_rmspe",
        "conv.power.baseline_rmspe",
        "conv.power.n",
        "conv.runtime.within_10pct",
    }
    assert selected_metrics("conv", SECTION, []) == {}
    assert len(selected_metrics("conv", SECTION)) == 6  # no patterns: every numeric leaf


def test_only_the_selected_leaves_are_logged_the_whole_section_is_the_artifact(
    tmp_path: Path,
) -> None:
    report = tmp_path / "metrics.json"
    dataset = ReportSectionDataset(
        str(report),
        section="conv",
        mlflow_prefix="m.",
        metrics="*.rmspe",  # one pattern
    )
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_experiment("report-section-policy")
    with mlflow.start_run() as run:
        dataset.save(SECTION)
    assert mlflow.get_run(run.info.run_id).data.metrics == {
        "m.conv.power.rmspe": 12.5,
        "m.conv.runtime.rmspe": 1.5,
    }
    artifact = Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id))
    assert json.loads((artifact / "metrics" / "conv.json").read_text()) == SECTION
    assert json.loads(report.read_text()) == {"conv": SECTION}


@pytest.fixture(scope="module")
def catalog() -> DataCatalog:
    bootstrap_project(PROJECT_ROOT)
    config = OmegaConfigLoader(
        conf_source=str(PROJECT_ROOT / "conf"), **settings.CONFIG_LOADER_ARGS
    )
    return DataCatalog.from_config(config["catalog"])


def _policy(catalog: DataCatalog, name: str, section: str, data: dict) -> set[str]:
    dataset = catalog.get(name)
    return set(selected_metrics(section, data, dataset._metrics))


def test_catalog_keeps_headline_figures_and_totals_as_metrics(catalog: DataCatalog) -> None:
    figures = {
        f"{prefix}{metric}": 1.0
        for prefix in ("", "cv_", "baseline_", "baseline_cv_")
        for metric in ("n", "rmse", "mae", "r2", "n_percentage", "rmspe", "mape", "within_10pct")
    }
    layer = {target: figures for target in ("power", "power_total", "runtime")}
    assert _policy(catalog, "pooling.metrics", "pooling", layer) == {
        f"pooling.{target}.{metric}"
        for target in layer
        for metric in ("rmspe", "cv_rmspe", "within_10pct", "baseline_rmspe")
    }
    network = {
        "n_networks": 3,
        "mean": {"runtime_accuracy": 0.97, "energy_accuracy": 0.9},
        "networks": {"lenet": {"layers": 7, "runtime_accuracy": 0.92}},
    }
    assert _policy(catalog, "network_metrics", "network", network) == {
        "network.n_networks",
        "network.mean.runtime_accuracy",
        "network.mean.energy_accuracy",
    }
    per_model = {"lenet": {"windows_total": 9, "malformed": 0}, "vgg": {"windows_total": 8}}
    ingestion = {
        "_summary": {"models_found": 2, "models_ingested": 2, "malformed_power_lines": 0},
        **per_model,
    }
    assert _policy(catalog, "ingestion_data_quality", "ingestion", ingestion) == {
        "ingestion._summary.models_found",
        "ingestion._summary.models_ingested",
        "ingestion._summary.malformed_power_lines",
    }
    assert _policy(catalog, "power_mapping_data_quality", "power_mapping", per_model) == set()
    features = {"_tables": {"dense": {"rows": 5, "models": 2, "power_excluded": 0}}, **per_model}
    assert _policy(
        catalog, "feature_engineering_data_quality", "feature_engineering", features
    ) == {
        "feature_engineering._tables.dense.rows",
        "feature_engineering._tables.dense.power_excluded",
    }
