"""DVC round trip through a real local-directory remote."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from power_modelling.data_versioning import pull, track_raw_dataset
from tests.conftest import BUNDLED_RAW


@pytest.fixture
def dvc_project(tmp_path: Path) -> tuple[Path, Path]:
    project, remote = tmp_path / "project", tmp_path / "remote"
    project.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    from dvc.repo import Repo

    Repo.init(str(project))
    with (project / ".dvc" / "config").open("a") as config:
        config.write(
            f"[core]\n    remote = local\n    analytics = false\n"
            f"['remote \"local\"']\n    url = {remote}\n"
        )
    return project, remote


def test_track_push_pull_round_trip(dvc_project: tuple[Path, Path]) -> None:
    project, remote = dvc_project
    dataset = project / "data" / "01_raw" / "lenet_only"
    shutil.copytree(BUNDLED_RAW / "lenet", dataset / "lenet")
    shutil.copy(BUNDLED_RAW / "idling_power.json", dataset / "idling_power.json")
    originals = {p.relative_to(dataset): p.read_bytes() for p in dataset.rglob("*") if p.is_file()}

    dvc_file = track_raw_dataset("lenet_only", project_path=project)

    assert dvc_file == project / "data" / "01_raw" / "lenet_only.dvc"
    assert "md5" in dvc_file.read_text()
    stored = [p for p in remote.rglob("*") if p.is_file()]
    assert len(stored) >= len(originals)  # every file (plus the directory manifest)

    shutil.rmtree(dataset)
    shutil.rmtree(project / ".dvc" / "cache")
    pull(project_path=project)

    restored = {p.relative_to(dataset): p.read_bytes() for p in dataset.rglob("*") if p.is_file()}
    assert restored == originals


def test_missing_dataset_is_named(dvc_project: tuple[Path, Path]) -> None:
    project, _ = dvc_project
    with pytest.raises(FileNotFoundError, match="data/01_raw/nope"):
        track_raw_dataset("nope", project_path=project)
