"""Run every ``benchmarks/bench_*.py`` module's ``main()`` (or those named as arguments)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path


def main(names: list[str]) -> None:
    modules = sorted(p.stem for p in Path(__file__).parent.glob("bench_*.py"))
    selected = [m for m in modules if not names or any(n in m for n in names)]
    for module in selected:
        print(f"== {module}", flush=True)
        importlib.import_module(f"benchmarks.{module}").main()


if __name__ == "__main__":
    main(sys.argv[1:])
