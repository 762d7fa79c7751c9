"""Power logs of both dialects, bad lines, and a property test over garbage."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from power_modelling.core.raw.power_log import parse_power_log

JETSON_LOG = (
    b"20241121-05:20:04.261448,5000.0,1096.0\n"
    b"20241121-05:20:04.262448,5000.0,1100.5\n"
    b"\n"
    b"20241121-05:20:04.26x448,5000.0,1100.5\n"
    b"20241121-05:20:04.263448,5000.0\n"  # Jetson line cut after the voltage
    b"20241121-05:20:04.264,4990.0,1000.0\r\n"
    b"20241121-05:20:04.2654"  # truncated last line
)


def test_jetson_log_counts_and_values():
    frame, report = parse_power_log(JETSON_LOG, "jetson.log")
    assert list(frame.columns) == ["timestamp", "power_uw"]
    assert frame["timestamp"].dtype == np.dtype("datetime64[ns]")
    assert frame["power_uw"].tolist() == [5000.0 * 1096.0, 5000.0 * 1100.5, 4990.0 * 1000.0]
    assert frame["timestamp"].iloc[2] == pd.Timestamp("2024-11-21 05:20:04.264")
    assert report == {
        "source": "jetson.log",
        "shape": "mV,mA",
        "lines_total": 7,
        "valid": 3,
        "blank": 1,
        "malformed": 3,
        "other_shape_lines": 1,
        "truncated_last_line": True,
        "first_malformed_lines": [4, 5, 7],
        "first_blank_lines": [3],
        "plausible_power_uw": None,
        "out_of_range": 0,
        "first_out_of_range_lines": [],
        "first_out_of_range_values_uw": [],
        "duplicate_timestamps": 0,
        "first_duplicate_timestamp_lines": [],
        "out_of_order_samples": 0,
    }


def test_implausible_readings_and_repeated_timestamps_are_dropped_counted_and_named(caplog):
    data = (
        b"20241121-05:20:04.1,5000,1000\n"  # 5 W
        b"20241121-05:20:04.2,5000,-1000\n"  # negative power
        b"20241121-05:20:04.3,5000,1000\n"
        b"20241121-05:20:04.1,5000,1200\n"  # the timestamp of line 1 again
        b"20241121-05:20:04.4,5000,9e9\n"  # 45 GW
        b"20241121-05:20:04.3,5000,1000\n"  # line 3 again
        b"20241121-05:20:04.5,5000,1000\n"
    )
    frame, report = parse_power_log(data, "j.log", max_reported_lines=5, power_range_uw=(0, 3e8))
    assert frame["timestamp"].dt.strftime("%S.%f").tolist() == [
        "04.100000",
        "04.300000",
        "04.500000",
    ]
    assert frame["power_uw"].tolist() == [5e6, 5e6, 5e6]
    assert (report["valid"], report["out_of_range"], report["duplicate_timestamps"]) == (3, 2, 2)
    assert report["first_out_of_range_lines"] == [2, 5]
    assert report["first_out_of_range_values_uw"] == [-5e6, 4.5e13]
    assert report["first_duplicate_timestamp_lines"] == [4, 6]
    assert report["plausible_power_uw"] == [0.0, 3e8]
    assert report["out_of_order_samples"] == 0  # the repeats were the out-of-order lines
    assert (
        "j.log: dropped 2 reading(s) outside the plausible range [0, 3e+08] µW (first: line 2, "
        "-5e+06 µW)" in caplog.text
    )
    assert "j.log: dropped 2 reading(s) repeating an earlier line's timestamp (first: line 4)" in (
        caplog.text
    )


def test_an_unsorted_log_keeps_the_first_line_of_each_timestamp():
    data = b"20241121-05:20:04.3,7\n20241121-05:20:04.1,8\n20241121-05:20:04.3,9\n"
    frame, report = parse_power_log(data, "n.log")
    assert frame["power_uw"].tolist() == [7000.0, 8000.0]
    assert (report["duplicate_timestamps"], report["first_duplicate_timestamp_lines"]) == (1, [3])
    assert report["out_of_order_samples"] == 1


def test_nvml_log_in_milliwatts():
    data = b"20261127-12:41:35.104221,249580\n20261127-12:41:35.1,249\n  \nnot a line\n"
    frame, report = parse_power_log(data, "nvml.log")
    assert frame["power_uw"].tolist() == [249_580_000.0, 249_000.0]
    assert (report["shape"], report["valid"], report["blank"], report["malformed"]) == (
        "mW",
        2,
        1,
        1,
    )
    assert report["first_malformed_lines"] == [4]
    assert report["out_of_order_samples"] == 1
    assert not report["truncated_last_line"]


def test_reports_only_the_first_few_bad_lines(caplog):
    data = b"garbage\n" * 9
    frame, report = parse_power_log(data, "bad.log", max_reported_lines=3)
    assert frame.empty and report["malformed"] == 9
    assert report["first_malformed_lines"] == [1, 2, 3]
    assert "bad.log: skipped 9 malformed line(s)" in caplog.text


def test_empty_file():
    frame, report = parse_power_log(b"", "empty.log")
    assert frame.empty and report["lines_total"] == 0 and report["shape"] is None


_VALID = st.builds(
    lambda t, digits, mw: (
        t.strftime("%Y%m%d-%H:%M:%S.%f")[: 18 + digits] + f",{mw}",
        pd.Timestamp(t.strftime("%Y%m%d-%H:%M:%S.%f")[: 18 + digits].replace("-", " ", 1)),
        mw * 1000.0,
    ),
    st.datetimes(min_value=pd.Timestamp("2000-01-01"), max_value=pd.Timestamp("2100-01-01")),
    st.integers(1, 6),
    st.integers(-(10**4), 10**7),
)
#: µW: readings of -10 W .. 10 kW are generated, those outside 0 .. 5 kW must be dropped
PLAUSIBLE = (0.0, 5e9)
_OTHER_SHAPE = "20241121-05:20:04.5,1,2"  # valid on its own, but not in an "mW" log
_GARBAGE = st.one_of(
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"),
        max_size=40,
    ),
    st.just("20241121-05:20:04.5,"),
    st.just(_OTHER_SHAPE),
    st.just("20241121-05:20:04.5,1e999"),
    st.just("20241121-05:20:04.5,nan"),
    st.just("20241121-05:20:04.5, 12"),
    st.just("20241131-05:20:04.5,12"),
)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.one_of(_VALID, _GARBAGE.map(lambda g: (g, None, None))), max_size=40))
def test_any_mix_of_valid_and_garbage_parses_the_valid_lines_exactly(lines):
    parsed = [(t, p) for _, t, p in lines if t is not None]
    # The file's shape is that of most valid lines: the "mW" lines must outnumber 3-field ones.
    assume(len(parsed) > sum(text == _OTHER_SHAPE for text, _, _ in lines))
    data = "\n".join(text for text, _, _ in lines).encode()
    frame, report = parse_power_log(data, "mixed.log", power_range_uw=PLAUSIBLE)
    # in range, then the first line of each timestamp
    in_range = [(t, p) for t, p in parsed if PLAUSIBLE[0] <= p <= PLAUSIBLE[1]]
    seen: set[pd.Timestamp] = set()
    valid = [(t, p) for t, p in in_range if not (t in seen or seen.add(t))]
    assert report["valid"] == len(valid)
    assert frame["timestamp"].tolist() == [t for t, _ in valid]
    assert frame["power_uw"].tolist() == [p for _, p in valid]
    assert report["out_of_range"] == len(parsed) - len(in_range)
    assert report["duplicate_timestamps"] == len(in_range) - len(valid)
    dropped = ("blank", "malformed", "out_of_range", "duplicate_timestamps")
    assert report["valid"] + sum(report[key] for key in dropped) == report["lines_total"]
