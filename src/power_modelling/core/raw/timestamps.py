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

from power_modelling.core.raw.spans import contiguous_spans

MIN_LENGTH = 19  # "YYYYMMDD-HH:MM:SS.f"
MAX_LENGTH = 24  # "YYYYMMDD-HH:MM:SS.ffffff"
_NS_PER_SECOND = 1_000_000_000
# datetime64[ns] covers 1677-09-21 .. 2262-04-11; whole years inside that range are accepted.
_MIN_YEAR, _MAX_YEAR = 1678, 2261
_DAYS_IN_MONTH = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)
_ZERO = ord("0")
# _TAIL_MASKS[n]: the lowest n bytes of a 64-bit word
_TAIL_MASKS = np.array([(1 << (8 * n)) - 1 for n in range(9)], dtype=np.uint64)


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
    """Nanoseconds since the epoch → ``datetime64[ns]``, ``NaT`` where not ``valid`` (a view
    of ``nanoseconds`` when all are valid)."""
    if valid.all():
        return nanoseconds.astype(np.int64, copy=False).view("datetime64[ns]")
    out = np.where(valid, nanoseconds, np.iinfo(np.int64).min)
    return out.view("datetime64[ns]")


def decode_timestamp_spans(
    data: bytes, starts: np.ndarray, ends: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Decode the timestamps at ``data[starts[i]:ends[i]]`` → (ns since epoch, valid mask)."""
    lengths = ends - starts
    plausible = (lengths >= MIN_LENGTH) & (lengths <= MAX_LENGTH)
    if plausible.all():
        rows = slice(None)
    elif plausible.any():
        rows = np.flatnonzero(plausible)
    else:
        return np.zeros(len(starts), dtype=np.int64), np.zeros(len(starts), dtype=bool)
    row_starts, row_lengths = starts[rows], lengths[rows]
    if int(row_starts.max()) + MAX_LENGTH <= len(data):
        # Read the three words of each row straight from the file, through a view of it
        # as overlapping 64-bit words (one per byte offset).
        words = np.ndarray((len(data) - 7,), dtype="<u8", buffer=data, strides=(1,))
        last = words[row_starts + 16]
        if not np.all(row_lengths == MAX_LENGTH):
            keep = _TAIL_MASKS[row_lengths - 16]  # the fraction bytes inside the span
            last = (last & keep) | (_U(0x3030303030303030) & ~keep)  # missing digits: "0"
        decoded = _decode_words(words[row_starts], words[row_starts + 8], last)
    else:  # a span that ends too close to the end of the data for a whole last word
        packed, offsets = contiguous_spans(data, row_starts, row_starts + row_lengths)
        decoded = decode_timestamp_matrix(_pad_rows(packed, offsets, row_lengths), row_lengths)
    if isinstance(rows, slice):
        return decoded
    nanoseconds = np.zeros(len(starts), dtype=np.int64)
    valid = np.zeros(len(starts), dtype=bool)
    nanoseconds[rows], valid[rows] = decoded
    return nanoseconds, valid


def decode_timestamp_matrix(
    matrix: np.ndarray, lengths: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Decode rows of a ``uint8`` matrix (row i holds ``lengths[i]`` timestamp bytes from
    column 0; columns beyond are ignored) → (nanoseconds since the epoch, valid mask)."""
    n_rows, width = matrix.shape
    length_ok = None
    if width != MAX_LENGTH or not np.all(lengths == MAX_LENGTH):
        padded = np.full((n_rows, MAX_LENGTH), _ZERO, dtype=np.uint8)  # missing digits: "0"
        usable = min(width, MAX_LENGTH)
        keep = np.arange(usable) < lengths[:, None]
        padded[:, :usable] = np.where(keep, matrix[:, :usable], _ZERO)
        matrix = padded
        length_ok = (lengths >= MIN_LENGTH) & (lengths <= MAX_LENGTH)
    words = np.ascontiguousarray(matrix).view("<u8").reshape(n_rows, 3)
    nanoseconds, valid = _decode_words(words[:, 0], words[:, 1], words[:, 2])
    if length_ok is not None and not length_ok.all():
        valid &= length_ok
        nanoseconds[~valid] = 0
    return nanoseconds, valid


def _decode_words(
    date_word: np.ndarray, tens_word: np.ndarray, last: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Timestamps as three little-endian 64-bit words each — ``YYYYMMDD``, ``-HH:MM:S`` (the
    tens of seconds) and ``S.ffffff`` (the fraction padded with "0") — → (nanoseconds since
    the epoch, valid mask).

    Logs hold long runs of rows sharing the first two words, so those are decoded and
    checked once per run; per row only the last word is checked and turned into
    microseconds, eight digits at a time (SWAR).
    """
    n_rows = len(last)
    if n_rows == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
    changed = date_word[1:] != date_word[:-1]
    changed |= tens_word[1:] != tens_word[:-1]
    run_starts = np.flatnonzero(changed)
    del changed
    run_starts += 1
    run_starts = np.concatenate(([0], run_starts))
    run_lengths = np.diff(run_starts, append=n_rows)
    run_ns, run_ok = _decode_prefixes(date_word[run_starts], tens_word[run_starts])

    # "S.ffffff" -> "0Sffffff": the microseconds within the ten seconds, as eight digits
    digits = (last & _U(0xFFFFFFFFFFFF0000)) | ((last & _U(0xFF)) << _U(8)) | _U(_ZERO)
    valid = _all_digits(digits)
    valid &= (last & _U(0xFF00)) == _U(ord(".") << 8)
    if not run_ok.all():
        valid &= np.repeat(run_ok, run_lengths)
    nanoseconds = _eight_digits(digits)
    del digits
    nanoseconds *= 1000
    nanoseconds += np.repeat(run_ns, run_lengths)
    if not valid.all():
        nanoseconds[~valid] = 0
    return nanoseconds, valid


def _U(value: int) -> np.uint64:  # noqa: N802 (reads like a literal suffix)
    return np.uint64(value)


def _all_digits(word: np.ndarray) -> np.ndarray:
    """Whether all eight bytes of each word are ASCII digits."""
    high = _U(0xF0F0F0F0F0F0F0F0)
    return ((word & high) | (((word + _U(0x0606060606060606)) & high) >> _U(4))) == _U(
        0x3333333333333333
    )


def _eight_digits(word: np.ndarray) -> np.ndarray:
    """Eight ASCII digits per word (first digit in the lowest byte) → int64 values."""
    digits = word - _U(0x3030303030303030)
    pairs = digits * _U(10)
    digits >>= _U(8)
    pairs += digits
    del digits
    low = pairs & _U(0x000000FF000000FF)
    low *= _U(100 + (1_000_000 << 32))
    pairs >>= _U(16)
    pairs &= _U(0x000000FF000000FF)
    pairs *= _U(1 + (10_000 << 32))
    pairs += low
    pairs >>= _U(32)
    return pairs.view(np.int64)


def _decode_prefixes(date_word: np.ndarray, tens_word: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``YYYYMMDD`` and ``-HH:MM:S`` words (one per run) → (ns since the epoch at the start of
    those ten seconds, valid mask)."""
    date = date_word.view(np.uint8).reshape(-1, 8).astype(np.int64) - _ZERO
    clock = tens_word.view(np.uint8).reshape(-1, 8).astype(np.int64) - _ZERO
    digit_columns = clock[:, [1, 2, 4, 5, 7]]
    ok = np.all((date >= 0) & (date <= 9), axis=1)
    ok &= np.all((digit_columns >= 0) & (digit_columns <= 9), axis=1)
    ok &= (clock[:, 0] == ord("-") - _ZERO) & (clock[:, 3] == ord(":") - _ZERO)
    ok &= clock[:, 6] == ord(":") - _ZERO
    year = date[:, 0] * 1000 + date[:, 1] * 100 + date[:, 2] * 10 + date[:, 3]
    month, day = date[:, 4] * 10 + date[:, 5], date[:, 6] * 10 + date[:, 7]
    hour, minute = clock[:, 1] * 10 + clock[:, 2], clock[:, 4] * 10 + clock[:, 5]
    ok &= (hour < 24) & (minute < 60) & (clock[:, 7] < 6)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    days_in_month = _DAYS_IN_MONTH[np.clip(month - 1, 0, 11)] + ((month == 2) & leap)
    ok &= (year >= _MIN_YEAR) & (year <= _MAX_YEAR) & (month >= 1) & (month <= 12)
    ok &= (day >= 1) & (day <= days_in_month)
    seconds = _days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60
    seconds += clock[:, 7] * 10
    return np.where(ok, seconds * _NS_PER_SECOND, 0), ok


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
