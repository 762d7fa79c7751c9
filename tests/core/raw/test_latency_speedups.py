"""The latency fast path's machinery: chunked parallel scans, the byte-chain checks, word-wise
timestamp decoding and the span helpers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from power_modelling.core.raw import latency
from power_modelling.core.raw.latency import LatencyFileError, parse_layer_latency
from power_modelling.core.raw.spans import byte_positions, strip_spans
from power_modelling.core.raw.timestamps import decode_timestamp_spans, parse_timestamps

TS = "20241121-05:20:04.261448"
TS2 = "20241121-05:20:05.261448"


def _entries_equal(left: latency._Entries, right: latency._Entries) -> None:
    assert left.layer_names == right.layer_names
    assert left.kind == right.kind
    for field in ("layer_index", "latency_ms", "end_ns", "end_valid"):
        np.testing.assert_array_equal(getattr(left, field), getattr(right, field))
    if left.repeats is None:
        assert right.repeats is None
    else:
        np.testing.assert_array_equal(left.repeats, right.repeats)


def _layers(n_layers: int, n_entries: int, three: bool = False) -> dict:
    stamps = pd.date_range("2024-11-21 05:20:04", periods=n_layers * n_entries, freq="37ms")
    texts = stamps.strftime("%Y%m%d-%H:%M:%S.%f").tolist()
    return {
        f"layer [{layer}], µ": [
            [0.125 * (i % 7), texts[layer * n_entries + i], *([i + 1] if three else [])]
            for i in range(n_entries)
        ]
        for layer in range(n_layers)
    }


@pytest.mark.parametrize("chunks", [2, 3, 7])
@pytest.mark.parametrize("three", [False, True])
def test_chunked_scan_equals_one_chunk(chunks, three):
    obj = _layers(6, 5, three) | {"empty": []}
    data = json.dumps(obj, ensure_ascii=False).encode()
    single = latency._scan(data, chunks=1)
    _entries_equal(latency._scan(data, chunks=chunks, min_strings=0), single)
    assert single.layer_names[-1] == "empty" and single.kind == (3 if three else 2)
    np.testing.assert_array_equal(single.layer_index, np.repeat(np.arange(6), 5))


def test_chunk_bounds_start_at_layer_names():
    data = json.dumps(_layers(4, 3)).encode()  # strings: key, 3 timestamps, key, ...
    buf = np.frombuffer(data, dtype=np.uint8)
    closes = byte_positions(buf, ord('"'))[1::2]
    assert latency._chunk_bounds(buf, closes, 2) == [0, 8, 16]
    assert latency._chunk_bounds(buf, closes, 4) == [0, 4, 8, 12, 16]
    assert latency._chunk_bounds(buf, closes, 1) == [0, 16]
    one_layer = json.dumps(_layers(1, 5)).encode()
    buf = np.frombuffer(one_layer, dtype=np.uint8)
    assert latency._chunk_bounds(buf, byte_positions(buf, ord('"'))[1::2], 2) == [0, 6]


def test_large_files_are_split_with_identical_results(monkeypatch):
    data = json.dumps(_layers(5, 40), indent=1, ensure_ascii=False).encode()
    expected, _ = parse_layer_latency(data, "x.json")
    monkeypatch.setattr(latency, "MIN_STRINGS_TO_SPLIT", 10)
    monkeypatch.setattr(latency, "PARALLEL_CHUNKS", 3)
    frame, report = parse_layer_latency(data, "x.json")
    assert report["parser"] == "fast" and report["layers"] == 5 and report["windows"] == 200
    pd.testing.assert_frame_equal(frame, expected)


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 4), min_size=1, max_size=6),
    three=st.booleans(),
    indent=st.sampled_from([None, 0, 3]),
    chunks=st.integers(2, 5),
)
def test_any_split_gives_the_same_entries(sizes, three, indent, chunks):
    stamps = [TS[:-1] + str(i % 10) for i in range(sum(sizes))]
    obj, used = {}, 0
    for layer, size in enumerate(sizes):
        obj[f"l{layer}"] = [[i / 8, stamps[used + i], *([2] if three else [])] for i in range(size)]
        used += size
    data = json.dumps(obj, indent=indent).encode()
    try:
        single = latency._scan(data, chunks=1)
    except latency._UnusualLayout:
        assert not any(sizes)  # only a file without entries leaves the fast path
        with pytest.raises(latency._UnusualLayout):
            latency._scan(data, chunks=chunks, min_strings=0)
        return
    _entries_equal(latency._scan(data, chunks=chunks, min_strings=0), single)


@pytest.mark.parametrize(
    "text",
    [
        '{"a": [[0.5, "TS"] x, [0.5, "TS"]]}',  # junk between entries
        '{"a": [[0.5, "TS"]] "b": [[0.5, "TS"]]}',  # no comma between layers
        '{"a": [[0.5, "TS"]],, "b": [[0.5, "TS"]]}',  # two commas
        '{"a": [[0.5, "TS"], [0.5, "TS"],]}',  # trailing comma
        '{"a": [[0.5 "TS"]]}',  # no comma inside the entry
        '{"a": [[0.5, "TS"]], "x", "b": [[0.5, "TS"]]}',  # a stray string
        '{"a": [[0.5, "TS"]] x}',  # junk after the last layer
        '{x "a": [[0.5, "TS"]]}',  # junk before the first layer
        '{"a": [[0.5, "TS"]\x0b]}',  # a control character is not whitespace
        '{"a": [[0.5, "TS", 3], [0.5, "TS", 4 x]]}',  # junk after repeats
    ],
)
def test_malformed_chains_leave_the_fast_path_and_fail_as_json(text):
    data = text.replace("TS", TS).encode()
    with pytest.raises(latency._UnusualLayout):
        latency._scan(data)
    with pytest.raises(LatencyFileError, match="bad.json: unreadable JSON"):
        parse_layer_latency(data, "bad.json")


def test_non_utf8_layer_name_fails_as_json():
    data = b'{"a\xff": [[0.5, "' + TS.encode() + b'"]]}'
    with pytest.raises(LatencyFileError, match="unreadable JSON"):
        parse_layer_latency(data, "bad.json")


def test_uneven_whitespace_and_mixed_entry_lengths():
    data = f'{{ "a" :[ [ 1 ,\n"{TS}" ] ,[2,"{TS2}"]\t],"b":[[3, "{TS}"]] }}'.encode()
    frame, report = parse_layer_latency(data, "x.json")
    assert report["parser"] == "fast"
    assert frame["latency_ms"].tolist() == [1.0, 2.0, 3.0]
    assert frame["cycle"].tolist() == [1, 2, 1]
    mixed = f'{{"a": [[1, "{TS}"], [2, "{TS2}", 3]]}}'.encode()
    frame, report = parse_layer_latency(mixed, "x.json")
    assert report["parser"] == "json" and report["form"] == "mixed"
    assert frame["repeats"].tolist() == [1, 3]


def test_skip_whitespace_moves_dense_and_sparse_runs():
    buf = np.frombuffer(b"{a  b c\t\x0bd}", dtype=np.uint8)
    positions = np.array([1, 2, 5, 7], dtype=np.int32)
    np.testing.assert_array_equal(latency._skip_whitespace(buf, positions), [1, 4, 6, 8])
    np.testing.assert_array_equal(latency._skip_whitespace(buf, np.array([2, 3])), [4, 4])
    np.testing.assert_array_equal(latency._skip_whitespace(buf, np.array([3]), step=-1), [1])
    assert latency._skip_whitespace(buf, np.zeros(0, dtype=np.int32)).size == 0


def test_byte_positions_across_blocks():
    rng = np.random.default_rng(3)
    buf = rng.choice(np.frombuffer(b'ab"', dtype=np.uint8), 10_001)
    expected = np.flatnonzero(buf == ord('"'))
    for block in (7, 1000, 1 << 20):
        found = byte_positions(buf, ord('"'), block=block)
        assert found.dtype == np.int32
        np.testing.assert_array_equal(found, expected)
    assert byte_positions(np.zeros(0, dtype=np.uint8), 1).size == 0


def test_strip_spans_keeps_control_characters():
    buf = np.frombuffer(b"  1 \x0b2\x0b  \t ", dtype=np.uint8)
    starts, ends = strip_spans(buf, np.array([0, 4, 7]), np.array([4, 7, 11]))
    assert starts.tolist() == [2, 4, 11] and ends.tolist() == [3, 7, 11]


_STAMP = st.tuples(
    st.datetimes(min_value=pd.Timestamp("1700-01-01"), max_value=pd.Timestamp("2260-12-31")),
    st.integers(1, 6),
)


@settings(max_examples=60, deadline=None)
@given(
    first=_STAMP,
    steps_us=st.lists(st.integers(0, 30_000_000), min_size=1, max_size=40),
    garbage=st.lists(st.tuples(st.integers(0, 39), st.integers(0, 23)), max_size=3),
    tail=st.integers(0, 30),
)
def test_word_decoding_matches_the_reference_parser(first, steps_us, garbage, tail):
    """Runs of shared date and ten-second prefixes, varying fraction widths, corrupted
    bytes, spans near the end of the data (the fallback path): all as ``parse_timestamps``."""
    start, digits = first
    times = pd.Timestamp(start) + pd.to_timedelta(np.cumsum(steps_us), unit="us")
    texts = [t.strftime("%Y%m%d-%H:%M:%S.%f")[: 18 + digits] for t in times]
    for row, column in garbage:
        if row < len(texts) and column < len(texts[row]):
            texts[row] = texts[row][:column] + "x" + texts[row][column + 1 :]
    data = ("," + ",".join(texts) + "," * tail).encode()
    starts = np.cumsum([1] + [len(t) + 1 for t in texts[:-1]])
    ends = starts + np.array([len(t) for t in texts])
    nanoseconds, valid = decode_timestamp_spans(data, starts, ends)
    expected = parse_timestamps(texts)
    np.testing.assert_array_equal(valid, ~np.isnat(expected))
    np.testing.assert_array_equal(nanoseconds[valid], expected[valid].view(np.int64))
    assert not nanoseconds[~valid].any()
