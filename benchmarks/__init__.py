"""Benchmarks of the project: ``make bench`` (``python -m benchmarks``) runs every bench_*.py."""

from __future__ import annotations

import subprocess
import sys
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
