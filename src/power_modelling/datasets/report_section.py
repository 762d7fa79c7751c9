"""A JSON report that several pipelines or namespaces write to, one section each."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

logger = logging.getLogger(__name__)


def _json_ready(value: Any) -> Any:
    """Plain JSON values: numpy scalars/arrays to Python, non-finite floats to ``None``."""
    if isinstance(value, dict):
        return {str(key): _json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(item) for item in value]
    if hasattr(value, "tolist"):  # numpy scalar or array
        return _json_ready(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _flatten(prefix: str, value: Any, out: dict[str, float]) -> None:
    """Collect the numeric leaves of a nested dict as ``a.b.c -> value``."""
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), item, out)
    elif isinstance(value, int | float):  # bool is an int
        out[prefix] = float(value)


class ReportSectionDataset(AbstractDataset[dict, dict]):
    """One section of a JSON report shared by several writers.

    Used for ``data/08_reporting/data_quality.json`` (a section per stage) and
    ``data/08_reporting/metrics.json`` (a section per layer type, plus ``network``).
    Saving replaces that section only, keeping the others, and logs it to the active MLflow
    run when there is one: the whole section as a JSON artifact, and the numeric leaves that
    ``metrics`` selects as metrics named ``<mlflow_prefix><section>.<key>...``. Loading returns
    the section.

    ``metrics``: glob patterns (``fnmatch``, ``*`` also spans dots) matched against
    ``<section>.<key>...`` (without the prefix), e.g. ``"*.rmspe"`` or
    ``"ingestion._summary.*"``; ``None`` (the default) logs every numeric leaf, ``[]`` none.
    A report of per-model counts has hundreds of leaves: the catalog keeps the headline ones
    as metrics and leaves the rest in the artifact.
    """

    def __init__(
        self,
        filepath: str,
        section: str,
        mlflow_prefix: str = "",
        log_to_mlflow: bool = True,
        *,
        metrics: Sequence[str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.metadata = metadata  # e.g. the kedro-viz layer; not used by the dataset itself
        self._filepath = Path(filepath)
        self._section = section
        self._mlflow_prefix = mlflow_prefix
        self._log_to_mlflow = log_to_mlflow
        if isinstance(metrics, str):  # one pattern written without brackets in YAML
            metrics = [metrics]
        self._metrics = None if metrics is None else tuple(metrics)

    def _read_all(self) -> dict:
        if not self._filepath.exists():
            return {}
        try:
            return json.loads(self._filepath.read_text())
        except json.JSONDecodeError as exc:
            logger.warning("%s is not valid JSON (%s); starting a new report", self._filepath, exc)
            return {}

    def load(self) -> dict:
        report = self._read_all()
        if self._section not in report:
            raise DatasetError(f"{self._filepath} has no section '{self._section}'")
        return report[self._section]

    def save(self, data: dict) -> None:
        data = _json_ready(data)
        report = self._read_all()
        report[self._section] = data
        self._filepath.parent.mkdir(parents=True, exist_ok=True)
        self._filepath.write_text(json.dumps(report, indent=2, default=str))
        if self._log_to_mlflow:
            self._log_section(data)

    def _log_section(self, data: dict) -> None:
        import mlflow  # noqa: PLC0415 (only when saving)

        if mlflow.active_run() is None:
            return
        mlflow.log_dict(data, f"{self._filepath.stem}/{self._section}.json")
        metrics = selected_metrics(self._section, data, self._metrics)
        safe = {
            _mlflow_key(f"{self._mlflow_prefix}{key}"): value
            for key, value in metrics.items()
            if math.isfinite(value)
        }
        if safe:
            mlflow.log_metrics(safe)

    def _exists(self) -> bool:
        return self._section in self._read_all()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "section": self._section}


def selected_metrics(
    section: str, data: dict, patterns: Sequence[str] | None = None
) -> dict[str, float]:
    """The numeric leaves of ``data`` as ``{"<section>.<key>...": value}``, only those matching
    one of ``patterns`` (every leaf when ``patterns`` is ``None``)."""
    leaves: dict[str, float] = {}
    _flatten(section, data, leaves)
    if patterns is None:
        return leaves
    return {
        key: value
        for key, value in leaves.items()
        if any(fnmatchcase(key, pattern) for pattern in patterns)
    }


def _mlflow_key(key: str) -> str:
    """MLflow metric names allow alphanumerics, ``_ - . space : /`` only."""
    allowed = set("_-. :/")
    return "".join(ch if ch.isalnum() or ch in allowed else "_" for ch in key)[:250]
