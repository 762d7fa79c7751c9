"""Benchmark: parse + map + write one generated Jetson model (30 000 cycles x 150 layers), and
the whole ``kedro run --pipelines ingestion,power_mapping`` against a pure-Python scan like the
reference tool's (``benchmarks/reference_scan.py``) on the same files, in the same run.

Generates the raw files into a temporary folder (not timed), then runs the timed part in a
fresh Python process so that generation does not count towards peak memory: read and parse
the power log and the latency JSON with the ingestion parsers, describe the engine's layers,
map the samples onto the 4.5 M windows, and write the layer-wise parquet through the catalog's
dataset type. Prints the time of each step, windows/s and the peak RSS of that process.

``python -m benchmarks power_mapping`` (or ``make bench``); options:
``python -m benchmarks.bench_power_mapping [--cycles N] [--layers N]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import run_step, timed_kedro

TARGET_SECONDS = 5.0
TARGET_END_TO_END_RATIO = 5.0
TARGET_RSS_MB = 2048.0
MODEL = "generated_net"


def _timed(raw_dir: Path, out_dir: Path) -> dict:
    """Parse, map and write ``raw_dir/MODEL``; returns the step times and the peak RSS."""
    began = time.perf_counter()
    import pandas as pd  # noqa: PLC0415 (import time is reported on its own)
    from kedro_datasets.pandas import ParquetDataset  # noqa: PLC0415

    from power_modelling.core.engines import describe_layers  # noqa: PLC0415
    from power_modelling.core.mapping import map_power_to_windows  # noqa: PLC0415
    from power_modelling.core.raw.latency import parse_layer_latency  # noqa: PLC0415
    from power_modelling.core.raw.plausibility import DEFAULT_RANGES  # noqa: PLC0415
    from power_modelling.core.raw.power_log import parse_power_log  # noqa: PLC0415

    times = {"imports": time.perf_counter() - began}
    peak_mb = {"imports": _peak_rss_mb()}
    folder = raw_dir / MODEL

    def step(name: str, func, *args):
        start = time.perf_counter()
        result = func(*args)
        times[name] = time.perf_counter() - start
        peak_mb[name] = _peak_rss_mb()
        return result

    log = folder / f"{MODEL}_power_log.log"
    latency = folder / "trt_profiling" / "trt_layer_latency.json"
    engine = folder / "trt_profiling" / "trt_engine_info.json"
    ranges = DEFAULT_RANGES["jetson"]  # the range checks run as in the pipeline
    samples, _ = step(
        "parse_power_log",
        lambda: parse_power_log(log.read_bytes(), str(log), 5, ranges.power_uw),
    )
    windows, _ = step(
        "parse_layer_latency",
        lambda: parse_layer_latency(latency.read_bytes(), str(latency), 5, ranges),
    )
    descriptions = step(
        "describe_layers", lambda: describe_layers(json.loads(engine.read_text()), str(engine))
    )
    idle = json.loads((raw_dir / "idling_power.json").read_text())["avg_idle_power"]
    table, report = step("map", map_power_to_windows, samples, windows, descriptions, idle)
    dataset = ParquetDataset(filepath=str(out_dir / "layerwise" / f"{MODEL}.parquet"))
    step("write", dataset.save, table)

    truth = json.loads((raw_dir / "truth.json").read_text())
    mapped = table.groupby("layer_name")["layer_power_including_idle_power_micro_watt"].mean()
    error = ((mapped - pd.Series(truth)) / pd.Series(truth)).abs().max()
    return {
        "times": times,
        "peak_mb": peak_mb,
        "windows": int(report["windows_total"]),
        "samples": int(report["samples_total"]),
        "peak_rss_mb": _peak_rss_mb(),
        "max_layer_power_error": float(error),
    }


def _peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB.

    ``ru_maxrss`` (KiB on Linux) survives ``exec``: a child started by a large parent reports
    at least the parent's peak. So the parent generates nothing itself, and where Linux has
    it the per-address-space ``VmHWM`` is read instead.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _generate(raw_dir: Path, cycles: int, layers: int) -> None:
    from benchmarks.generate_jetson import (  # noqa: PLC0415
        generate_run,
        write_idle_power,
        write_raw_model,
    )

    run = generate_run(cycles, layers)
    write_idle_power(raw_dir, run.idle_power_uw)
    write_raw_model(run, raw_dir, MODEL)
    (raw_dir / "truth.json").write_text(json.dumps(run.layer_power_uw))


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cycles", type=int, default=30_000)
    parser.add_argument("--layers", type=int, default=150)
    parser.add_argument("--timed", nargs=2, type=Path, metavar=("RAW", "OUT"), help="internal")
    parser.add_argument("--generate", type=Path, metavar="RAW", help="internal")
    args = parser.parse_args([] if argv is None else argv)
    if args.timed:
        print(json.dumps(_timed(*args.timed) | {"ru_maxrss_mb": _ru_maxrss_mb()}))
        return {}
    if args.generate:
        _generate(args.generate, args.cycles, args.layers)
        return {}

    with tempfile.TemporaryDirectory(prefix="bench_power_mapping_") as tmp:
        project = _kedro_project(Path(tmp) / "project")
        raw_dir, out_dir = project / "data" / "01_raw" / RAW_DATASET, Path(tmp) / "out"
        began = time.perf_counter()
        sizes_args = ["--cycles", str(args.cycles), "--layers", str(args.layers)]
        _run_module(["--generate", str(raw_dir), *sizes_args])
        sizes = {p.name: p.stat().st_size / 1e6 for p in raw_dir.rglob("*") if p.is_file()}
        print(
            f"generated {args.cycles} cycles x {args.layers} layers in "
            f"{time.perf_counter() - began:.1f} s: "
            + ", ".join(f"{name} {size:.0f} MB" for name, size in sizes.items() if size > 1),
            flush=True,
        )
        result = json.loads(_run_module(["--timed", str(raw_dir), str(out_dir)]))
        _print_result(result)
        reference_s = _reference_scan(raw_dir, Path(tmp) / "reference.csv")
        kedro_s = [_kedro_run(project) for _ in range(3)]
    return _print_ratios(result, reference_s, kedro_s)


RAW_DATASET = "bench_jetson"


def _kedro_project(project: Path) -> Path:
    """A copy of the project's configuration (the installed package runs it), its own
    MLflow store and raw folder, as ``tests/helpers.make_project`` makes."""
    root = Path(__file__).resolve().parents[1]
    (project / "src").mkdir(parents=True)
    shutil.copy(root / "pyproject.toml", project / "pyproject.toml")
    shutil.copytree(root / "conf", project / "conf", ignore=shutil.ignore_patterns("local"))
    (project / "conf" / "local").mkdir()
    return project


def _reference_scan(raw_dir: Path, out_csv: Path) -> float:
    """Wall time of the pure-Python scan (``benchmarks/reference_scan.py``) of the model."""
    began = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "benchmarks.reference_scan", str(raw_dir), MODEL, str(out_csv)],
        check=True,
        capture_output=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    return time.perf_counter() - began


def _kedro_run(project: Path) -> float:
    """Wall time of ``kedro run --pipelines ingestion,power_mapping`` on the model."""
    return timed_kedro(
        project, "run", "--pipelines", "ingestion,power_mapping", "--params",
        f"raw_dataset={RAW_DATASET}",
    )  # fmt: skip


def _print_ratios(result: dict, reference_s: float, kedro_s: list[float]) -> dict[str, float]:
    """The pure-Python scan against the project, in the same run; returns the ratios."""
    in_process = sum(t for name, t in result["times"].items() if name != "imports")
    end_to_end = min(kedro_s[1:])  # a project has its MLflow store: the first run creates it
    ratios = {"end_to_end": reference_s / end_to_end, "in_process": reference_s / in_process}
    print(f"  pure-Python scan like the reference tool's: {reference_s:.1f} s")
    print(
        f"  kedro run --pipelines ingestion,power_mapping: {end_to_end:.1f} s (runs: "
        + ", ".join(f"{s:.1f} s" for s in kedro_s)
        + f"; the first creates the MLflow store): {ratios['end_to_end']:.1f}x faster "
        f"(target >= {TARGET_END_TO_END_RATIO:.0f}x) "
        f"{'OK' if ratios['end_to_end'] >= TARGET_END_TO_END_RATIO else 'UNDER'}"
    )
    print(f"  parse + map + write in one process: {ratios['in_process']:.1f}x faster")
    return ratios


def _ru_maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _run_module(arguments: list[str]) -> str:
    """This module's step ``arguments`` in a fresh process (``benchmarks.run_step``)."""
    return run_step("benchmarks.bench_power_mapping", arguments)


def _print_result(result: dict) -> None:
    times = result["times"]
    end_to_end = sum(t for name, t in times.items() if name != "imports")
    for name, seconds in times.items():
        print(f"  {name:<22}{seconds:7.2f} s   (peak RSS so far {result['peak_mb'][name]:5.0f} MB)")
    print(
        f"  parse + map + write   {end_to_end:7.2f} s  (target <= {TARGET_SECONDS:.0f} s) "
        f"{'OK' if end_to_end <= TARGET_SECONDS else 'OVER'}"
    )
    print(
        f"  windows/s: map {result['windows'] / times['map']:,.0f}; "
        f"end to end {result['windows'] / end_to_end:,.0f} "
        f"({result['windows']:,} windows, {result['samples']:,} samples)"
    )
    print(
        f"  peak RSS {result['peak_rss_mb']:.0f} MB (target <= {TARGET_RSS_MB:.0f} MB) "
        f"{'OK' if result['peak_rss_mb'] <= TARGET_RSS_MB else 'OVER'}; "
        f"ru_maxrss {result['ru_maxrss_mb']:.0f} MB (includes any peak inherited through exec)"
    )
    print(
        f"  largest per-layer power error vs truth: {100 * result['max_layer_power_error']:.2f} %"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
