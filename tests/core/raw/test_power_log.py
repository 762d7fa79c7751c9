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
        "out_of_order_samples": 0,
    }


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
    st.integers(0, 10**7),
)
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
    valid = [(t, p) for _, t, p in lines if t is not None]
    # The file's shape is that of most valid lines: the "mW" lines must outnumber 3-field ones.
    assume(len(valid) > sum(text == _OTHER_SHAPE for text, _, _ in lines))
    data = "\n".join(text for text, _, _ in lines).encode()
    frame, report = parse_power_log(data, "mixed.log")
    assert report["valid"] == len(valid)
    assert frame["timestamp"].tolist() == [t for t, _ in valid]
    assert frame["power_uw"].tolist() == [p for _, p in valid]
    assert report["valid"] + report["blank"] + report["malformed"] == report["lines_total"]
