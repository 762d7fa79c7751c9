"""Real Kedro runs of the power_mapping pipeline on bundled data (after ingestion)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from power_modelling.core.mapping import LAYERWISE_COLUMNS
from tests.helpers import run_kedro


@pytest.mark.integration
def test_power_mapping_run_writes_layerwise_and_quality_section(kedro_project) -> None:
    project = kedro_project(("lenet",))
    run_kedro(project, "ingestion")
    stale = project / "data" / "03_primary" / "layerwise" / "removed_model.parquet"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"left over from an earlier raw dataset")

    run_kedro(project, "power_mapping")

    written = sorted(p.name for p in stale.parent.iterdir())
    assert written == ["lenet.parquet"]  # the stale partition is gone
    table = pd.read_parquet(stale.parent / "lenet.parquet")
    assert list(table.columns) == list(LAYERWISE_COLUMNS)
    assert table["cycle"].min() == 1
    assert set(table["layer_type"]) == {"Conv2d", "MaxPool2d", "Linear"}
    assert table["layer_power_including_idle_power_micro_watt"].notna().mean() > 0.99

    report = json.loads((project / "data" / "08_reporting" / "data_quality.json").read_text())
    lenet = report["power_mapping"]["lenet"]
    assert lenet["windows_total"] == len(table)
    assert lenet["windows_with_samples"] == int((table["n_samples"] > 0).sum())
    assert lenet["layers_without_samples"] == []
    assert lenet["layers_unknown_type"] == 0
    assert lenet["samples_used"] + lenet["samples_outside_windows"] == lenet["samples_total"]
