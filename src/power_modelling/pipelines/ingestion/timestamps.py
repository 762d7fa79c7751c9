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
_NS_PER_SECOND = 1_000_000_000
# datetime64[ns] covers 1677-09-21 .. 2262-04-11; whole years inside that range are accepted.
_MIN_YEAR, _MAX_YEAR = 1678, 2261
_DAYS_IN_MONTH = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)
_ZERO = ord("0")


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

    Each row is read as three little-endian 64-bit words (``YYYYMMDD``, ``-HH:MM:S``,
    ``S.ffffff``) and checked and combined eight digits at a time (SWAR), so the cost is a
    few integer operations per timestamp.
    """
    n_rows, width = matrix.shape
    if width != MAX_LENGTH or not np.all(lengths == MAX_LENGTH):
        padded = np.full((n_rows, MAX_LENGTH), _ZERO, dtype=np.uint8)  # missing digits: "0"
        usable = min(width, MAX_LENGTH)
        keep = np.arange(usable) < lengths[:, None]
        padded[:, :usable] = np.where(keep, matrix[:, :usable], _ZERO)
        matrix = padded
    words = np.ascontiguousarray(matrix).view("<u8").reshape(n_rows, 3)
    date_word, middle, last = words[:, 0], words[:, 1], words[:, 2]
    # "HHMMSS" from "-HH:MM:S" + "S.ffffff", padded to eight digits with "00"
    clock_word = (
        ((middle >> _U(8)) & _U(0xFFFF))
        | (((middle >> _U(32)) & _U(0xFFFF)) << _U(16))
        | ((middle >> _U(56)) << _U(32))
        | ((last & _U(0xFF)) << _U(40))
        | _U(0x3030 << 48)
    )
    fraction_word = (last >> _U(16)) | _U(0x3030 << 48)  # "ffffff00"
    valid = (lengths >= MIN_LENGTH) & (lengths <= MAX_LENGTH)
    valid &= _all_digits(date_word) & _all_digits(clock_word) & _all_digits(fraction_word)
    valid &= (middle & _U(0x00FF0000FF0000FF)) == _U(0x003A00003A00002D)  # "-", ":", ":"
    valid &= ((last >> _U(8)) & _U(0xFF)) == _U(ord("."))

    date_pairs, clock_pairs = _digit_pairs(date_word), _digit_pairs(clock_word)
    year = date_pairs[:, 0] * 100 + date_pairs[:, 1]
    month, day = date_pairs[:, 2], date_pairs[:, 3]
    hour, minute, second = clock_pairs[:, 0], clock_pairs[:, 1], clock_pairs[:, 2]
    valid &= (hour < 24) & (minute < 60) & (second < 60)
    microsecond = _eight_digits(fraction_word) // 100
    days, date_ok = _days_of_dates(date_word, year, month, day)
    valid &= date_ok
    seconds = days * 86_400 + hour * 3600 + minute * 60 + second
    nanoseconds = seconds * _NS_PER_SECOND + microsecond * 1000
    return np.where(valid, nanoseconds, 0), valid


def _U(value: int) -> np.uint64:  # noqa: N802 (reads like a literal suffix)
    return np.uint64(value)


def _all_digits(word: np.ndarray) -> np.ndarray:
    """Whether all eight bytes of each word are ASCII digits."""
    high = _U(0xF0F0F0F0F0F0F0F0)
    return ((word & high) | (((word + _U(0x0606060606060606)) & high) >> _U(4))) == _U(
        0x3333333333333333
    )


def _digit_pairs(word: np.ndarray) -> np.ndarray:
    """Eight ASCII digits per word → the four two-digit numbers, as int64 (n, 4)."""
    digits = word - _U(0x3030303030303030)
    pairs = digits * _U(10) + (digits >> _U(8))  # bytes 0, 2, 4, 6 hold the pairs
    return (pairs & _U(0x00FF00FF00FF00FF)).view("<u2").reshape(-1, 4).astype(np.int64)


def _eight_digits(word: np.ndarray) -> np.ndarray:
    """Eight ASCII digits per word (first digit in the lowest byte) → int64 values."""
    digits = word - _U(0x3030303030303030)
    pairs = digits * _U(10) + (digits >> _U(8))
    low = (pairs & _U(0x000000FF000000FF)) * _U(100 + (1_000_000 << 32))
    high = ((pairs >> _U(16)) & _U(0x000000FF000000FF)) * _U(1 + (10_000 << 32))
    return ((low + high) >> _U(32)).astype(np.int64)


def _days_of_dates(
    key: np.ndarray, year: np.ndarray, month: np.ndarray, day: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Days since 1970-01-01 and calendar validity of each date (``key`` identifies the
    date). Logs hold long runs of the same date, so the arithmetic runs once per run."""
    run_starts = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
    run_lengths = np.diff(np.append(run_starts, len(key)))
    year, month, day = year[run_starts], month[run_starts], day[run_starts]
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
