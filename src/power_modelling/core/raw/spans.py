"""Vectorised work on byte spans ``data[starts[i]:ends[i]]`` of a raw file.

The parsers locate fields by position (NumPy over the raw bytes); these helpers then copy,
strip and convert all spans at once. Copying uses Arrow's ``take`` over a zero-copy view of
the file, and numbers are converted by Arrow's C parser (exact, correctly rounded), which
is several times faster than ``np.array(..., "S").astype(float)``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: Threads that scan one large file (NumPy releases the GIL); 1 in a worker process that
#: already has a core to itself (``power_modelling.parallel``).
SCAN_THREADS = 2
WHITESPACE = np.zeros(256, dtype=bool)
WHITESPACE[list(b" \t\r\n")] = True
NUMBER_PATTERN = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"


def byte_positions(buf: np.ndarray, byte: int, block: int = 1 << 23) -> np.ndarray:
    """Sorted positions of ``byte`` in ``buf``; ``int32`` when ``buf`` is under 2 GiB.

    Scanned in blocks by two threads (NumPy releases the GIL), so no full-size mask is
    ever allocated.
    """
    dtype = np.int32 if len(buf) < 2**30 else np.int64  # room for offsets added later

    def scan(start: int) -> np.ndarray:
        found = np.flatnonzero(buf[start : start + block] == byte).astype(dtype)
        found += start
        return found

    starts = range(0, len(buf), block)
    if len(starts) < 2 or SCAN_THREADS < 2:
        return np.concatenate([scan(start) for start in starts] or [np.zeros(0, dtype)])
    with ThreadPoolExecutor(SCAN_THREADS) as pool:
        return np.concatenate(list(pool.map(scan, starts)))


def span_array(data: bytes, starts: np.ndarray, ends: np.ndarray) -> pa.LargeBinaryArray:
    """The spans as an Arrow binary array (one copy, in C).

    The file is viewed, without copying, as alternating "gap" and "span" values
    (offsets ``0, s0, e0, s1, e1, ..., len``); taking the odd values packs the spans.
    Spans must be in file order and must not overlap.
    """
    count = len(starts)
    offsets = np.empty(2 * count + 2, dtype=np.int64)
    offsets[0], offsets[-1] = 0, len(data)
    offsets[1:-1:2], offsets[2:-1:2] = starts, ends
    if count and (
        starts[0] < 0
        or ends[-1] > len(data)
        or np.any(ends < starts)
        or np.any(starts[1:] < ends[:-1])
    ):
        raise ValueError("spans must be in file order, non-overlapping and inside the data")
    view = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), 2 * count + 1, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )
    return view.take(pa.array(np.arange(1, 2 * count, 2, dtype=np.int64)))


def contiguous_spans(
    data: bytes, starts: np.ndarray, ends: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The spans packed back to back → (``uint8`` bytes, ``int64`` offsets of length n + 1)."""
    packed = span_array(data, starts, ends)
    _, offset_buffer, value_buffer = packed.buffers()
    offsets = np.frombuffer(offset_buffer, dtype=np.int64, count=len(packed) + 1)
    offsets = offsets - offsets[0]
    if value_buffer is None:
        return np.zeros(0, dtype=np.uint8), offsets
    return np.frombuffer(value_buffer, dtype=np.uint8, count=int(offsets[-1])), offsets


def strip_spans(
    buf: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Shrink every span past its leading and trailing whitespace (one pass per byte of the
    widest margin, each only over the spans still shrinking)."""
    starts, ends = starts.copy(), ends.copy()
    active = _whitespace_at(buf, starts, starts < ends)
    while active.size:
        starts[active] += 1
        active = active[starts[active] < ends[active]]
        active = active[WHITESPACE[buf[starts[active]]]]
    active = _whitespace_at(buf, ends - 1, starts < ends)
    while active.size:
        ends[active] -= 1
        active = active[starts[active] < ends[active]]
        active = active[WHITESPACE[buf[ends[active] - 1]]]
    return starts, ends


def _whitespace_at(buf: np.ndarray, positions: np.ndarray, where: np.ndarray) -> np.ndarray:
    """Indices i where ``where[i]`` and ``buf[positions[i]]`` is whitespace (a cheap
    comparison over all, the table look-up only over the few candidates)."""
    chars = buf[np.where(where, positions, 0)]
    candidates = np.flatnonzero((chars <= ord(" ")) & where)
    return candidates[WHITESPACE[chars[candidates]]]


def cast_float_spans(data: bytes, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Spans that all hold numbers → ``float64``; raises ``pa.ArrowInvalid`` on any other."""
    return pc.cast(span_array(data, starts, ends), pa.float64()).to_numpy(zero_copy_only=False)


def parse_float_spans(
    data: bytes, starts: np.ndarray, ends: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Spans → (``float64`` values, valid mask): a span is valid when it is exactly a finite
    decimal number (no spaces, no ``nan``/``inf``); invalid spans get NaN."""
    tokens = span_array(data, starts, ends)
    try:
        values = pc.cast(tokens, pa.float64()).to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid:  # some garbage: find it, convert the rest
        numeric = pc.match_substring_regex(tokens, NUMBER_PATTERN)
        valid = numeric.to_numpy(zero_copy_only=False)
        values = np.full(len(tokens), np.nan)
        values[valid] = pc.cast(tokens.filter(numeric), pa.float64()).to_numpy(zero_copy_only=False)
    valid = np.isfinite(values)
    return np.where(valid, values, np.nan), valid
