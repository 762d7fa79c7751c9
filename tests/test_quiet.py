"""Known harmless warnings are filtered, and only those."""

from __future__ import annotations

import logging
import subprocess
import sys
import warnings
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from power_modelling.quiet import (
    KEDRO_PIPELINE_MODEL,
    PIPELINE_ML_LOGGER,
    _import_dropping,
    silence_known_noise,
)

DEMOTED = "BEWARE - This 'Pipeline' is no longer a 'PipelineML' object. It should never be used."


def test_the_kedro_command_filters_before_loading_plugins() -> None:
    (init,) = [e for e in entry_points(group="kedro.init") if e.name == "power_modelling"]
    assert init.load() is silence_known_noise


def _output_of(code: str) -> str:
    """What ``code`` prints in a fresh interpreter (warnings may be logged, to stdout)."""
    run = subprocess.run(
        [sys.executable, "-W", "default", "-c", code], capture_output=True, text=True, check=True
    )
    return run.stdout + run.stderr


def test_mlflow_type_hint_hint_is_dropped() -> None:
    hint = "Add type hints"  # (the console may wrap the rest)
    assert hint in _output_of(f"import {KEDRO_PIPELINE_MODEL}")  # what the plugin does alone
    quiet = _output_of(
        "from power_modelling.quiet import silence_known_noise\n"
        "silence_known_noise()\n"
        f"import {KEDRO_PIPELINE_MODEL}"
    )
    assert hint not in quiet


def test_only_the_known_warning_of_an_import_is_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "noisy_module.py").write_text(
        "import warnings\n"
        "warnings.warn('harmless hint', UserWarning, stacklevel=1)\n"
        "warnings.warn('something else', UserWarning, stacklevel=1)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _import_dropping("noisy_module", "harmless hint")
        _import_dropping("noisy_module", "harmless hint")  # imported once
        _import_dropping("not_installed_module", "harmless hint")
    assert [str(w.message) for w in caught] == ["something else"]


class _Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_pipeline_ml_demotion_is_dropped_only_when_kedro_viz_asks() -> None:
    silence_known_noise()  # may configure Kedro's logging: the handler is attached after it
    silence_known_noise()
    logger = logging.getLogger(PIPELINE_ML_LOGGER)
    assert len(logger.filters) == 1
    kept = _Kept()
    logger.addHandler(kept)
    drawn_by_viz: dict = {"__name__": "kedro_viz.data_access.repositories.modular_pipelines"}
    exec("def split(logger, message):\n    logger.warning(message)", drawn_by_viz)
    try:
        drawn_by_viz["split"](logger, DEMOTED)
        drawn_by_viz["split"](logger, "another kedro-mlflow warning")
        logger.warning(DEMOTED)  # anywhere else: a real loss of the MLflow model logging
    finally:
        logger.removeHandler(kept)
    assert kept.messages == ["another kedro-mlflow warning", DEMOTED]
