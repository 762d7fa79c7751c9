"""Vectorised decoding of ``%Y%m%d-%H:%M:%S.%f`` timestamps (fraction of 1 to 6 digits).

The format has fixed positions (``YYYYMMDD-HH:MM:SS.ffffff``), so a timestamp is decoded by
integer arithmetic on its bytes, column by column over all timestamps at once: no format
parser, no Python object per value. Invalid timestamps are flagged (``NaT`` / ``valid=False``),
never raised.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from power_modelling.pipelines.ingestion.spans import contiguous_spans

MIN_LENGTH = 19  # "YYYYMMDD-HH:MM:SS.f"
MAX_LENGTH = 24  # "YYYYMMDD-HH:MM:SS.ffffff"
_SEPARATORS = {8: ord("-"), 11: ord(":"), 14: ord(":"), 17: ord(".")}
_NS_PER_SECOND = 1_000_000_000
# datetime64[ns] covers 1677-09-21 .. 2262-04-11; whole years inside that range are accepted.
_MIN_YEAR, _MAX_YEAR = 1678, 2261
_DAYS_IN_MONTH = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)
_ZERO = ord("0")
_TIME_COLUMNS = [9, 10, 12, 13, 15, 16]


def parse_timestamps(values: np.ndarray | Sequence[str | bytes]) -> np.ndarray:
    """Decode timestamps to ``datetime64[ns]``; invalid ones become ``NaT``.

    ``values``: a fixed-width bytes array (``S`` dtype, e.g. from ``np.array(ts, "S24")``) or a
    sequence of ``str``/``bytes``. Anything that is not exactly ``%Y%m%d-%H:%M:%S.%f`` with a
    1-6 digit fraction and a real calendar date/time (no surrounding spaces) is ``NaT``.
    """
    fixed = _as_fixed_bytes(values)
    width = fixed.dtype.itemsize
    if len(fixed) == 0 or width == 0:
        return np.full(len(fixed), np.datetime64("NaT"), dtype="datetime64[ns]")
    matrix = fixed.view(np.uint8).reshape(len(fixed), width)
    if width < MAX_LENGTH:
        matrix = np.pad(matrix, ((0, 0), (0, MAX_LENGTH - width)))
    lengths = np.count_nonzero(matrix, axis=1)  # ``S`` values are NUL-padded
    nanoseconds, valid = decode_timestamp_matrix(matrix, lengths)
    return as_datetime64(nanoseconds, valid)


def as_datetime64(nanoseconds: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Nanoseconds since the epoch → ``datetime64[ns]``, ``NaT`` where not ``valid``."""
    out = np.where(valid, nanoseconds, np.iinfo(np.int64).min)
    return out.view("datetime64[ns]")


def decode_timestamp_spans(
    data: bytes, starts: np.ndarray, ends: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Decode the timestamps at ``data[starts[i]:ends[i]]`` → (ns since epoch, valid mask)."""
    lengths = ends - starts
    plausible = (lengths >= MIN_LENGTH) & (lengths <= MAX_LENGTH)
    nanoseconds = np.zeros(len(starts), dtype=np.int64)
    valid = np.zeros(len(starts), dtype=bool)
    if not plausible.any():
        return nanoseconds, valid
    rows = np.flatnonzero(plausible) if not plausible.all() else slice(None)
    packed, offsets = contiguous_spans(data, starts[rows], ends[rows])
    row_lengths = lengths[rows]
    if np.all(row_lengths == row_lengths[0]):
        # Common case (constant fraction width): the packed bytes form a matrix, zero-copy.
        matrix = packed.reshape(-1, int(row_lengths[0]))
    else:
        matrix = _pad_rows(packed, offsets, row_lengths)
    nanoseconds[rows], valid[rows] = decode_timestamp_matrix(matrix, row_lengths)
    return nanoseconds, valid


def decode_timestamp_matrix(
    matrix: np.ndarray, lengths: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Decode rows of a ``uint8`` matrix (row i holds ``lengths[i]`` timestamp bytes from
    column 0; columns beyond are ignored) → (nanoseconds since the epoch, valid mask).

    Digits are combined eight at a time inside 64-bit words (SWAR), so the cost is a few
    integer operations per timestamp.
    """
    n_rows = len(matrix)
    if matrix.shape[1] < MAX_LENGTH:
        matrix = np.pad(matrix, ((0, 0), (0, MAX_LENGTH - matrix.shape[1])))
    matrix = np.ascontiguousarray(matrix[:, :MAX_LENGTH])
    bad = np.subtract(matrix, _ZERO, dtype=np.uint8) > 9
    for position, separator in _SEPARATORS.items():
        bad[:, position] = matrix[:, position] != separator
    if not np.all(lengths == MAX_LENGTH):  # 1-6 fraction digits: missing ones read as "0"
        missing = np.arange(MIN_LENGTH - 1, MAX_LENGTH) >= lengths[:, None]
        bad[:, MIN_LENGTH - 1 :] &= ~missing
        matrix = matrix.copy()
        matrix[:, MIN_LENGTH - 1 :][missing] = _ZERO
    words = bad.view(np.uint64).reshape(n_rows, 3)
    valid = ((words[:, 0] | words[:, 1] | words[:, 2]) == 0) & (lengths >= MIN_LENGTH)
    valid &= lengths <= MAX_LENGTH

    date = _eight_digits(matrix[:, :8])  # YYYYMMDD
    packed = np.full((n_rows, 16), _ZERO, dtype=np.uint8)
    packed[:, :6] = matrix[:, _TIME_COLUMNS]  # HHMMSS00
    packed[:, 8:14] = matrix[:, MIN_LENGTH - 1 :]  # ffffff00
    hhmmss = _eight_digits(packed[:, :8]) // 100
    microsecond = _eight_digits(packed[:, 8:]) // 100
    hour, minute, second = hhmmss // 10_000, hhmmss // 100 % 100, hhmmss % 100
    valid &= (hour < 24) & (minute < 60) & (second < 60)
    days, date_ok = _days_of_dates(date)
    valid &= date_ok
    seconds = days * 86_400 + hour * 3600 + minute * 60 + second
    nanoseconds = seconds * _NS_PER_SECOND + microsecond * 1000
    return np.where(valid, nanoseconds, 0), valid


def _eight_digits(columns: np.ndarray) -> np.ndarray:
    """Eight ASCII digits per row (``uint8`` (n, 8)) → int64 values, SWAR in uint64 words.
    Rows holding non-digits give garbage (they are flagged invalid elsewhere)."""
    word = np.ascontiguousarray(columns).view("<u8").ravel() - np.uint64(0x3030303030303030)
    word = word * np.uint64(10) + (word >> np.uint64(8))
    low = (word & np.uint64(0x000000FF000000FF)) * np.uint64(100 + (1_000_000 << 32))
    high = ((word >> np.uint64(16)) & np.uint64(0x000000FF000000FF)) * np.uint64(1 + (10_000 << 32))
    return ((low + high) >> np.uint64(32)).astype(np.int64)


def _days_of_dates(date: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``YYYYMMDD`` integers → (days since 1970-01-01, valid calendar date).

    Logs hold long runs of the same date, so the calendar arithmetic runs once per run.
    """
    run_starts = np.flatnonzero(np.concatenate(([True], date[1:] != date[:-1])))
    run_lengths = np.diff(np.append(run_starts, len(date)))
    unique = date[run_starts]
    year, month, day = unique // 10_000, unique // 100 % 100, unique % 100
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    days_in_month = _DAYS_IN_MONTH[np.clip(month - 1, 0, 11)] + ((month == 2) & leap)
    ok = (year >= _MIN_YEAR) & (year <= _MAX_YEAR) & (month >= 1) & (month <= 12)
    ok &= (day >= 1) & (day <= days_in_month)
    days = _days_from_civil(year, month, day)
    return np.repeat(days, run_lengths), np.repeat(ok, run_lengths)


def _days_from_civil(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    year = year - (month <= 2)
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146_097 + day_of_era - 719_468


def _pad_rows(packed: np.ndarray, offsets: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Rows of differing lengths (packed back to back) → a NUL-padded ``MAX_LENGTH`` matrix."""
    matrix = np.zeros((len(lengths), MAX_LENGTH), dtype=np.uint8)
    for column in range(MAX_LENGTH):
        present = lengths > column
        matrix[present, column] = packed[offsets[:-1][present] + column]
    return matrix


def _as_fixed_bytes(values: np.ndarray | Sequence[str | bytes]) -> np.ndarray:
    """Any sequence of timestamps → a fixed-width ``S`` array (non-ASCII text stays invalid)."""
    if isinstance(values, np.ndarray) and values.dtype.kind == "S":
        return values
    if isinstance(values, pa.Array | pa.ChunkedArray):
        values = values.to_pylist()
    encoded = [
        item.encode("ascii", "replace")
        if isinstance(item, str)
        else item
        if isinstance(item, bytes)
        else b""
        for item in values
    ]
    # Keep over-long values over-long (so they stay invalid) instead of truncating them.
    return np.array(encoded, dtype=bytes) if encoded else np.array([], dtype="S1")
