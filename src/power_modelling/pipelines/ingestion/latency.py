"""``trt_profiling/trt_layer_latency.json`` → layer windows.

Layout: ``{layer: [entry, ...]}``, entry i of every layer = inference cycle i + 1, an entry
being ``[latency_ms, end_ts]`` (Jetson), ``[latency_ms, end_ts, repeats]`` (NVML burst), or a
bare ``latency_ms`` (old files: runtimes without timestamps, so no power windows).

Files reach 165 MB (4.5 M entries), where ``json.loads`` alone takes seconds, so the usual
layout is read by a **fast path** over the raw bytes: NumPy locates the quotes, brackets and
commas outside strings, bracket depths give layers, entries and slots, consistency checks
(uniform entry length, one timestamp string per entry in second place, only entries in the
layer lists, one key per layer, ...) prove the layout, then all numbers and timestamps are
converted at once. Anything unusual (old form, mixed entries, escapes, odd values) falls back
to ``json.loads`` with the same vectorised timestamp decoding.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from power_modelling.pipelines.ingestion.spans import WHITESPACE, cast_float_spans, strip_spans
from power_modelling.pipelines.ingestion.timestamps import (
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
    layer_index: np.ndarray  # int64 index into layer_names
    latency_ms: np.ndarray  # float64, NaN where not a number
    end_ns: np.ndarray  # int64 ns since the epoch
    end_valid: np.ndarray  # bool: the timestamp decoded
    repeats: np.ndarray  # float64, NaN where not a number
    kind: np.ndarray  # int8: 2 or 3 elements, _BARE or _INVALID_SHAPE
    duplicate_layers: list[str]


def parse_layer_latency(
    data: bytes, source: str, max_reported: int = 5
) -> tuple[pd.DataFrame, dict]:
    """Parse a latency file → (``layer_windows`` frame, report).

    Frame columns: ``layer_name`` (categorical), ``cycle`` (1-based entry index per layer),
    ``start``/``end`` datetime64[ns] (NaT for the bare old form), ``latency_ms`` (one
    execution), ``repeats`` (1 for two-element entries). Entries that are not a finite
    latency ≥ 0 with a valid timestamp (and a whole repeats ≥ 1) are dropped, counted and
    reported by layer and cycle. Raises ``LatencyFileError`` when the file is unusable.
    """
    try:
        entries, parser, fallback_reason = _scan(data), "fast", None
    except _UnusualLayout as unusual:
        entries, parser, fallback_reason = _load_json(data, source), "json", str(unusual)
    return _windows(entries, source, parser, fallback_reason, max_reported)


def _scan(data: bytes) -> _Entries:
    """The fast path (see the module docstring); raises ``_UnusualLayout``."""
    head, tail = data[:4096].lstrip(), data[-4096:].rstrip()
    if not head.startswith(b"{") or not tail.endswith(b"}"):
        raise _UnusualLayout("not a JSON object")
    if b"\\" in data or data.count(b"{") != 1 or data.count(b"}") != 1:
        raise _UnusualLayout("escapes, braces in names or nested objects")
    buf = np.frombuffer(data, dtype=np.uint8)
    quotes = np.flatnonzero(buf == ord('"'))
    if quotes.size % 2:
        raise _UnusualLayout("unbalanced quotes")
    string_opens, string_closes = quotes[0::2], quotes[1::2]
    is_key = buf[_skip_whitespace(buf, string_closes + 1)] == ord(":")
    key_opens, key_closes = string_opens[is_key], string_closes[is_key]
    ts_opens, ts_closes = string_opens[~is_key], string_closes[~is_key]

    # Brackets and commas outside the keys (layer names may hold both; timestamps cannot,
    # and if one did, the checks below would fail), with the bracket depth after each.
    structural = np.flatnonzero((buf > ord("Z")) | (buf == ord(",")))  # "[", "]", "," (+ a-z)
    chars = buf[structural]
    wanted = (chars == ord("[")) | (chars == ord("]")) | (chars == ord(","))
    structural, chars = structural[wanted], chars[wanted]
    inside_keys = _inside(structural, key_opens, key_closes)
    if inside_keys.any():
        structural, chars = structural[~inside_keys], chars[~inside_keys]
    is_open, is_close, is_comma = chars == ord("["), chars == ord("]"), chars == ord(",")
    depth = np.cumsum(is_open.astype(np.int8) - is_close, dtype=np.int32)
    if depth.size == 0 or depth.min() < 0 or depth.max() > 2 or depth[-1] != 0:
        raise _UnusualLayout("nesting is not {layer: [[...], ...]}")
    layer_opens = structural[is_open & (depth == 1)]
    layer_closes = structural[is_close & (depth == 0)]
    n_layers, n_entries = layer_opens.size, int(np.count_nonzero(is_open & (depth == 2)))
    if n_entries == 0:
        raise _UnusualLayout("no [latency, timestamp(, repeats)] entries")

    # Inside entries the tokens must repeat as "[ , ]" or "[ , , ]".
    in_entry = ((is_open | is_comma) & (depth == 2)) | (is_close & (depth == 1))
    per_entry = int(np.count_nonzero(in_entry)) // n_entries
    pattern = np.array([ord("[")] + [ord(",")] * (per_entry - 2) + [ord("]")], dtype=np.uint8)
    if per_entry not in (3, 4) or np.count_nonzero(in_entry) != n_entries * per_entry:
        raise _UnusualLayout("entries of mixed or unexpected length")
    if np.any(chars[in_entry].reshape(n_entries, per_entry) != pattern):
        raise _UnusualLayout("entries of mixed or unexpected length")
    table = structural[in_entry].reshape(n_entries, per_entry)
    entry_opens, first_commas, entry_closes = table[:, 0], table[:, 1], table[:, -1]
    after_timestamp = table[:, 2]  # the second comma, or the closing bracket

    if (
        ts_opens.size != n_entries
        or key_opens.size != n_layers
        or np.any(ts_opens < first_commas)
        or np.any(ts_closes > after_timestamp)
        or _has_content(buf, first_commas + 1, ts_opens)
        or _has_content(buf, ts_closes + 1, after_timestamp)
    ):
        raise _UnusualLayout("not exactly one timestamp string, second, in every entry")

    entry_layer = np.searchsorted(layer_opens, entry_opens) - 1
    entries_per_layer = np.bincount(entry_layer, minlength=n_layers)
    separators = structural[is_comma & (depth == 1)]
    separators_per_layer = np.bincount(
        np.searchsorted(layer_opens, separators) - 1, minlength=n_layers
    )
    if np.any(separators_per_layer != np.maximum(entries_per_layer - 1, 0)) or np.count_nonzero(
        is_comma & (depth == 0)
    ) != max(n_layers - 1, 0):
        raise _UnusualLayout("layer lists hold something besides [..] entries")
    if np.any(key_opens[1:] < layer_closes[:-1]):
        raise _UnusualLayout("a key inside a layer list")
    names = _layer_names(data, key_opens, key_closes, layer_opens)
    for empty in np.flatnonzero(entries_per_layer == 0):
        if data[layer_opens[empty] + 1 : layer_closes[empty]].strip():
            raise _UnusualLayout(f"layer {names[empty]!r} holds bare values")

    try:
        latency = cast_float_spans(data, *strip_spans(buf, entry_opens + 1, first_commas))
        repeats = (
            cast_float_spans(data, *strip_spans(buf, table[:, 2] + 1, entry_closes))
            if per_entry == 4
            else np.ones(n_entries)
        )
    except pa.ArrowInvalid as exc:
        raise _UnusualLayout(f"a latency or repeats value is not a number ({exc})") from None
    end_ns, end_valid = decode_timestamp_spans(data, ts_opens + 1, ts_closes)
    return _Entries(
        layer_names=names,
        layer_index=entry_layer.astype(np.int64),
        latency_ms=latency,
        end_ns=end_ns,
        end_valid=end_valid,
        repeats=repeats,
        kind=np.full(n_entries, per_entry - 1, dtype=np.int8),
        duplicate_layers=[],
    )


def _skip_whitespace(buf: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """The first non-whitespace position at or after each position (clipped to the end)."""
    positions = np.minimum(positions, len(buf) - 1)
    active = np.arange(positions.size)
    while active.size:
        active = active[WHITESPACE[buf[positions[active]]] & (positions[active] < len(buf) - 1)]
        positions[active] += 1
    return positions


def _inside(positions: np.ndarray, span_starts: np.ndarray, span_ends: np.ndarray) -> np.ndarray:
    """Which (sorted) positions fall inside one of a few sorted, disjoint spans."""
    edges = np.zeros(positions.size + 1, dtype=np.int32)
    np.add.at(edges, np.searchsorted(positions, span_starts), 1)
    np.add.at(edges, np.searchsorted(positions, span_ends), -1)
    return np.cumsum(edges[:-1]) > 0


def _has_content(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> bool:
    """Whether any span holds something other than whitespace (one gather per byte offset
    of the widest span; separators are usually 0-1 bytes wide)."""
    lengths = ends - starts
    rows = np.flatnonzero(lengths > 0)
    offset = 0
    while rows.size:
        if not WHITESPACE[buf[starts[rows] + offset]].all():
            return True
        offset += 1
        rows = rows[lengths[rows] > offset]
    return False


def _layer_names(
    data: bytes, key_opens: np.ndarray, key_closes: np.ndarray, layer_opens: np.ndarray
) -> list[str]:
    """Decode the keys, checking each is followed by ``:`` and its layer list."""
    names = []
    for key_open, key_close, layer_open in zip(key_opens, key_closes, layer_opens, strict=True):
        if data[key_close + 1 : layer_open].strip() != b":":
            raise _UnusualLayout("a key not followed by its layer list")
        names.append(data[key_open + 1 : key_close].decode("utf-8"))
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
    entries: _Entries, source: str, parser: str, fallback_reason: str | None, max_reported: int
) -> tuple[pd.DataFrame, dict]:
    """Validate the entries and build the ``layer_windows`` frame and the report."""
    n_entries = len(entries.kind)
    kinds = set(np.unique(entries.kind).tolist())
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
    first_index = np.concatenate(
        ([0], np.cumsum(np.bincount(entries.layer_index, minlength=len(entries.layer_names)))[:-1])
    )
    cycle = np.arange(n_entries) - first_index[entries.layer_index] + 1
    repeats = entries.repeats
    valid = entries.kind == _BARE if bare else (entries.kind == 2) | (entries.kind == 3)
    valid &= np.isfinite(entries.latency_ms) & (entries.latency_ms >= 0)
    valid &= np.isfinite(repeats) & (repeats >= 1) & (np.floor(repeats) == repeats)
    if not bare:
        valid &= entries.end_valid

    keep = slice(None) if valid.all() else valid  # avoid copies in the common case
    latency_ms, repeats = entries.latency_ms[keep], repeats[keep]
    end_ns = entries.end_ns[keep]
    start_ns = end_ns - np.rint(latency_ms * repeats * 1e6).astype(np.int64)
    timed = np.full(len(end_ns), not bare)
    frame = pd.DataFrame(
        {
            "layer_name": pd.Categorical.from_codes(
                entries.layer_index[keep], categories=entries.layer_names
            ),
            "cycle": cycle[keep].astype(np.int64),
            "start": as_datetime64(start_ns, timed),
            "end": as_datetime64(end_ns, timed),
            "latency_ms": latency_ms,
            "repeats": repeats.astype(np.int64),
        }
    )
    invalid = np.flatnonzero(~valid)
    cycles = np.bincount(entries.layer_index, minlength=len(entries.layer_names))
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
        "first_invalid_entries": [
            f"{entries.layer_names[entries.layer_index[i]]} cycle {cycle[i]}"
            for i in invalid[:max_reported]
        ],
        "cycles_per_layer": {
            "min": int(cycles.min()) if cycles.size else 0,
            "max": int(cycles.max()) if cycles.size else 0,
        },
        "duplicate_layers": entries.duplicate_layers,
    }
    _log_findings(report)
    return frame, report


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
    if report["cycles_per_layer"]["min"] != report["cycles_per_layer"]["max"]:
        logger.info("%s: layers have different cycle counts %s", source, report["cycles_per_layer"])
    if report["duplicate_layers"]:
        logger.warning(
            "%s: duplicate layer names %s (the last one kept)", source, report["duplicate_layers"]
        )
