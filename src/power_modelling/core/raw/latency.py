"""``trt_profiling/trt_layer_latency.json`` → layer windows.

Layout: ``{layer: [entry, ...]}``, entry i of every layer = inference cycle i + 1, an entry
being ``[latency_ms, end_ts]`` (Jetson), ``[latency_ms, end_ts, repeats]`` (NVML burst), or a
bare ``latency_ms`` (old files: runtimes without timestamps, so no power windows).

Files reach 165 MB (4.5 M entries), where ``json.loads`` alone takes seconds, so the usual
layout is read by a **fast path** over the raw bytes: NumPy locates the quotes (strings:
layer names are those followed by ``:``, the others timestamps), then the bytes between
strings are checked, entry by entry with vectorised look-ups, to be exactly what the layout
puts there (``[`` latency ``,`` timestamp (``,`` repeats) ``]``, ``,`` between entries and
layers, whitespace), so every byte is accounted for; large files are scanned as two runs of
whole layers in parallel threads. Then all numbers and timestamps are converted at once.
Anything unusual (old form, mixed entries, escapes, odd values) falls back to ``json.loads``
with the same vectorised timestamp decoding.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from power_modelling.core.pages import on_ordinary_pages
from power_modelling.core.raw.plausibility import (
    PlausibleRanges,
    outside,
    repeats_of_earlier,
)
from power_modelling.core.raw.spans import (
    WHITESPACE,
    byte_positions,
    cast_float_spans,
    strip_spans,
)
from power_modelling.core.raw.timestamps import (
    as_datetime64,
    decode_timestamp_spans,
    parse_timestamps,
)

logger = logging.getLogger(__name__)

FORM_JETSON = "2-element"
FORM_NVML = "3-element"
FORM_BARE = "bare"
FORM_MIXED = "mixed"
_BARE, _INVALID_SHAPE = 1, 0  # entry kinds besides 2 and 3 (the element count)


class LatencyFileError(ValueError):
    """The latency file cannot be used at all (not JSON, or not ``{layer: [entries]}``)."""


class _UnusualLayout(Exception):
    """The fast path cannot prove the layout; the JSON fallback takes over."""


@dataclass
class _Entries:
    """Every entry of the file, in file order (one array element per entry)."""

    layer_names: list[str]
    layer_index: np.ndarray  # int index into layer_names
    latency_ms: np.ndarray  # float64, NaN where not a number
    end_ns: np.ndarray  # int64 ns since the epoch
    end_valid: np.ndarray  # bool: the timestamp decoded
    repeats: np.ndarray | None  # float64, NaN where not a number; None: all 1
    kind: np.ndarray | int  # int8 per entry (2 or 3 elements, _BARE or _INVALID_SHAPE) or one
    duplicate_layers: list[str]


@dataclass
class _Chunk:
    """The fast path's result for a run of whole layers (arrays per layer, then per entry)."""

    key_opens: np.ndarray
    key_closes: np.ndarray
    layer_opens: np.ndarray
    layer_closes: np.ndarray
    entries_per_layer: np.ndarray
    elements: int | None  # 2 or 3 elements per entry; None: no entries
    latency_ms: np.ndarray
    end_ns: np.ndarray
    end_valid: np.ndarray
    repeats: np.ndarray | None


# The fast path splits files of at least this many strings into chunks of whole layers,
# scanned in parallel threads (NumPy and Arrow release the GIL on large arrays).
PARALLEL_CHUNKS = 2
MIN_STRINGS_TO_SPLIT = 200_000
_NUMBER_OR_WHITESPACE = WHITESPACE.copy()
_NUMBER_OR_WHITESPACE[list(b"0123456789.eE+-")] = True
_MAX_NUMBER_WIDTH = 64


@on_ordinary_pages
def parse_layer_latency(
    data: bytes, source: str, max_reported: int = 5, ranges: PlausibleRanges | None = None
) -> tuple[pd.DataFrame, dict]:
    """Parse a latency file → (``layer_windows`` frame, report).

    Frame columns: ``layer_name`` (categorical), ``cycle`` (1-based entry index per layer),
    ``start``/``end`` datetime64[ns] (NaT for the bare old form), ``latency_ms`` (one
    execution), ``repeats`` (1 for two-element entries). Dropped, counted and reported by
    layer and cycle: entries that are not a finite latency ≥ 0 with a valid timestamp (and a
    whole repeats ≥ 1); with ``ranges``, a latency or a window (latency x repeats) outside
    ``ranges.latency_ms`` / ``ranges.window_ms``; and an entry whose layer already has a window
    ending at the same time (the first kept). ``entries = windows + invalid_entries +
    out_of_range_entries + duplicate_entries``. Raises ``LatencyFileError`` when the file is
    unusable.
    """
    try:
        entries, parser, fallback_reason = _scan(data), "fast", None
    except _UnusualLayout as unusual:
        entries, parser, fallback_reason = _load_json(data, source), "json", str(unusual)
    return _windows(entries, source, parser, fallback_reason, max_reported, ranges=ranges)


def _scan(data: bytes, chunks: int | None = None, min_strings: int | None = None) -> _Entries:
    """The fast path (see the module docstring); raises ``_UnusualLayout``.

    Every byte of the file is accounted for: strings are located by their quotes (no
    escapes, so quotes only delimit strings), and each stretch between two strings is
    checked to be exactly what the layout puts there (whitespace, ``:``, ``[``, ``,``, a
    number, ``]``), following the chain entry by entry with vectorised look-ups. The
    layers are scanned as ``chunks`` (default ``PARALLEL_CHUNKS``) runs of whole layers in
    parallel threads when the file holds at least ``min_strings`` (default
    ``MIN_STRINGS_TO_SPLIT``) strings.
    """
    chunks = PARALLEL_CHUNKS if chunks is None else chunks
    min_strings = MIN_STRINGS_TO_SPLIT if min_strings is None else min_strings
    head, tail = data[:4096], data[-4096:]
    start = len(head) - len(head.lstrip())
    stop = len(data) - (len(tail) - len(tail.rstrip())) - 1  # the closing brace
    if not head[start:].startswith(b"{") or not tail.rstrip().endswith(b"}") or stop <= start:
        raise _UnusualLayout("not a JSON object")
    if b"\\" in data:
        raise _UnusualLayout("escapes in strings")
    buf = np.frombuffer(data, dtype=np.uint8)
    quotes = byte_positions(buf, ord('"'))
    if quotes.size % 2:
        raise _UnusualLayout("unbalanced quotes")
    if quotes.size == 0:
        raise _UnusualLayout("no [latency, timestamp(, repeats)] entries")
    opens, closes = quotes[0::2], quotes[1::2]
    bounds = _chunk_bounds(buf, closes, chunks if closes.size >= min_strings else 1)
    ranges = list(zip(bounds[:-1], bounds[1:], strict=True))

    def scan(bound: tuple[int, int]) -> _Chunk:
        return _scan_chunk(data, buf, opens[bound[0] : bound[1]], closes[bound[0] : bound[1]])

    if len(ranges) > 1:
        with ThreadPoolExecutor(len(ranges)) as pool:
            parts = list(pool.map(scan, ranges))
    else:
        parts = [scan(ranges[0])]
    return _merge_chunks(data, parts, start, stop)


def _chunk_bounds(buf: np.ndarray, closes: np.ndarray, chunks: int) -> list[int]:
    """String indices splitting the file into ``chunks`` runs of whole layers (each run
    starts at a layer name: a string followed by ``:``); fewer when there are no more."""
    bounds = [0]
    for part in range(1, chunks):
        at = _next_key(buf, closes, max(closes.size * part // chunks, bounds[-1] + 1))
        if at is None:
            break
        bounds.append(at)
    return [*bounds, closes.size]


def _next_key(buf: np.ndarray, closes: np.ndarray, first: int) -> int | None:
    """Index of the first string at or after ``first`` that is followed by ``:``."""
    window = 1024
    while first < closes.size:
        after = _skip_whitespace(buf, closes[first : first + window] + 1)
        hits = np.flatnonzero(buf[after] == ord(":"))
        if hits.size:
            return first + int(hits[0])
        first, window = first + window, window * 2
    return None


def _scan_chunk(data: bytes, buf: np.ndarray, opens: np.ndarray, closes: np.ndarray) -> _Chunk:
    """Scan the strings ``opens``/``closes`` (whole layers, starting at a layer name)."""
    after = _skip_whitespace(buf, closes + 1)
    is_key = buf[after] == ord(":")
    if not is_key[0]:
        raise _UnusualLayout("a value where a layer name was expected")
    key_at = np.flatnonzero(is_key)
    layer_opens = _skip_whitespace(buf, after[key_at] + 1)
    if np.any(buf[layer_opens] != ord("[")):
        raise _UnusualLayout("a key not followed by its layer list")
    entries_per_layer = np.diff(key_at, append=len(opens)) - 1
    filled = entries_per_layer > 0
    first_entry = np.cumsum(entries_per_layer) - entries_per_layer
    first_opens = _skip_whitespace(buf, layer_opens + 1)  # an entry, or "]" when empty
    layer_closes = first_opens.copy()
    if np.any(buf[first_opens[~filled]] != ord("]")):
        raise _UnusualLayout("a layer list holds bare values")
    chunk = _Chunk(
        key_opens=opens[key_at],
        key_closes=closes[key_at],
        layer_opens=layer_opens,
        layer_closes=layer_closes,
        entries_per_layer=entries_per_layer,
        elements=None,
        latency_ms=np.zeros(0),
        end_ns=np.zeros(0, dtype=np.int64),
        end_valid=np.zeros(0, dtype=bool),
        repeats=None,
    )
    if key_at.size == len(opens):
        return chunk
    is_value = ~is_key
    ts_opens, ts_closes, ts_after = opens[is_value], closes[is_value], after[is_value]
    del after, is_key, is_value

    # [ latency , "timestamp" ] or [ latency , "timestamp" , repeats ]
    commas = _skip_whitespace(buf, ts_opens - 1, step=-1)
    if np.any(buf[commas] != ord(",")):
        raise _UnusualLayout("not exactly one timestamp string, second, in every entry")
    if buf[ts_after[0]] == ord("]") and np.all(buf[ts_after] == ord("]")):
        chunk.elements, entry_closes = 2, ts_after
    elif buf[ts_after[0]] == ord(",") and np.all(buf[ts_after] == ord(",")):
        chunk.elements, entry_closes = 3, _skip_number(buf, ts_after + 1)
        if np.any(buf[entry_closes] != ord("]")):
            raise _UnusualLayout("entries of mixed or unexpected length")
    else:
        raise _UnusualLayout("entries of mixed or unexpected length")

    # between entries "," (the last one of a layer: "]"), then the next entry's "["
    last_entry = (first_entry + entries_per_layer - 1)[filled]
    gaps = _skip_whitespace(buf, entry_closes + 1)
    expected = np.full(len(gaps), ord(","), dtype=np.uint8)
    expected[last_entry] = ord("]")
    if np.any(buf[gaps] != expected):
        raise _UnusualLayout("layer lists hold something besides [..] entries")
    del expected
    layer_closes[filled] = gaps[last_entry]
    entry_opens = np.empty_like(gaps)
    entry_opens[1:] = _skip_whitespace(buf, gaps[:-1] + 1)
    entry_opens[first_entry[filled]] = first_opens[filled]
    del gaps
    if np.any(buf[entry_opens] != ord("[")) or np.any(entry_opens >= commas):
        raise _UnusualLayout("layer lists hold something besides [..] entries")

    try:
        chunk.latency_ms = cast_float_spans(data, *strip_spans(buf, entry_opens + 1, commas))
        if chunk.elements == 3:
            chunk.repeats = cast_float_spans(data, *strip_spans(buf, ts_after + 1, entry_closes))
    except pa.ArrowInvalid as exc:
        raise _UnusualLayout(f"a latency or repeats value is not a number ({exc})") from None
    del entry_opens, commas, entry_closes, ts_after
    chunk.end_ns, chunk.end_valid = decode_timestamp_spans(data, ts_opens + 1, ts_closes)
    return chunk


def _merge_chunks(data: bytes, parts: list[_Chunk], start: int, stop: int) -> _Entries:
    """Join the chunks' entries, checking what lies between the layers (``,`` only)."""
    elements = {part.elements for part in parts} - {None}
    if not elements:
        raise _UnusualLayout("no [latency, timestamp(, repeats)] entries")
    if len(elements) > 1:
        raise _UnusualLayout("entries of mixed or unexpected length")

    def joined(field: str, of: list[_Chunk] = parts) -> np.ndarray:
        arrays = [getattr(part, field) for part in of]
        return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)

    with_entries = [part for part in parts if part.elements]

    key_opens, key_closes = joined("key_opens"), joined("key_closes")
    layer_closes = joined("layer_closes")
    previous_ends = np.concatenate(([start], layer_closes[:-1])) + 1
    for layer, (gap_start, key_open) in enumerate(zip(previous_ends, key_opens, strict=True)):
        if data[gap_start:key_open].strip() != (b"," if layer else b""):
            raise _UnusualLayout("layers are not separated by single commas")
    if data[layer_closes[-1] + 1 : stop].strip():
        raise _UnusualLayout("something after the last layer list")
    names = _layer_names(data, key_opens, key_closes)
    entries_per_layer = joined("entries_per_layer")
    return _Entries(
        layer_names=names,
        layer_index=np.repeat(np.arange(len(names)), entries_per_layer),
        latency_ms=joined("latency_ms", with_entries),
        end_ns=joined("end_ns", with_entries),
        end_valid=joined("end_valid", with_entries),
        repeats=joined("repeats", with_entries) if elements == {3} else None,
        kind=elements.pop(),
        duplicate_layers=[],
    )


def _skip_whitespace(buf: np.ndarray, positions: np.ndarray, step: int = 1) -> np.ndarray:
    """The first non-whitespace position at or after (``step=-1``: before) each position.

    Callers start inside the outer braces, which stop every walk.
    """
    positions = positions.copy()
    if not positions.size:
        return positions
    while True:  # while all are on whitespace (e.g. indented files), move all at once
        chars = buf[positions]
        maybe = chars <= ord(" ")  # whitespace or a control character
        if not maybe.all() or not WHITESPACE[chars].all():
            break
        positions += step
    active = np.flatnonzero(maybe)
    active = active[WHITESPACE[chars[active]]]
    while active.size:
        positions[active] += step
        active = active[WHITESPACE[buf[positions[active]]]]
    return positions


def _skip_number(buf: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """The first position at or after each position that is neither a number character nor
    whitespace (what follows a number)."""
    positions = positions.copy()
    active = np.arange(positions.size)
    for _ in range(_MAX_NUMBER_WIDTH):
        active = active[_NUMBER_OR_WHITESPACE[buf[positions[active]]]]
        if not active.size:
            return positions
        positions[active] += 1
    raise _UnusualLayout("a number too long for the fast path")


def _layer_names(data: bytes, key_opens: np.ndarray, key_closes: np.ndarray) -> list[str]:
    """Decode the keys (UTF-8, unique)."""
    try:
        names = [
            data[key_open + 1 : key_close].decode("utf-8")
            for key_open, key_close in zip(key_opens.tolist(), key_closes.tolist(), strict=True)
        ]
    except UnicodeDecodeError:
        raise _UnusualLayout("a layer name is not UTF-8") from None
    if len(set(names)) != len(names):
        raise _UnusualLayout("duplicate layer names")
    return names


def _load_json(data: bytes, source: str) -> _Entries:
    """The fallback: ``json.loads``, then per-entry shape checks and vectorised decoding."""
    duplicates: list[str] = []

    def keep_last(pairs: list[tuple[str, object]]) -> dict:
        counts = Counter(key for key, _ in pairs)
        duplicates.extend(sorted(key for key, count in counts.items() if count > 1))
        return dict(pairs)

    try:
        layers = json.loads(data, object_pairs_hook=keep_last)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LatencyFileError(f"{source}: unreadable JSON ({exc})") from exc
    if not isinstance(layers, dict):
        raise LatencyFileError(f"{source}: expected an object {{layer: [entries]}}")
    for name, entries in layers.items():
        if not isinstance(entries, list):
            raise LatencyFileError(
                f"{source}: layer {name!r}: expected a list of entries, got "
                f"{type(entries).__name__}"
            )
    flat = [entry for entries in layers.values() for entry in entries]
    fields = [_entry_fields(entry) for entry in flat]
    latency, timestamps, repeats, kind = zip(*fields, strict=True) if fields else ([],) * 4
    ends = parse_timestamps(list(timestamps))
    end_valid = ~np.isnat(ends)
    return _Entries(
        layer_names=list(layers),
        layer_index=np.repeat(np.arange(len(layers)), [len(v) for v in layers.values()]),
        latency_ms=np.asarray(latency, dtype=np.float64),
        end_ns=np.where(end_valid, ends.view(np.int64), 0),
        end_valid=end_valid,
        repeats=np.asarray(repeats, dtype=np.float64),
        kind=np.asarray(kind, dtype=np.int8),
        duplicate_layers=duplicates,
    )


def _entry_fields(entry: object) -> tuple[float, object, float, int]:
    """One decoded JSON entry → (latency, timestamp, repeats, kind); NaN/None where bad."""
    if _is_number(entry):
        return float(entry), None, 1.0, _BARE
    if isinstance(entry, list) and len(entry) in (2, 3):
        latency = float(entry[0]) if _is_number(entry[0]) else math.nan
        repeats = 1.0 if len(entry) == 2 else float(entry[2]) if _is_number(entry[2]) else math.nan
        return latency, entry[1], repeats, len(entry)
    return math.nan, None, math.nan, _INVALID_SHAPE


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _windows(
    entries: _Entries,
    source: str,
    parser: str,
    fallback_reason: str | None,
    max_reported: int,
    *,
    ranges: PlausibleRanges | None = None,
) -> tuple[pd.DataFrame, dict]:
    """Validate the entries and build the ``layer_windows`` frame and the report."""
    n_entries = len(entries.latency_ms)
    kind = entries.kind
    kinds = set(np.unique(kind).tolist()) if isinstance(kind, np.ndarray) else {kind}
    timed_kinds = kinds - {_INVALID_SHAPE, _BARE}  # bare values among timed entries are invalid
    form = (
        FORM_JETSON
        if timed_kinds == {2}
        else FORM_NVML
        if timed_kinds == {3}
        else FORM_MIXED
        if timed_kinds
        else FORM_BARE
    )
    bare = form == FORM_BARE
    cycles = np.bincount(entries.layer_index, minlength=len(entries.layer_names))
    first_index = np.concatenate(([0], np.cumsum(cycles)[:-1]))
    cycle = np.arange(n_entries) - first_index[entries.layer_index] + 1
    latency_ms, repeats = entries.latency_ms, entries.repeats
    valid = np.isfinite(latency_ms) & (latency_ms >= 0)
    usable_kinds = (_BARE,) if bare else (2, 3)
    if isinstance(kind, np.ndarray):
        valid &= np.isin(kind, usable_kinds)
    elif kind not in usable_kinds:
        valid[:] = False
    if repeats is not None:
        valid &= np.isfinite(repeats) & (repeats >= 1) & (np.floor(repeats) == repeats)
    if not bare:
        valid &= entries.end_valid
    out_of_range, duplicate = _implausible(entries, valid, bare, ranges)
    invalid = np.flatnonzero(~valid)
    if out_of_range.size or duplicate.size:
        valid[out_of_range] = False
        valid[duplicate] = False

    keep = slice(None) if valid.all() else valid  # avoid copies in the common case
    latency_ms, end_ns = latency_ms[keep], entries.end_ns[keep]
    duration_ns = latency_ms * repeats[keep] if repeats is not None else latency_ms.copy()
    duration_ns *= 1e6
    np.rint(duration_ns, out=duration_ns)
    start_ns = end_ns - duration_ns.astype(np.int64)
    del duration_ns
    timed = np.full(len(end_ns), not bare)
    frame = pd.DataFrame(
        {
            "layer_name": pd.Categorical.from_codes(
                entries.layer_index[keep], categories=entries.layer_names, validate=False
            ),
            "cycle": cycle[keep].astype(np.int64, copy=False),
            "start": as_datetime64(start_ns, timed),
            "end": as_datetime64(end_ns, timed),
            "latency_ms": latency_ms,
            "repeats": (
                repeats[keep].astype(np.int64)
                if repeats is not None
                else np.ones(len(end_ns), dtype=np.int64)
            ),
        },
        copy=False,
    )

    def named(rows: np.ndarray) -> list[str]:
        return [
            f"{entries.layer_names[entries.layer_index[i]]} cycle {cycle[i]}"
            for i in rows[:max_reported]
        ]

    report = {
        "source": source,
        "parser": parser,
        "fallback_reason": fallback_reason,
        "form": form,
        "has_power_windows": not bare and len(frame) > 0,
        "layers": len(entries.layer_names),
        "entries": n_entries,
        "windows": len(frame),
        "invalid_entries": int(invalid.size),
        "first_invalid_entries": named(invalid),
        "plausible": None
        if ranges is None
        else {"latency_ms": list(ranges.latency_ms), "window_ms": list(ranges.window_ms)},
        "out_of_range_entries": int(out_of_range.size),
        "first_out_of_range_entries": named(out_of_range),
        "duplicate_entries": int(duplicate.size),
        "first_duplicate_entries": named(duplicate),
        "cycles_per_layer": {
            "min": int(cycles.min()) if cycles.size else 0,
            "max": int(cycles.max()) if cycles.size else 0,
        },
        "duplicate_layers": entries.duplicate_layers,
    }
    _log_findings(report)
    return frame, report


def _implausible(
    entries: _Entries, valid: np.ndarray, bare: bool, ranges: PlausibleRanges | None
) -> tuple[np.ndarray, np.ndarray]:
    """Positions of valid entries outside ``ranges`` (latency, or window = latency x repeats),
    and of those left that repeat an earlier entry of their layer ending at the same time."""
    empty = np.zeros(0, dtype=np.int64)
    every = bool(valid.all())  # the usual case: work on the arrays, not on copies
    rows = None if every else np.flatnonzero(valid)

    def of_valid(values: np.ndarray) -> np.ndarray:
        return values if rows is None else values[rows]

    out_of_range = empty
    if ranges is not None:
        latency = of_valid(entries.latency_ms)
        bad = outside(latency, ranges.latency_ms)
        window = latency if entries.repeats is None else latency * of_valid(entries.repeats)
        bad |= outside(window, ranges.window_ms)
        if bad.any():
            out_of_range = np.flatnonzero(bad) if rows is None else rows[bad]
            rows = np.flatnonzero(~bad) if rows is None else rows[~bad]
    if bare:
        return out_of_range, empty
    repeated = repeats_of_earlier(of_valid(entries.end_ns), of_valid(entries.layer_index))
    if not repeated.size:
        return out_of_range, empty
    return out_of_range, repeated if rows is None else rows[repeated]


def _log_findings(report: dict) -> None:
    source = report["source"]
    if report["form"] == FORM_BARE:
        logger.warning("%s: old form (bare latencies, no timestamps): no power windows", source)
    if report["invalid_entries"]:
        logger.warning(
            "%s: dropped %d invalid entr(y/ies) (first: %s)",
            source,
            report["invalid_entries"],
            report["first_invalid_entries"],
        )
    if report["out_of_range_entries"]:
        plausible = report["plausible"]
        logger.warning(
            "%s: dropped %d entr(y/ies) outside the plausible latency %s ms or window %s ms "
            "(first: %s)",
            source,
            report["out_of_range_entries"],
            plausible["latency_ms"],
            plausible["window_ms"],
            report["first_out_of_range_entries"],
        )
    if report["duplicate_entries"]:
        logger.warning(
            "%s: dropped %d entr(y/ies) ending when an earlier entry of their layer ends "
            "(first: %s)",
            source,
            report["duplicate_entries"],
            report["first_duplicate_entries"],
        )
    if report["cycles_per_layer"]["min"] != report["cycles_per_layer"]["max"]:
        logger.info("%s: layers have different cycle counts %s", source, report["cycles_per_layer"])
    if report["duplicate_layers"]:
        logger.warning(
            "%s: duplicate layer names %s (the last one kept)", source, report["duplicate_layers"]
        )
