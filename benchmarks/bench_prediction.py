"""Benchmark: predicting 10 000 networks, through the pipeline's nodes and the Python API.

The networks are the bundled engines with their widths and input sizes varied
(``benchmarks/generate_networks.py``), written as engine JSON files to a temporary folder
(not timed). Each path then runs in a fresh Python process (so that its peak memory is its
own), with the models already loaded:

- **pipeline**: the ``prediction`` pipeline's node functions, with the catalog's dataset
  types: ``prediction_files`` (a ``PartitionedDataset`` of raw bytes) → ``read_prediction_
  networks`` → the inference node ``predict_layers`` → ``report_predictions`` → saving
  ``predictions.parquet``, ``prediction_summary.csv`` and the capped per-network CSVs;
- **API**: ``core.networks.describe_networks(paths)`` → ``core.predictor.predict_layers`` →
  ``summarise_networks``.

Models: the trained ones in ``data/06_models/<raw_dataset>/`` when there are, else proxies of
the same kind (the log-linear trend + extra trees the bundled dataset selects), fitted on
synthetic targets for the bundled engines' layers: trees of the size real ones have.

``python -m benchmarks prediction`` (or ``make bench``); ``python -m
benchmarks.bench_prediction [--networks N] [--models DIR]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import yaml

from benchmarks import run_step

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODELS = ROOT / "data" / "06_models" / "h200_isolated_v1"
TARGET_NETWORKS_PER_S = 500.0


def trusted_types() -> list[str]:
    """The trusted skops types of the model files: the catalog's own list, read from it."""
    catalog = yaml.safe_load((ROOT / "conf" / "base" / "catalog_modelling.yml").read_text())
    return list(catalog["_skops_trusted_types"])


IDLE_POWER = {"avg_idle_power_uw": 121e6}


# ----------------------------------------------------------------------------- models
def proxy_models() -> dict:
    """Six fitted estimators of the kind training selects on the bundled data (trend + extra
    trees), fitted on the bundled engines' layers with synthetic power and runtime."""
    import numpy as np  # noqa: PLC0415
    import yaml  # noqa: PLC0415

    from benchmarks.generate_networks import base_engines  # noqa: PLC0415
    from power_modelling.core.engines import describe_layers  # noqa: PLC0415
    from power_modelling.core.estimators import build_estimator  # noqa: PLC0415
    from power_modelling.core.features import build_features  # noqa: PLC0415
    from power_modelling.core.layers import LAYER_CLASSES, model_key  # noqa: PLC0415

    params = yaml.safe_load((ROOT / "conf" / "base" / "parameters_modelling.yml").read_text())
    import pandas as pd  # noqa: PLC0415

    layers = pd.concat(
        [describe_layers(engine, name) for name, engine in base_engines().items()],
        ignore_index=True,
    )
    features = build_features(layers)
    rng = np.random.default_rng(0)
    models = {}
    for layer_class in LAYER_CLASSES:
        rows = features[features["layer_class"] == layer_class]
        scale = np.log1p(rows["flops"].to_numpy()) / np.log1p(rows["flops"].max())
        targets = {
            "power": 5.0 + 60.0 * scale * rng.uniform(0.8, 1.2, len(rows)),
            "runtime": 1e-3 + rows["flops"].to_numpy() / 2e11 * rng.uniform(0.8, 1.2, len(rows)),
        }
        for target, y in targets.items():
            spec = params[layer_class][target]["candidates"]["trend_extra_trees"]
            estimator = build_estimator(spec, target_shift=0.0)
            models[model_key(layer_class, target)] = estimator.fit(rows, y)
    return models


def load_models(folder: Path | None) -> tuple[dict, str]:
    """The six models of ``folder`` (skops files) if it holds them, else proxies."""
    from power_modelling.core.layers import LAYER_CLASSES, TARGETS, model_key  # noqa: PLC0415
    from power_modelling.datasets import SkopsModelDataset  # noqa: PLC0415

    keys = [model_key(c, t) for c in LAYER_CLASSES for t in TARGETS]
    if folder and all((folder / f"{key}.skops").is_file() for key in keys):
        files = {key: str(folder / f"{key}.skops") for key in keys}
        models = {
            key: SkopsModelDataset(path, trusted_types()).load() for key, path in files.items()
        }
        return models, f"trained models of {folder}"
    return proxy_models(), "proxy models (trend + extra trees, fitted on synthetic targets)"


# ----------------------------------------------------------------------------- timed paths
def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource  # noqa: PLC0415

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _pipeline(networks_dir: Path, out_dir: Path, models: dict) -> dict:
    """The prediction pipeline's nodes and datasets, as ``kedro run`` chains them."""
    from kedro_datasets.pandas import CSVDataset, ParquetDataset  # noqa: PLC0415
    from kedro_datasets.partitions import PartitionedDataset  # noqa: PLC0415

    from power_modelling.pipelines.inference.nodes import predict_layers  # noqa: PLC0415
    from power_modelling.pipelines.prediction.nodes import (  # noqa: PLC0415
        read_prediction_networks,
        report_predictions,
    )

    # the device_idle_power record carries the models' device and precisions
    idle_power = {**IDLE_POWER, "device": {"name": "NVIDIA H200"}, "precisions": ["FP16"]}
    options = {"models": "bench", "max_network_csvs": 100}
    times = {}
    began = time.perf_counter()
    files = PartitionedDataset(
        path=str(networks_dir), dataset="power_modelling.datasets.RawBytesDataset"
    ).load()
    layers, networks = read_prediction_networks(files, networks_dir.name, options)
    times["read"] = time.perf_counter() - began
    start = time.perf_counter()
    predictions = predict_layers(layers, IDLE_POWER, **models)
    times["predict"] = time.perf_counter() - start
    start = time.perf_counter()
    tables, table, summary, _ = report_predictions(predictions, networks, idle_power, options)
    times["report"] = time.perf_counter() - start
    start = time.perf_counter()
    ParquetDataset(filepath=str(out_dir / "predictions.parquet")).save(table)
    CSVDataset(filepath=str(out_dir / "prediction_summary.csv"), save_args={"index": False}).save(
        summary
    )
    PartitionedDataset(
        path=str(out_dir / "predictions"),
        dataset={"type": "pandas.CSVDataset", "save_args": {"index": False}},
        filename_suffix=".csv",
    ).save(tables)
    times["write"] = time.perf_counter() - start
    times["total"] = time.perf_counter() - began
    return {"times": times, "networks": len(summary), "layers": len(table), "csvs": len(tables)}


def _api(networks_dir: Path, models: dict) -> dict:
    """The Python API: many networks in one call."""
    from power_modelling.core.networks import describe_networks  # noqa: PLC0415
    from power_modelling.core.predictor import (  # noqa: PLC0415
        predict_layers,
        summarise_networks,
    )

    times = {}
    began = time.perf_counter()
    layers, _, errors = describe_networks(sorted(networks_dir.glob("*.json")))
    times["read"] = time.perf_counter() - began
    start = time.perf_counter()
    predictions = predict_layers(layers, models, idle_power_w=121.0)
    times["predict"] = time.perf_counter() - start
    start = time.perf_counter()
    summary = summarise_networks(predictions)
    times["report"] = time.perf_counter() - start
    times["total"] = time.perf_counter() - began
    return {"times": times, "networks": len(summary), "layers": len(predictions)}


def _timed(path: str, networks_dir: Path, out_dir: Path, models_dir: Path | None) -> dict:
    import logging  # noqa: PLC0415

    logging.basicConfig(level=logging.WARNING)  # the nodes' info lines are not the point here
    start = time.perf_counter()
    models, which = load_models(models_dir)
    load_s = time.perf_counter() - start
    result = (
        _pipeline(networks_dir, out_dir, models)
        if path == "pipeline"
        else _api(networks_dir, models)
    )
    return result | {"models": which, "models_s": load_s, "peak_rss_mb": _peak_rss_mb()}


# ----------------------------------------------------------------------------- driver
def run(networks: int, models_dir: Path | None) -> dict[str, dict]:
    """Generate ``networks`` engine files, time both paths in fresh processes."""
    from benchmarks.generate_networks import generate_files  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="bench_prediction_") as tmp:
        networks_dir = Path(tmp) / "networks"
        networks_dir.mkdir()
        began = time.perf_counter()
        size = 0
        for name, data in generate_files(networks).items():
            (networks_dir / name).write_bytes(data)
            size += len(data)
        print(
            f"generated {networks:,} networks ({size / 1e6:.0f} MB of engine JSON) in "
            f"{time.perf_counter() - began:.1f} s",
            flush=True,
        )
        results = {}
        for path in ("pipeline", "api"):
            arguments = ["--timed", path, str(networks_dir), str(Path(tmp) / path)]
            if models_dir:
                arguments += ["--models", str(models_dir)]
            results[path] = json.loads(_run_module(arguments))
    return results


def _run_module(arguments: list[str]) -> str:
    """This module's step ``arguments`` in a fresh process (``benchmarks.run_step``)."""
    return run_step("benchmarks.bench_prediction", arguments)


def report(results: dict[str, dict]) -> dict[str, float]:
    """Print both paths; returns their networks/s."""
    rates = {}
    for path, result in results.items():
        times = result["times"]
        rate = result["networks"] / times["total"]
        rates[path] = rate
        steps = ", ".join(f"{k} {v:.2f} s" for k, v in times.items() if k != "total")
        print(
            f"  {path:<9}{result['networks']:,} networks ({result['layers']:,} layers) in "
            f"{times['total']:.2f} s: {rate:,.0f} networks/s (target >= "
            f"{TARGET_NETWORKS_PER_S:.0f}) {'OK' if rate >= TARGET_NETWORKS_PER_S else 'UNDER'}"
        )
        print(f"           {steps}; peak RSS {result['peak_rss_mb']:.0f} MB")
    first = next(iter(results.values()))
    print(f"  models: {first['models']} (loaded in {first['models_s']:.1f} s, not counted)")
    if "csvs" in results.get("pipeline", {}):
        print(f"  per-network CSVs written: {results['pipeline']['csvs']} (max_network_csvs)")
    return rates


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--networks", type=int, default=10_000)
    parser.add_argument("--models", type=Path, default=DEFAULT_MODELS)
    parser.add_argument("--timed", nargs=3, metavar=("PATH", "NETWORKS", "OUT"), help="internal")
    args = parser.parse_args([] if argv is None else argv)
    if args.timed:
        path, networks_dir, out_dir = args.timed
        print(json.dumps(_timed(path, Path(networks_dir), Path(out_dir), args.models)))
        return {}
    return report(run(args.networks, args.models))


if __name__ == "__main__":
    main(sys.argv[1:])
