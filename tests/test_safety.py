"""Inputs that would lead outside the project's raw folder, and runs that start at once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from power_modelling.hooks import sqlite_store_path
from power_modelling.project import checked_dataset_name
from tests.helpers import make_project

KEDRO = str(Path(sys.executable).parent / "kedro")

# --- dataset names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [("h200_isolated_v1", "h200_isolated_v1"), ("my jetson..data", "my jetson..data"),
     (2024, "2024"), ("predict", "predict")],
)  # fmt: skip
def test_folder_names_are_accepted(name: object, expected: str) -> None:
    assert checked_dataset_name(name, "raw_dataset") == expected


@pytest.mark.parametrize(
    "name",
    ["../../../x", "..", ".", "", "/abs/data", "a/b", "a\\..\\b", "x\x00", None, True, ["x"], 1.5],
)
def test_paths_and_non_names_are_refused(name: object) -> None:
    with pytest.raises(ValueError) as raised:
        checked_dataset_name(name, "predict_dataset")
    assert str(raised.value) == (
        f"predict_dataset={name!r} is not a dataset name: give the name of a folder directly "
        "under data/01_raw/ (for example --params predict_dataset=h200_isolated_v1), not a "
        "path; put or link the dataset folder into data/01_raw/ first"
    )


def _kedro_env(project: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DO_NOT_TRACK": "true",
        "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}",
    }


def _written(project: Path) -> list[str]:
    """Files under data/ other than the copied raw data (and nothing tracked)."""
    return sorted(
        p.relative_to(project).as_posix()
        for p in (project / "data").rglob("*")
        if p.is_file() and "01_raw" not in p.parts
    )


@pytest.mark.integration
@pytest.mark.parametrize(
    ("pipeline", "param"),
    [("ingestion", "raw_dataset=../../x"), ("prediction", "predict_dataset=/tmp")],
)
def test_a_path_as_dataset_fails_before_any_work(tmp_path: Path, pipeline: str, param: str) -> None:
    project = make_project(tmp_path, models=("lenet",))
    done = subprocess.run(
        [KEDRO, "run", "--pipelines", pipeline, "--params", param],
        cwd=project, env=_kedro_env(project), capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode != 0
    kind, value = param.split("=")
    assert f"{kind}={value!r} is not a dataset name" in " ".join(output.split())
    assert "Running node" not in output
    assert _written(project) == []
    assert not (project / "mlflow.db").exists()  # failed before kedro-mlflow set up its store
    assert not (tmp_path.parent / "x").exists()


# --- two runs creating one sqlite MLflow store at once -----------------------------------------

# Set up a Kedro session, say so, wait for the go, then create the context: the hooks'
# after_context_created, where kedro-mlflow creates the sqlite store and the experiment.
CONTEXT_AT_GO = """
import sys, time
from pathlib import Path
import mlflow.store.tracking.sqlalchemy_store  # imported before the go, like the hook's
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

project, ready, go = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
bootstrap_project(project)
with KedroSession.create(project_path=project) as session:
    ready.touch()
    while not go.exists():
        time.sleep(0.001)
    session.load_context()
print("store ready")
"""


def _wait_for(paths: list[Path], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not all(path.exists() for path in paths):
        assert time.monotonic() < deadline, f"not ready after {timeout_s} s: {paths}"
        time.sleep(0.01)


@pytest.mark.integration
def test_two_processes_creating_one_new_mlflow_store_both_succeed(tmp_path: Path) -> None:
    project = make_project(tmp_path, models=())
    env = _kedro_env(project)
    for attempt in range(2):  # without the lock, 4 races out of 5 failed
        store, go = project / f"mlflow_{attempt}.db", tmp_path / f"go_{attempt}"
        ready = [tmp_path / f"ready_{attempt}_{index}" for index in range(2)]
        env["MLFLOW_TRACKING_URI"] = f"sqlite:///{store}"
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", CONTEXT_AT_GO, str(project), str(flag), str(go)],
                cwd=project,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )  # fmt: skip
            for flag in ready
        ]
        try:
            _wait_for(ready, timeout_s=120)
        finally:
            go.touch()  # also lets them end when one failed early
        outputs = [process.communicate(timeout=300)[0] for process in processes]
        for process, output in zip(processes, outputs, strict=True):
            assert process.returncode == 0, output[-3000:]
            assert output.strip().endswith("store ready")
        assert store.exists()


def test_sqlite_store_path() -> None:
    assert sqlite_store_path("sqlite:////abs/mlflow.db") == Path("/abs/mlflow.db")
    assert sqlite_store_path("sqlite:///rel/mlflow.db?timeout=5") == Path("rel/mlflow.db")
    for uri in (None, "", "https://dagshub.com/u/r.mlflow", "sqlite://", "sqlite:///:memory:"):
        assert sqlite_store_path(uri) is None
