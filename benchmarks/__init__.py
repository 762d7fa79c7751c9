"""Benchmarks of the project: ``make bench`` (``python -m benchmarks``) runs every bench_*.py."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_step(module: str, arguments: list[str]) -> str:
    """Run ``python -m <module> <arguments>`` in a fresh process (each step measured alone,
    its imports and memory its own); returns its last line of output ("" when none). A failed
    step prints its output and stops the benchmark."""
    done = subprocess.run(
        [sys.executable, "-m", module, *arguments],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    if done.returncode:
        print(done.stdout + done.stderr)
        raise SystemExit(f"benchmark step {arguments[:2]} failed (exit {done.returncode})")
    lines = done.stdout.strip().splitlines()
    return lines[-1] if lines else ""


def timed_kedro(project: Path, *arguments: str) -> float:
    """Wall seconds of ``kedro <arguments>`` run in ``project`` with its own sqlite MLflow
    store and no telemetry; a failed command prints its output's tail and stops the
    benchmark."""
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}",
        "KEDRO_DISABLE_TELEMETRY": "1",
        "DO_NOT_TRACK": "true",
    }
    command = [str(Path(sys.executable).with_name("kedro")), *arguments]
    began = time.perf_counter()
    done = subprocess.run(
        command, cwd=project, env=env, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - began
    if done.returncode:
        print(done.stdout[-3000:] + done.stderr[-3000:])
        raise SystemExit(f"kedro {' '.join(arguments)} failed (exit {done.returncode})")
    return seconds
