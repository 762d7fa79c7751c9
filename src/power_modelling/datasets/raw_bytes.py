"""One raw file as bytes: the partition type of a raw measurement folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset


class RawBytesDataset(AbstractDataset[None, bytes]):
    """One raw file, loaded as bytes (the partition type of the raw folder)."""

    def __init__(self, filepath: str) -> None:
        self._filepath = Path(filepath)

    def load(self) -> bytes:
        return self._filepath.read_bytes()

    def save(self, data: None) -> None:
        raise NotImplementedError("raw data is read-only")

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}
