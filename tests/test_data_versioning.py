"""Data versioning: a real DVC round trip in a temporary clone, and the `kedro data` commands
(argument handling and one-line errors, without network: only 127.0.0.1 is contacted)."""

from __future__ import annotations

import http.server
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from power_modelling.cli import cli
from power_modelling.data_versioning import RAW_DIR, dataset_version
from tests.helpers import BUNDLED_RAW, PROJECT_ROOT

KEDRO = str(Path(sys.executable).parent / "kedro")
GIT_IDENTITY = ["-c", "user.email=ci@example.invalid", "-c", "user.name=CI"]


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *GIT_IDENTITY, *args], cwd=repo, check=True, capture_output=True, text=True
    )
    return done.stdout


def _kedro(project: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DO_NOT_TRACK": "true",
        "DVC_NO_ANALYTICS": "1",
        "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}",
    }
    return subprocess.run(
        [KEDRO, *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture
def project_clone(tmp_path: Path) -> tuple[Path, Path]:
    """The working tree (what git would commit: tracked and unignored files) committed into a
    fresh repository, with a local-directory DVC remote set in ``.dvc/config.local``."""
    clone, remote = tmp_path / "clone", tmp_path / "dvc-remote"
    files = _git(PROJECT_ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    for name in filter(None, files.split("\0")):
        source = PROJECT_ROOT / name
        if source.is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, clone / name)
    _git(clone, "init", "-q")
    _git(clone, "add", "-A")
    _git(clone, "commit", "-q", "-m", "clone")
    (clone / ".dvc" / "config.local").write_text(
        f"[core]\n    remote = test\n['remote \"test\"']\n    url = {remote}\n"
    )
    return clone, remote


def _files(folder: Path) -> dict[Path, bytes]:
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.integration
def test_dvc_round_trip_then_kedro_runs_on_the_pulled_dataset(
    project_clone: tuple[Path, Path],
) -> None:
    clone, remote = project_clone
    dataset = clone / "data" / "01_raw" / "lenet_dvc"
    shutil.copytree(BUNDLED_RAW / "lenet", dataset / "lenet")
    shutil.copy(BUNDLED_RAW / "idling_power.json", dataset / "idling_power.json")
    originals = _files(dataset)
    assert _git(clone, "status", "--porcelain", "--untracked-files=all") == ""  # ignored by git

    added = _kedro(clone, "data", "add", "lenet_dvc")
    assert added.returncode == 0, added.stderr
    assert "git add data/01_raw/lenet_dvc.dvc" in added.stdout
    status = _git(clone, "status", "--porcelain", "--untracked-files=all").splitlines()
    assert "?? data/01_raw/lenet_dvc.dvc" in status  # the pointer is committable...
    assert not [line for line in status if "lenet_dvc/" in line]  # ...the data is not
    pointer = yaml.safe_load((clone / "data" / "01_raw" / "lenet_dvc.dvc").read_text())
    md5 = pointer["outs"][0]["md5"]
    assert md5.endswith(".dir")
    assert len([p for p in remote.rglob("*") if p.is_file()]) == len(originals) + 1  # + manifest

    shutil.rmtree(dataset)
    shutil.rmtree(clone / ".dvc" / "cache")
    pulled = _kedro(clone, "data", "pull")  # everything: DVC must find the pointer by itself
    assert pulled.returncode == 0, pulled.stderr
    assert _files(dataset) == originals

    run = _kedro(
        clone, "run", "--pipelines", "ingestion,power_mapping", "--params", "raw_dataset=lenet_dvc"
    )
    assert run.returncode == 0, run.stderr[-3000:]
    layerwise = pd.read_parquet(clone / "data" / "03_primary" / "layerwise" / "lenet.parquet")
    assert len(layerwise) > 0
    assert (layerwise["layer_power_including_idle_power_micro_watt"] > 0).any()

    mlflow.set_tracking_uri(f"sqlite:///{clone / 'mlflow.db'}")
    try:
        runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
        [tags] = [run.data.tags for run in runs]
    finally:
        mlflow.set_tracking_uri(os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db"))
    assert tags["raw_dataset"] == "lenet_dvc"
    assert tags["raw_dataset.versioning"] == "dvc"
    assert tags["raw_dataset.dvc_md5"] == md5


def test_bundled_data_is_plain_git_and_versioned_by_commit(
    project_clone: tuple[Path, Path],
) -> None:
    clone, _ = project_clone
    assert "data/01_raw/h200_isolated_v1/lenet/" in _git(clone, "ls-files", "data/01_raw")
    head = _git(clone, "rev-parse", "HEAD").strip()
    assert dataset_version(clone / RAW_DIR / "h200_isolated_v1") == {
        "raw_dataset": "h200_isolated_v1",
        "raw_dataset.versioning": "git",
        "raw_dataset.git_commit": head,
        "raw_dataset.git_dirty": "false",
    }
    (clone / "data" / "01_raw" / "h200_isolated_v1" / "idling_power.json").write_text("{}")
    assert dataset_version(clone / RAW_DIR / "h200_isolated_v1")["raw_dataset.git_dirty"] == "true"
    (clone / "data" / "01_raw" / "fresh").mkdir()
    assert dataset_version(clone / RAW_DIR / "fresh")["raw_dataset.versioning"] == "unversioned"


# --- kedro data upload | download | add | pull -------------------------------------------------


def _invoke(*args: str, token: str | None = "test-token") -> tuple[int, list[str]]:
    env = {"DAGSHUB_USER_TOKEN": token} if token else {"DAGSHUB_USER_TOKEN": ""}
    result = CliRunner().invoke(cli, ["data", *args], env=env)
    return result.exit_code, result.output.strip().splitlines()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def not_found_server() -> Iterator[str]:
    """A local HTTP server that answers 404 to everything (a host without the repository)."""

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


REPO = ["--owner", "someone", "--name", "jetson-data"]


@pytest.mark.parametrize("command", ["upload", "download"])
def test_missing_required_options_are_usage_errors(command: str) -> None:
    code, lines = _invoke(command, "--name", "jetson-data", "--local-dir-path", "data/01_raw")
    assert code == 2
    assert "Missing option '--owner'" in lines[-1]


def test_versioning_must_be_a_known_mode() -> None:
    code, lines = _invoke("upload", *REPO, "--local-dir-path", ".", "--versioning", "svn")
    assert code == 2
    assert "'svn' is not one of 'dvc', 'git', 'auto'" in lines[-1]


@pytest.mark.parametrize("command", ["upload", "download"])
def test_missing_token_is_one_clear_line(command: str) -> None:
    code, lines = _invoke(command, *REPO, "--local-dir-path", str(BUNDLED_RAW), token=None)
    assert code == 1
    assert lines == [
        "Error: DAGSHUB_USER_TOKEN is not set: create a token in your DagsHub user settings "
        "(Tokens) and `export DAGSHUB_USER_TOKEN=<token>`"
    ]


@pytest.mark.parametrize("command", ["upload", "download"])
def test_unreachable_host_is_one_clear_line(command: str, tmp_path: Path) -> None:
    host = f"http://127.0.0.1:{_closed_port()}"
    local = BUNDLED_RAW if command == "upload" else tmp_path / "out"
    code, lines = _invoke(
        command, *REPO, "--local-dir-path", str(local), "--host", host, "--allow-http"
    )
    assert code == 1
    assert len(lines) == 1
    assert lines[0].startswith(f"Error: {command} ")
    assert f"someone/jetson-data failed: cannot reach {host}" in lines[0]


def test_repository_not_found_is_one_clear_line(not_found_server: str) -> None:
    code, lines = _invoke(
        "upload", *REPO, "--local-dir-path", str(BUNDLED_RAW), "--host", not_found_server,
        "--allow-http",
    )  # fmt: skip
    assert code == 1
    assert lines == [
        f"Error: upload to failed: repository someone/jetson-data not found on "
        f"{not_found_server} (or the token cannot see it)"
    ]


def test_upload_names_a_missing_local_folder(tmp_path: Path) -> None:
    code, lines = _invoke("upload", *REPO, "--local-dir-path", str(tmp_path / "nope"))
    assert code == 1
    assert lines == [f"Error: local folder {tmp_path / 'nope'} does not exist"]


def test_add_and_pull_name_what_is_missing(
    project_clone: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    clone, _ = project_clone
    monkeypatch.chdir(clone)
    code, lines = _invoke("add", "nope")
    assert code == 1
    assert lines[-1].startswith("Error: no raw dataset folder data/01_raw/nope")
    code, lines = _invoke("pull", "nope")
    assert code == 1
    assert lines[-1] == "Error: data/01_raw/nope.dvc does not exist: nope is not tracked by DVC"
    code, lines = _invoke("add", "h200_isolated_v1")  # bundled: plain git, not DVC's
    assert code == 1
    assert lines[-1].startswith("Error: DVC could not track or push data/01_raw/h200_isolated_v1")
    assert "already tracked by SCM" in lines[-1]
    code, lines = _invoke("version", "h200_isolated_v1")
    assert code == 0
    assert "raw_dataset.versioning: git" in lines
