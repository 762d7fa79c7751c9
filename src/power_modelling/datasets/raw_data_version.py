"""Read-only dataset: how a raw dataset folder is versioned (DVC hash or git commit)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

from kedro.io import AbstractDataset, DatasetError

from power_modelling.data_versioning import dataset_version


class RawDataVersionDataset(AbstractDataset[None, dict[str, str]]):
    """Loads :func:`~power_modelling.data_versioning.dataset_version` of ``data/01_raw/<dataset>``:
    ``raw_dataset`` plus ``raw_dataset.dvc_md5`` (from the ``.dvc`` file) or
    ``raw_dataset.git_commit`` / ``raw_dataset.git_dirty`` (bundled, git-tracked data)."""

    def __init__(
        self, dataset: str, project_path: str = ".", metadata: dict[str, Any] | None = None
    ) -> None:
        self._dataset = dataset
        self._project_path = Path(project_path)
        self.metadata = metadata

    def load(self) -> dict[str, str]:
        return dataset_version(self._dataset, self._project_path)

    def save(self, data: None) -> NoReturn:
        raise DatasetError("RawDataVersionDataset is read-only")

    def _exists(self) -> bool:
        return (self._project_path / "data" / "01_raw" / self._dataset).is_dir()

    def _describe(self) -> dict[str, Any]:
        return {"dataset": self._dataset, "project_path": str(self._project_path)}
