"""``python -m edge_collector ...``"""

from __future__ import annotations

import os
import sys


def _leave_a_core_for_the_sampler(argv: list) -> None:
    """The cpu backend computes with NumPy's BLAS, which by default spins a thread on every
    core: the sampler process then gets no CPU exactly while a layer runs, and its readings
    miss the layer's windows. One core is left free (a device runs layers on its GPU and
    needs nothing of the kind). Must run before NumPy is imported; explicit settings win."""
    if "cpu" not in argv[:2]:
        return
    threads = str(max(1, (os.cpu_count() or 2) - 1))
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, threads)


def run() -> int:
    _leave_a_core_for_the_sampler(sys.argv[1:])
    from edge_collector.cli import main

    return main()


if __name__ == "__main__":
    sys.exit(run())
