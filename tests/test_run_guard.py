"""One run at a time, all or nothing: real `kedro run` subprocesses killed, run side by side,
and pointed at data of another raw dataset (src/power_modelling/run_guard.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest

from power_modelling.errors import InputError
from power_modelling.run_guard import Transaction, layer_of
from tests.helpers import make_project, run_kedro

KEDRO = str(Path(sys.executable).parent / "kedro")
DATASET = "gen"


def _env(project: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "DO_NOT_TRACK": "true",
        "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}",
        "COLUMNS": "200",
        "PYTHONUNBUFFERED": "1",  # each log line reaches the test as it is written
    }
    return env


def _kedro(project: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [KEDRO, "run", *args],
        cwd=project,
        env=_env(project),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_for(process: subprocess.Popen, text: str, timeout: float = 120) -> str:
    """Read the run's output until ``text`` appears; returns what was read."""
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        if text in line:
            return "".join(seen)
    raise AssertionError(f"{text!r} never appeared:\n{''.join(seen)[-3000:]}")


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "_manifest.json"
    }


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with a generated Jetson dataset big enough for a run to be caught mid-way
    (2 models of 500 k windows), ingested once."""
    from benchmarks.generate_jetson import generate_run, write_idle_power, write_raw_model

    project = make_project(tmp_path_factory.mktemp("guard"), models=())
    raw = project / "data" / "01_raw" / DATASET
    for seed in range(2):
        run = generate_run(5_000, 100, seed=seed)
        write_idle_power(raw, run.idle_power_uw)
        write_raw_model(run, raw, f"net{seed}")
    done = subprocess.run(
        [KEDRO, "run", "--pipelines", "ingestion", "--params", f"raw_dataset={DATASET}"],
        cwd=project,
        env=_env(project),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return project


@pytest.mark.integration
def test_sigterm_mid_run_keeps_the_previous_outputs_and_marks_the_run_killed(
    project: Path,
) -> None:
    intermediate = project / "data" / "02_intermediate"
    before = _snapshot(intermediate)
    manifest = json.loads((intermediate / "_manifest.json").read_text())
    assert manifest["complete"] and manifest["raw_dataset"] == DATASET

    run = _kedro(project, "--pipelines", "ingestion", "--params", f"raw_dataset={DATASET}")
    _wait_for(run, "Ingesting net1")  # net0 is being written
    run.send_signal(signal.SIGTERM)
    output = run.communicate(timeout=120)[0]
    assert run.returncode != 0
    assert "interrupted by SIGTERM" in output
    assert "its outputs were discarded and the previous ones kept" in output
    assert _snapshot(intermediate) == before  # every partition as the first run left it
    assert json.loads((intermediate / "_manifest.json").read_text()) == manifest
    assert not (project / "data" / ".transaction").exists()

    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    runs = mlflow.search_runs(search_all_experiments=True, order_by=["start_time DESC"])
    assert runs["status"].iloc[0] == "KILLED"


@pytest.mark.integration
def test_after_sigkill_the_next_run_restores_the_previous_outputs_first(project: Path) -> None:
    intermediate = project / "data" / "02_intermediate"
    before = _snapshot(intermediate)
    run = _kedro(project, "--pipelines", "ingestion", "--params", f"raw_dataset={DATASET}")
    _wait_for(run, "Ingesting net1")
    run.kill()  # no handler, no hook: the journal stays behind
    run.communicate(timeout=60)
    assert (project / "data" / ".transaction" / "journal.json").exists()
    manifest = json.loads((intermediate / "_manifest.json").read_text())
    assert manifest["complete"] is False  # nothing trusts the half-written layer

    # a later run of another pipeline puts the old outputs back before it starts
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(project)
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project / 'mlflow.db'}")
        run_kedro(project, "power_mapping", raw_dataset=DATASET)
    assert _snapshot(intermediate) == before
    assert json.loads((intermediate / "_manifest.json").read_text())["complete"] is True


@pytest.mark.integration
def test_a_second_run_waits_for_the_first_or_fails_at_once(project: Path) -> None:
    from filelock import FileLock

    held = FileLock(str(project / "data" / ".run.lock"))  # another run holds the lock
    held.acquire()
    try:
        refused = subprocess.run(
            [
                KEDRO,
                "run",
                "--pipelines",
                "ingestion",
                "--params",
                f"raw_dataset={DATASET},run_guard.lock=fail",
            ],
            cwd=project,
            env=_env(project),
            capture_output=True,
            text=True,
            check=False,
        )
        assert refused.returncode == 1
        assert "Error: another kedro run of this project is in progress" in refused.stderr
        assert "Traceback" not in refused.stdout + refused.stderr
        waiting = _kedro(project, "--pipelines", "ingestion", "--params", f"raw_dataset={DATASET}")
        _wait_for(waiting, "Another kedro run of this project is in progress: waiting for it")
        time.sleep(1)
        assert waiting.poll() is None  # still waiting
    finally:
        held.release()
    output = waiting.communicate(timeout=300)[0]
    assert waiting.returncode == 0, output[-3000:]
    assert "Ingesting net1" in output


def test_inputs_of_another_raw_dataset_are_refused(project: Path) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(project)
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project / 'mlflow.db'}")
        with pytest.raises(InputError, match=r"data/02_intermediate holds data of raw dataset "):
            run_kedro(project, "power_mapping", raw_dataset="h200_isolated_v1")


def test_transaction_rolls_back_files_folders_and_merged_reports(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "02_intermediate" / "parts").mkdir(parents=True)
    (data / "02_intermediate" / "parts" / "a.parquet").write_text("old a")
    (data / "08_reporting").mkdir()
    (data / "08_reporting" / "report.json").write_text('{"old": 1}')
    outputs = {
        "parts": (data / "02_intermediate" / "parts", False),
        "report": (data / "08_reporting" / "report.json", True),
        "new": (data / "03_primary" / "new.parquet", False),
    }
    transaction = Transaction(tmp_path)
    transaction.begin(outputs, {"run_id": "r1"})
    assert not (data / "02_intermediate" / "parts").exists()  # moved aside, not copied
    assert (data / "08_reporting" / "report.json").read_text() == '{"old": 1}'  # merged: kept
    # the run writes a partial new state
    (data / "02_intermediate" / "parts").mkdir()
    (data / "02_intermediate" / "parts" / "b.parquet").write_text("new b")
    (data / "08_reporting" / "report.json").write_text('{"old": 1, "half')
    (data / "03_primary").mkdir()
    (data / "03_primary" / "new.parquet").write_text("partial")

    restored = Transaction(tmp_path).rollback()  # as a later process would, from the journal
    assert sorted(restored) == ["parts", "report"]
    assert sorted(p.name for p in (data / "02_intermediate" / "parts").iterdir()) == ["a.parquet"]
    assert (data / "08_reporting" / "report.json").read_text() == '{"old": 1}'
    assert not (data / "03_primary" / "new.parquet").exists()
    assert not (tmp_path / "data" / ".transaction").exists()


def test_layers_are_folders_of_data_and_one_per_model_set(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert layer_of(data / "02_intermediate" / "x" / "y.parquet", data) == data / "02_intermediate"
    assert layer_of(data / "06_models" / "mine" / "m.skops", data) == data / "06_models" / "mine"
    assert layer_of(tmp_path / "elsewhere.json", data) is None
    assert layer_of(data / ".transaction" / "journal.json", data) is None
