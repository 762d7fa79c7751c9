"""Vectorised timestamp decoding."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from power_modelling.core.raw.timestamps import parse_timestamps


def test_decodes_fractions_of_one_to_six_digits():
    parsed = parse_timestamps(
        ["20241121-05:20:04.261448", "20241121-00:00:01.5", b"20240229-23:59:59.12"]
    )
    assert parsed.dtype == np.dtype("datetime64[ns]")
    assert list(parsed) == [
        np.datetime64("2024-11-21T05:20:04.261448", "ns"),
        np.datetime64("2024-11-21T00:00:01.500000", "ns"),
        np.datetime64("2024-02-29T23:59:59.120000", "ns"),
    ]


def test_invalid_timestamps_are_nat_not_errors():
    bad = [
        "20230229-00:00:01.5",  # no 29 February in 2023
        "20241321-00:00:01.5",  # month 13
        "20241121-24:00:01.5",  # hour 24
        "20241121-05:20:04.",  # no fraction digit
        "20241121-05:20:04.2614481",  # 7 fraction digits
        "20241121 05:20:04.261448",  # wrong separator
        " 20241121-05:20:04.261448",
        "20241121-05:2a:04.261448",
        "",
        "29991121-05:20:04.261448",  # outside datetime64[ns]
    ]
    assert np.isnat(parse_timestamps(bad)).all()


def test_fixed_width_bytes_array_input():
    values = np.array([b"20241121-05:20:04.261448", b"20241121-05:20:04.1"], dtype="S24")
    assert parse_timestamps(values)[1] == np.datetime64("2024-11-21T05:20:04.1", "ns")


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.datetimes(
                min_value=pd.Timestamp("1700-01-01"), max_value=pd.Timestamp("2260-12-31")
            ),
            st.integers(1, 6),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_matches_pandas(stamps):
    texts = [t.strftime("%Y%m%d-%H:%M:%S.%f")[: 18 + digits] for t, digits in stamps]
    expected = pd.to_datetime(texts, format="%Y%m%d-%H:%M:%S.%f").to_numpy("datetime64[ns]")
    np.testing.assert_array_equal(parse_timestamps(texts), expected)
