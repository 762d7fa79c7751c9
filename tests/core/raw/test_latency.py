"""Layer latency files: both dialects, the old form, bad entries, fast path vs JSON fallback."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from power_modelling.core.raw import latency
from power_modelling.core.raw.latency import LatencyFileError, parse_layer_latency
from power_modelling.core.raw.plausibility import PlausibleRanges

TS = "20241121-05:20:04.261448"
TS2 = "20241121-05:20:05.261448"
TS3 = "20241121-05:20:06.261448"


def _ns(text: str) -> pd.Timestamp:
    return pd.Timestamp(text.replace("-", " ", 1))


def test_jetson_two_element_entries():
    data = json.dumps({"conv1": [[0.5, TS], [0.25, "20241121-05:20:05.1"]], "fc": [[2, TS]]})
    frame, report = parse_layer_latency(data.encode(), "lat.json")
    assert report["parser"] == "fast" and report["form"] == "2-element"
    assert frame["layer_name"].astype(str).tolist() == ["conv1", "conv1", "fc"]
    assert frame["cycle"].tolist() == [1, 2, 1]
    assert frame["repeats"].tolist() == [1, 1, 1]
    assert frame["end"].iloc[1] == _ns("20241121-05:20:05.1")
    assert frame["start"].iloc[0] == _ns(TS) - pd.Timedelta(microseconds=500)
    assert frame["start"].iloc[2] == _ns(TS) - pd.Timedelta(milliseconds=2)
    assert [str(t) for t in frame.dtypes] == [
        "category",
        "int64",
        "datetime64[ns]",
        "datetime64[ns]",
        "float64",
        "int64",
    ]


def test_nvml_three_element_entries_span_all_repeats():
    data = json.dumps({"conv1": [[0.01, TS, 300]]}, indent=2).encode()
    frame, report = parse_layer_latency(data, "lat.json")
    assert report["form"] == "3-element" and report["has_power_windows"]
    assert frame["repeats"].tolist() == [300]
    assert frame["end"].iloc[0] - frame["start"].iloc[0] == pd.Timedelta(milliseconds=3)


def test_old_form_keeps_runtimes_without_windows(caplog):
    frame, report = parse_layer_latency(b'{"a": [1.5, 2.5], "b": [3]}', "old.json")
    assert report["form"] == "bare" and not report["has_power_windows"]
    assert report["parser"] == "json"
    assert frame["latency_ms"].tolist() == [1.5, 2.5, 3.0]
    assert frame["cycle"].tolist() == [1, 2, 1]
    assert frame["start"].isna().all() and frame["end"].isna().all()
    assert "old.json: old form (bare latencies, no timestamps)" in caplog.text


def test_invalid_entries_are_dropped_counted_and_named():
    data = json.dumps(
        {
            "a": [[0.5, TS], [0.5, "2024-11-21 05:20:04"], [-1, TS], [0.5, TS2]],
            "b": [[0.5, TS], [0.5], 7, [None, TS]],
        }
    ).encode()
    frame, report = parse_layer_latency(data, "bad.json", max_reported=3)
    assert report["parser"] == "json" and report["form"] == "2-element"
    assert report["entries"] == 8 and report["windows"] == 3
    assert report["invalid_entries"] == 5
    assert report["first_invalid_entries"] == ["a cycle 2", "a cycle 3", "b cycle 2"]
    assert frame["cycle"].tolist() == [1, 4, 1]  # cycles keep the entry index


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"a": [[0.5, "x"]', "bad.json: unreadable JSON"),
        (b"[1, 2]", "bad.json: expected an object {layer: [entries]}"),
        (b'{"a": 5}', "bad.json: layer 'a': expected a list of entries, got int"),
    ],
)
def test_unusable_files_raise_naming_the_file(data, message):
    with pytest.raises(LatencyFileError, match=message.replace("[", r"\[").replace("{", r"\{")):
        parse_layer_latency(data, "bad.json")


def test_names_with_brackets_commas_and_unicode_stay_on_the_fast_path():
    name = "Reformatting CopyNode for [CONVOLUTION]-[/conv1], µ"
    data = json.dumps({name: [[0.5, TS]], "empty": []}, ensure_ascii=False).encode()
    frame, report = parse_layer_latency(data, "names.json")
    assert report["parser"] == "fast"
    assert frame["layer_name"].astype(str).tolist() == [name]
    assert report["layers"] == 2


_ENTRY = st.tuples(
    st.one_of(st.floats(0, 1e3, allow_nan=False, allow_infinity=False), st.integers(0, 10**6)),
    st.datetimes(min_value=pd.Timestamp("2000-01-01"), max_value=pd.Timestamp("2100-01-01")),
    st.integers(1, 6),
    st.integers(1, 10**4),
)


@settings(max_examples=60, deadline=None)
@given(
    layers=st.dictionaries(
        st.text(min_size=1, max_size=8).filter(lambda s: not set(json.dumps(s)) & set("\\{}")),
        st.lists(_ENTRY, max_size=6),
        min_size=1,
        max_size=5,
    ),
    three=st.booleans(),
    indent=st.sampled_from([None, 0, 2]),
    separators=st.sampled_from([(",", ":"), (", ", ": "), (" ,  ", " :  ")]),
    exponent=st.booleans(),
)
def test_fast_path_equals_json_fallback(layers, three, indent, separators, exponent):
    def entry(value, stamp, digits, repeats):
        text = stamp.strftime("%Y%m%d-%H:%M:%S.%f")[: 18 + digits]
        number = float(f"{value:e}") if exponent else value
        return [number, text, repeats] if three else [number, text]

    obj = {name: [entry(*e) for e in entries] for name, entries in layers.items()}
    data = json.dumps(obj, indent=indent, separators=separators).encode()
    if exponent:  # force exponent notation the way other writers emit it
        data = data.replace(b"e-0", b"E-0")
    fast, fast_report = parse_layer_latency(data, "x.json")
    fallback, _ = latency._windows(latency._load_json(data, "x.json"), "x.json", "json", None, 5)
    if any(obj.values()):
        assert fast_report["parser"] == "fast", fast_report["fallback_reason"]
    pd.testing.assert_frame_equal(fast, fallback)
    expected = [e[0] for entries in obj.values() for e in _first_of_each_end(entries)]
    np.testing.assert_array_equal(fast["latency_ms"].to_numpy(), np.asarray(expected, float))


def _first_of_each_end(entries: list[list]) -> list[list]:
    """A layer's entries without those ending when an earlier one does."""
    seen: set[pd.Timestamp] = set()
    return [e for e in entries if not (_ns(e[1]) in seen or seen.add(_ns(e[1])))]


def test_implausible_latencies_windows_and_repeated_ends_are_dropped_counted_and_named(caplog):
    ranges = PlausibleRanges(power_uw=(0.0, 1e9), latency_ms=(0.0, 1e3), window_ms=(0.0, 1e4))
    data = json.dumps(
        {
            "conv": [[0.5, TS, 10], [1e12, TS2, 10], [0.5, TS, 10], [2.0, TS3, 10]],
            "fc": [[0.5, TS, 1], [20.0, TS2, 1000], [0.5, TS3, 1]],
        }
    ).encode()
    frame, report = parse_layer_latency(data, "lat.json", ranges=ranges)
    assert frame["layer_name"].astype(str).tolist() == ["conv", "conv", "fc", "fc"]
    assert frame["cycle"].tolist() == [1, 4, 1, 3]
    assert (report["entries"], report["windows"], report["invalid_entries"]) == (7, 4, 0)
    assert report["out_of_range_entries"] == 2  # a 1e12 ms latency, a 20 s window (20 ms x 1000)
    assert report["first_out_of_range_entries"] == ["conv cycle 2", "fc cycle 2"]
    assert (report["duplicate_entries"], report["first_duplicate_entries"]) == (1, ["conv cycle 3"])
    assert report["plausible"] == {"latency_ms": [0.0, 1e3], "window_ms": [0.0, 1e4]}
    assert (
        "lat.json: dropped 2 entr(y/ies) outside the plausible latency [0.0, 1000.0] ms or window "
        "[0.0, 10000.0] ms (first: ['conv cycle 2', 'fc cycle 2'])" in caplog.text
    )
    assert (
        "lat.json: dropped 1 entr(y/ies) ending when an earlier entry of their layer ends "
        "(first: ['conv cycle 3'])" in caplog.text
    )


def test_without_ranges_only_repeated_ends_are_dropped():
    data = json.dumps({"a": [[1e12, TS], [0.5, TS]]}).encode()
    frame, report = parse_layer_latency(data, "lat.json")
    assert frame["latency_ms"].tolist() == [1e12]
    assert (report["out_of_range_entries"], report["duplicate_entries"]) == (0, 1)
    assert report["plausible"] is None


_RANGES = PlausibleRanges(power_uw=(0.0, 1.0), latency_ms=(0.0, 500.0), window_ms=(0.0, 5e4))


@settings(max_examples=60, deadline=None)
@given(
    layers=st.dictionaries(st.sampled_from("abc"), st.lists(_ENTRY, max_size=6), min_size=1),
    three=st.booleans(),
)
def test_range_filtering_keeps_exactly_the_plausible_first_entries(layers, three):
    obj = {
        name: [
            [value, stamp.strftime("%Y%m%d-%H:%M:%S.%f")[: 18 + digits], *([repeats] * three)]
            for value, stamp, digits, repeats in entries
        ]
        for name, entries in layers.items()
    }
    frame, report = parse_layer_latency(json.dumps(obj).encode(), "x.json", ranges=_RANGES)
    expected, out_of_range, repeated = [], 0, 0
    for name, entries in obj.items():
        seen: set[pd.Timestamp] = set()
        for cycle, entry in enumerate(entries, start=1):
            window = entry[0] * (entry[2] if three else 1)
            if not (0 <= entry[0] <= 500 and 0 <= window <= 5e4):
                out_of_range += 1
            elif _ns(entry[1]) in seen:
                repeated += 1
            else:
                seen.add(_ns(entry[1]))
                expected.append((name, cycle, float(entry[0])))
    got = zip(frame["layer_name"].astype(str), frame["cycle"], frame["latency_ms"], strict=True)
    assert list(got) == expected
    assert (report["out_of_range_entries"], report["duplicate_entries"]) == (out_of_range, repeated)
    assert (
        report["windows"] + report["out_of_range_entries"] + report["duplicate_entries"]
        == (report["entries"])
    )
