"""Read-only dataset: how a raw dataset folder is versioned (DVC hash or git commit)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

from kedro.io import AbstractDataset, DatasetError

from power_modelling.data_versioning import dataset_version


class RawDataVersionDataset(AbstractDataset[None, dict[str, str]]):
    """Loads :func:`~power_modelling.data_versioning.dataset_version` of the raw dataset folder
    ``path`` (``data/01_raw/<dataset>``; Kedro makes it absolute, so any working directory
    works): ``raw_dataset`` plus ``raw_dataset.dvc_md5`` (from the ``.dvc`` file beside it) or
    ``raw_dataset.git_commit`` / ``raw_dataset.git_dirty`` (git-tracked data)."""

    def __init__(self, path: str, metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(path)
        self.metadata = metadata

    def load(self) -> dict[str, str]:
        return dataset_version(self._path)

    def save(self, data: None) -> NoReturn:
        raise DatasetError("RawDataVersionDataset is read-only")

    def _exists(self) -> bool:
        return self._path.is_dir()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}
