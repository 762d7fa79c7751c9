"""Benchmark: a study of many models, ingested and power-mapped one after another, on every
core, and on a local Dask cluster.

Generates ``--models`` Jetson-style models of ``--cycles`` x ``--layers`` windows each
(``benchmarks/generate_jetson.py``; default 8 models of 1 M windows), then runs the
ingestion and power-mapping nodes with the catalog's dataset types (partitions saved one at a
time, as ``kedro run --pipelines ingestion,power_mapping`` does) once per scheduler, each in a
fresh process: ``sequential``, ``processes`` (one worker per core; started even below
``MIN_PROCESS_WORK_S``, which keeps small studies in the Kedro process) and a ``LocalCluster`` of
one single-threaded worker process per core (started before the clock, like a cluster that is
already running). Prints the time of each, the speed-up over sequential, the Kedro process's
peak memory, and whether all outputs are identical.

``python -m benchmarks study`` (or ``make bench``); ``python -m benchmarks.bench_study
[--models N] [--cycles N] [--layers N] [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import run_step

ROOT = Path(__file__).resolve().parents[1]
SCHEDULERS = ("sequential", "processes", "dask-local")
INGESTED = ("layer_windows", "power_samples", "layer_descriptions", "run_metadata", "reports")


def run_study(raw: Path, out: Path, parallel: dict) -> dict[str, float]:
    """Ingestion + power mapping of every model of ``raw`` into ``out``; step times."""
    from kedro_datasets.json import JSONDataset  # noqa: PLC0415
    from kedro_datasets.partitions import PartitionedDataset  # noqa: PLC0415

    from power_modelling.pipelines.ingestion.nodes import (  # noqa: PLC0415
        build_report,
        ingest_models,
        read_idle_power,
    )
    from power_modelling.pipelines.power_mapping.nodes import (  # noqa: PLC0415
        map_power,
        report_power_mapping,
    )

    def partitions(name: str, json_like: bool = False) -> PartitionedDataset:
        dataset = "json.JSONDataset" if json_like else "pandas.ParquetDataset"
        suffix = ".json" if json_like else ".parquet"
        return PartitionedDataset(path=str(out / name), dataset=dataset, filename_suffix=suffix)

    times = {}
    began = time.perf_counter()
    raw_files = PartitionedDataset(
        path=str(raw), dataset="power_modelling.datasets.RawBytesDataset"
    ).load()
    params = {"max_reported_lines": 5, "max_reported_names": 50}
    outputs = ingest_models(raw_files, raw.name, params, parallel)
    for name, tables in zip(INGESTED, outputs, strict=True):
        partitions(name, json_like=name in ("run_metadata", "reports")).save(tables)
    idle = read_idle_power(raw_files, raw.name)
    JSONDataset(filepath=str(out / "ingestion.json")).save(
        build_report(partitions("reports", json_like=True).load(), idle)
    )
    times["ingestion"] = time.perf_counter() - began
    start = time.perf_counter()
    inputs = [partitions(name).load() for name in ("power_samples", "layer_windows")]
    tables, reports = map_power(
        *inputs,
        partitions("layer_descriptions").load(),
        idle,
        {"min_samples_per_layer": 10},
        parallel,
    )
    partitions("layerwise").save(tables)
    JSONDataset(filepath=str(out / "power_mapping.json")).save(report_power_mapping(reports))
    times["power_mapping"] = time.perf_counter() - start
    times["total"] = time.perf_counter() - began
    return times


def _timed(scheduler: str, raw: Path, out: Path) -> dict:
    import logging  # noqa: PLC0415

    logging.basicConfig(level=logging.WARNING)
    cluster = None
    workers = os.cpu_count() or 1
    if scheduler == "dask-local":
        from distributed import LocalCluster  # noqa: PLC0415

        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
        parallel = {"scheduler": cluster.scheduler_address}
    else:
        parallel = {"scheduler": scheduler}
    if scheduler == "processes":  # what the workers give, even below the work threshold
        from power_modelling import parallel as parallel_module  # noqa: PLC0415

        parallel_module.MIN_PROCESS_WORK_S = 0.0
    try:
        times = run_study(raw, out, parallel)
    finally:
        if cluster is not None:
            cluster.close()
    return {"times": times, "peak_rss_mb": _peak_rss_mb(), "workers": workers}


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource  # noqa: PLC0415

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _generate(raw: Path, models: int, cycles: int, layers: int) -> None:
    from benchmarks.generate_jetson import (  # noqa: PLC0415
        generate_run,
        write_idle_power,
        write_raw_model,
    )

    write_idle_power(raw)
    for seed in range(models):
        write_raw_model(generate_run(cycles, layers, seed=seed), raw, f"model_{seed:02d}")


def _identical(first: Path, second: Path) -> bool:
    import pandas as pd  # noqa: PLC0415

    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    if files != sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file()):
        return False
    for path in files:
        if path.suffix == ".parquet":
            if not pd.read_parquet(first / path).equals(pd.read_parquet(second / path)):
                return False
        elif json.loads((first / path).read_text()) != json.loads((second / path).read_text()):
            return False
    return True


def run(models: int, cycles: int, layers: int) -> dict[str, dict]:
    with tempfile.TemporaryDirectory(prefix="bench_study_") as tmp:
        raw = Path(tmp) / "study"
        began = time.perf_counter()
        _run_module(["--generate", str(raw), *_sizes(models, cycles, layers)])
        size = sum(p.stat().st_size for p in raw.rglob("*") if p.is_file()) / 1e6
        print(
            f"generated {models} models of {cycles:,} cycles x {layers} layers "
            f"({cycles * layers / 1e6:g} M windows each, {size:.0f} MB) in "
            f"{time.perf_counter() - began:.1f} s",
            flush=True,
        )
        results = {}
        for scheduler in SCHEDULERS:
            out = Path(tmp) / scheduler
            results[scheduler] = json.loads(_run_module(["--timed", scheduler, str(raw), str(out)]))
        same = all(_identical(Path(tmp) / SCHEDULERS[0], Path(tmp) / s) for s in SCHEDULERS[1:])
    for result in results.values():
        result["identical"] = same
    return results


def _sizes(models: int, cycles: int, layers: int) -> list[str]:
    return ["--models", str(models), "--cycles", str(cycles), "--layers", str(layers)]


def _run_module(arguments: list[str]) -> str:
    """This module's step ``arguments`` in a fresh process (``benchmarks.run_step``)."""
    return run_step("benchmarks.bench_study", arguments)


def report(results: dict[str, dict]) -> dict[str, float]:
    """Print every scheduler's times; returns the speed-ups over sequential."""
    baseline = results["sequential"]["times"]["total"]
    speedups = {}
    for scheduler, result in results.items():
        times = result["times"]
        speedups[scheduler] = baseline / times["total"]
        print(
            f"  {scheduler:<11} {times['total']:6.2f} s (ingestion {times['ingestion']:.2f} s, "
            f"power mapping {times['power_mapping']:.2f} s): {speedups[scheduler]:.2f}x; "
            f"peak RSS of the Kedro process {result['peak_rss_mb']:.0f} MB"
        )
    first = next(iter(results.values()))
    print(
        f"  {first['workers']} cores; outputs of all schedulers identical: "
        f"{'yes' if first['identical'] else 'NO'}"
    )
    return speedups


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=int, default=8)
    parser.add_argument("--cycles", type=int, default=10_000)
    parser.add_argument("--layers", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="4 models of 250 k windows")
    parser.add_argument("--timed", nargs=3, metavar=("SCHEDULER", "RAW", "OUT"), help="internal")
    parser.add_argument("--generate", type=Path, metavar="RAW", help="internal")
    args = parser.parse_args([] if argv is None else argv)
    if args.quick:
        args.models, args.cycles, args.layers = 4, 2_500, 100
    if args.generate:
        _generate(args.generate, args.models, args.cycles, args.layers)
        return {}
    if args.timed:
        scheduler, raw, out = args.timed
        print(json.dumps(_timed(scheduler, Path(raw), Path(out))))
        return {}
    return report(run(args.models, args.cycles, args.layers))


if __name__ == "__main__":
    main(sys.argv[1:])
