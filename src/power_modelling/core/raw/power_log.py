"""``<model>_power_log.log`` → power samples, parsed over the raw bytes with NumPy.

Line shapes (docs/raw-data-format.md): ``timestamp,voltage_mV,current_mA`` (INA3221, power =
mV * mA µW) or ``timestamp,power_mW`` (NVML, power = mW * 1000 µW). One file holds one shape:
the shape of most valid lines wins, lines of the other shape count as malformed (a Jetson
line cut after the voltage must not pass for an NVML reading).

Lines that parse but cannot be true are dropped too, counted apart: a power outside the
plausible range (``plausibility.PlausibleRanges.power_uw``: negative, absurdly large), and a
timestamp an earlier line already has (the first kept: a sample must not weigh twice in a
window's mean). Every line is counted once: ``lines_total = valid + blank + malformed +
out_of_range + duplicate_timestamps``.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from power_modelling.core.pages import on_ordinary_pages
from power_modelling.core.raw.plausibility import Range, outside, repeats_of_earlier
from power_modelling.core.raw.spans import parse_float_spans, strip_spans
from power_modelling.core.raw.timestamps import as_datetime64, decode_timestamp_spans

logger = logging.getLogger(__name__)

SHAPE_JETSON = "mV,mA"
SHAPE_NVML = "mW"
DIALECT_OF_SHAPE = {SHAPE_JETSON: "jetson", SHAPE_NVML: "nvml"}


@on_ordinary_pages
def parse_power_log(
    data: bytes, source: str, max_reported_lines: int = 5, power_range_uw: Range | None = None
) -> tuple[pd.DataFrame, dict]:
    """Parse a power log → (``timestamp`` datetime64[ns], ``power_uw`` float64 in file order;
    report). Blank and malformed lines (a truncated last line included), readings outside
    ``power_range_uw`` (inclusive ``(min, max)`` µW; ``None``: no range check) and repeated
    timestamps are skipped and counted; the report lists the first ``max_reported_lines``
    line numbers (1-based) of each kind."""
    buf = np.frombuffer(data, dtype=np.uint8)
    starts, ends = _line_spans(buf)
    commas = np.flatnonzero(buf == ord(","))
    first_comma = np.searchsorted(commas, starts)
    n_commas = np.searchsorted(commas, ends) - first_comma

    n_lines = len(starts)
    nanoseconds = np.zeros(n_lines, dtype=np.int64)
    power = np.full(n_lines, np.nan)
    ok = np.zeros(n_lines, dtype=bool)
    three_fields = n_commas == 2
    for n_fields in (2, 3):
        rows = np.flatnonzero(n_commas == n_fields - 1)
        if rows.size == 0:
            continue
        comma1 = commas[first_comma[rows]]
        field_end = commas[first_comma[rows] + 1] if n_fields == 3 else ends[rows]
        nanoseconds[rows], ts_ok = decode_timestamp_spans(data, starts[rows], comma1)
        first, first_ok = parse_float_spans(data, comma1 + 1, field_end)
        if n_fields == 3:
            second, second_ok = parse_float_spans(data, field_end + 1, ends[rows])
            power[rows], ok[rows] = first * second, ts_ok & first_ok & second_ok
        else:
            power[rows], ok[rows] = first * 1000.0, ts_ok & first_ok

    n_three, n_two = np.count_nonzero(ok & three_fields), np.count_nonzero(ok & ~three_fields)
    shape = None if n_three + n_two == 0 else SHAPE_JETSON if n_three >= n_two else SHAPE_NVML
    other_shape = ok & (three_fields != (shape == SHAPE_JETSON))
    ok &= ~other_shape

    blank = np.zeros(n_lines, dtype=bool)
    no_comma = np.flatnonzero(n_commas == 0)
    stripped_start, stripped_end = strip_spans(buf, starts[no_comma], ends[no_comma])
    blank[no_comma] = stripped_start == stripped_end
    malformed = ~ok & ~blank
    out_of_range = ok & outside(power, power_range_uw)
    ok &= ~out_of_range
    kept = np.flatnonzero(ok)
    duplicate = kept[repeats_of_earlier(nanoseconds[kept])]
    ok[duplicate] = False
    out_rows = np.flatnonzero(out_of_range)
    first_out = out_rows[:max_reported_lines]

    timestamps = as_datetime64(nanoseconds[ok], ok[ok])
    frame = pd.DataFrame({"timestamp": timestamps, "power_uw": power[ok]})
    unterminated = len(buf) > 0 and buf[-1] != ord("\n")
    report = {
        "source": source,
        "shape": shape,
        "lines_total": int(n_lines),
        "valid": int(ok.sum()),
        "blank": int(blank.sum()),
        "malformed": int(malformed.sum()),
        "other_shape_lines": int(other_shape.sum()),
        "truncated_last_line": bool(unterminated and n_lines and malformed[-1]),
        "first_malformed_lines": (np.flatnonzero(malformed)[:max_reported_lines] + 1).tolist(),
        "first_blank_lines": (np.flatnonzero(blank)[:max_reported_lines] + 1).tolist(),
        "plausible_power_uw": None if power_range_uw is None else list(power_range_uw),
        "out_of_range": int(out_of_range.sum()),
        "first_out_of_range_lines": (first_out + 1).tolist(),
        "first_out_of_range_values_uw": power[first_out].tolist(),
        "duplicate_timestamps": int(duplicate.size),
        "first_duplicate_timestamp_lines": (duplicate[:max_reported_lines] + 1).tolist(),
        "out_of_order_samples": int(np.count_nonzero(np.diff(timestamps) < np.timedelta64(0))),
    }
    if report["malformed"] or report["blank"]:
        logger.warning(
            "%s: skipped %d malformed line(s) (first: %s) and %d blank line(s) of %d",
            source,
            report["malformed"],
            report["first_malformed_lines"],
            report["blank"],
            n_lines,
        )
    if report["out_of_range"]:
        logger.warning(
            "%s: dropped %d reading(s) outside the plausible range [%g, %g] µW (first: line %d,"
            " %g µW)",
            source,
            report["out_of_range"],
            *power_range_uw,
            out_rows[0] + 1,
            power[out_rows[0]],
        )
    if report["duplicate_timestamps"]:
        logger.warning(
            "%s: dropped %d reading(s) repeating an earlier line's timestamp (first: line %d)",
            source,
            report["duplicate_timestamps"],
            duplicate[0] + 1,
        )
    return frame, report


def _line_spans(buf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start/end offsets of every line (end excludes ``\\n`` and a trailing ``\\r``); no
    phantom empty line after a final newline."""
    newlines = np.flatnonzero(buf == ord("\n"))
    starts = np.concatenate(([0], newlines + 1))
    ends = np.concatenate((newlines, [len(buf)]))
    if starts[-1] == len(buf):
        starts, ends = starts[:-1], ends[:-1]
    if len(buf):
        ends = ends - ((ends > starts) & (buf[np.maximum(ends - 1, 0)] == ord("\r")))
    return starts, ends
