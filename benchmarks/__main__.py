"""Run every ``benchmarks/bench_*.py`` module's ``main()`` (or those named as arguments), then
print the ratios they measured, all in this one run (absolute times depend on the machine and
its load; ratios measured side by side much less).

``python -m benchmarks [NAME ...] [--quick]``: ``--quick`` runs the study on smaller models.
"""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    names = [arg for arg in argv if not arg.startswith("--")]
    modules = sorted(p.stem for p in Path(__file__).parent.glob("bench_*.py"))
    selected = [m for m in modules if not names or any(n in m for n in names)]
    results = {}
    began = time.perf_counter()
    for module in selected:
        print(f"== {module}", flush=True)
        bench = importlib.import_module(f"benchmarks.{module}")
        arguments = ["--quick"] if quick and module == "bench_study" else []
        results[module] = bench.main(arguments) or {}
    print(f"== summary (measured in this run, {time.perf_counter() - began:.0f} s)")
    for line in summary(results):
        print(f"  {line}")


def summary(results: dict[str, dict]) -> list[str]:
    """One line per goal of the benchmarks that ran."""
    lines = []
    if startup := results.get("bench_startup"):
        lines.append(
            "start-up: kedro run --pipelines prediction = "
            f"{startup['prediction_over_bare']:.2f}x bare kedro --version (goal <= 1.5x)"
        )
    if prediction := results.get("bench_prediction"):
        lines.append(
            f"prediction of 10 000 networks: {prediction['pipeline']:,.0f} networks/s through "
            f"the pipeline's nodes, {prediction['api']:,.0f} through the API (goal >= 500)"
        )
    if mapping := results.get("bench_power_mapping"):
        lines.append(
            "ingestion + power mapping of one 4.5 M-window model vs a pure-Python scan: "
            f"{mapping['end_to_end']:.1f}x end to end (kedro run; goal >= 5x), "
            f"{mapping['in_process']:.1f}x in one process"
        )
    if study := results.get("bench_study"):
        lines.append(
            "study over sequential: "
            + ", ".join(f"{name} {x:.2f}x" for name, x in study.items() if name != "sequential")
        )
    return lines


if __name__ == "__main__":
    main(sys.argv[1:])
