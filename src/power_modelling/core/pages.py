"""Large NumPy arrays on ordinary memory pages while the raw files are parsed and mapped.

NumPy asks Linux for transparent huge pages for every array of 4 MB or more
(``madvise(MADV_HUGEPAGE)``). Where the kernel defragments memory to serve such a request
(``/sys/kernel/mm/transparent_hugepage/defrag`` = ``madvise``, a common default), each
first touch of a new array can stall in the kernel: on the 2-core development machine, parsing
and mapping one 4.5 M-window model spent 1.3-2.2 s in the kernel with huge pages and 0.5 s
without (wall 2.8-3.6 s → 2.0 s, ``benchmarks/bench_power_mapping.py``). These arrays live
for a fraction of a second, so huge pages buy nothing back. ``NUMPY_MADVISE_HUGEPAGE=0`` does
the same for a whole process, but only when set before NumPy is imported.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

from numpy._core import multiarray

P = ParamSpec("P")
T = TypeVar("T")

_lock = threading.Lock()
_depth = 0
_previous = False


@contextmanager
def ordinary_pages() -> Iterator[None]:
    """No huge-page requests for the arrays allocated inside (nested and threaded uses
    restore NumPy's setting when the last one ends)."""
    global _depth, _previous  # noqa: PLW0603 (one process-wide NumPy setting)
    setter = getattr(multiarray, "_set_madvise_hugepage", None)
    if setter is None:  # pragma: no cover (a NumPy without the switch)
        yield
        return
    with _lock:
        if _depth == 0:
            _previous = setter(False)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                setter(_previous)


def on_ordinary_pages(func: Callable[P, T]) -> Callable[P, T]:
    """``func`` run inside ``ordinary_pages()``."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        with ordinary_pages():
            return func(*args, **kwargs)

    return wrapper
