"""Benchmark: start-up, ``kedro run --pipelines prediction`` of one engine against a bare
``kedro --version`` in the same project, alternated so that both see the same machine.

A temporary copy of the project (configuration, ``data/01_raw/predict``) gets the trained
models of ``data/06_models/h200_isolated_v1`` when there are (with their NumPy predictors:
files trained before those existed are re-saved, as training writes them now), else the
proxy models of ``bench_prediction`` saved as skops files, and its own MLflow store (created
by a first, untimed run). Prints the median wall time of each command and their ratio.

``python -m benchmarks startup`` (or ``make bench``); ``python -m benchmarks.bench_startup
[--repeats N]``.
"""

from __future__ import annotations

import argparse
import compileall
import json
import shutil
import statistics
import sys
import tempfile
import zipfile
from pathlib import Path

from benchmarks import timed_kedro

ROOT = Path(__file__).resolve().parents[1]
MODELS = "h200_isolated_v1"
TARGET_RATIO = 1.5


def _project(project: Path) -> None:
    """The project's configuration and prediction inputs, with models, in ``project``."""
    (project / "src").mkdir(parents=True)
    shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")
    shutil.copytree(ROOT / "conf", project / "conf", ignore=shutil.ignore_patterns("local"))
    (project / "conf" / "local").mkdir()
    shutil.copytree(ROOT / "data" / "01_raw" / "predict", project / "data" / "01_raw" / "predict")
    models = project / "data" / "06_models" / MODELS
    trained = ROOT / "data" / "06_models" / MODELS
    if (trained / "convolutional_power.skops").is_file():
        shutil.copytree(trained, models, ignore=shutil.ignore_patterns("_manifest.json"))
        _with_predictors(models)
        return
    from benchmarks.bench_prediction import proxy_models  # noqa: PLC0415
    from power_modelling.datasets import SkopsModelDataset  # noqa: PLC0415

    for key, model in proxy_models().items():
        SkopsModelDataset(str(models / f"{key}.skops")).save(model)
    (models / "device_idle_power.json").write_text(json.dumps({"avg_idle_power_uw": 121e6}))
    card = {"raw_dataset": MODELS, "device": {"name": "NVIDIA H200"}, "precisions": ["FP16"]}
    (models / "model_card.json").write_text(json.dumps(card))


def _with_predictors(models: Path) -> None:
    """Model files as this version's training writes them: with their NumPy predictor (files
    trained before it are re-saved; the estimators are unchanged)."""
    from benchmarks.bench_prediction import trusted_types  # noqa: PLC0415
    from power_modelling.datasets.skops_model import (  # noqa: PLC0415
        PREDICTOR_HEADER,
        SkopsModelDataset,
    )

    trusted = trusted_types()
    for path in sorted(models.glob("*.skops")):
        with zipfile.ZipFile(path) as archive:
            if PREDICTOR_HEADER in archive.namelist():
                continue
        dataset = SkopsModelDataset(str(path), trusted, predictor=False)
        dataset.save(dataset.load())


def _compile_project() -> None:
    """Bytecode of the project's own modules, as Python caches it on first import: where it
    may not write it (``PYTHONDONTWRITEBYTECODE``, this development environment) every run
    compiled the modules changed since the last ``make install`` again and the benchmark
    measured that instead of start-up (``make install`` compiles the installed packages)."""
    compileall.compile_dir(ROOT / "src", quiet=1)


def run(repeats: int) -> dict[str, list[float]]:
    _compile_project()
    with tempfile.TemporaryDirectory(prefix="bench_startup_") as tmp:
        project = Path(tmp) / "project"
        _project(project)
        timed_kedro(project, "run", "--pipelines", "prediction")  # creates the MLflow store
        times: dict[str, list[float]] = {"version": [], "prediction": []}
        for _ in range(repeats):
            times["version"].append(timed_kedro(project, "--version"))
            times["prediction"].append(timed_kedro(project, "run", "--pipelines", "prediction"))
    return times


def report(times: dict[str, list[float]]) -> float:
    bare, prediction = (statistics.median(times[k]) for k in ("version", "prediction"))
    ratio = prediction / bare
    print(f"  kedro --version                    {bare:5.2f} s (median of {len(times['version'])})")
    print(
        f"  kedro run --pipelines prediction   {prediction:5.2f} s: {ratio:.2f}x the bare "
        f"command (target <= {TARGET_RATIO}x) {'OK' if ratio <= TARGET_RATIO else 'OVER'}"
    )
    return ratio


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args([] if argv is None else argv)
    return {"prediction_over_bare": report(run(args.repeats))}


if __name__ == "__main__":
    main(sys.argv[1:])
