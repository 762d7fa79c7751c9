"""One model's big raw files parsed into its ``layer_windows`` and ``power_samples`` tables.

Plain functions of a file loader (a picklable callable returning the file's bytes), so that
ingestion can run them in the Kedro process or in a worker process / on a Dask worker
(``power_modelling.parallel``): each reads its file itself and returns the table with the
parser's report.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa

from power_modelling.core.pages import on_ordinary_pages
from power_modelling.core.raw.latency import LatencyFileError, parse_layer_latency
from power_modelling.core.raw.plausibility import PlausibleRanges, Range
from power_modelling.core.raw.power_log import parse_power_log

logger = logging.getLogger(__name__)

Loader = Callable[[], bytes]


@dataclass
class LatencyResult:
    """A model's windows (``layer_name`` as text), the parser's report, the layer names that
    were timed, and why the file is unusable (``None``: it is usable)."""

    windows: pd.DataFrame
    report: dict
    timed_names: list[str]
    skipped: str | None = None


@on_ordinary_pages
def read_latency_file(
    load: Loader, source: str, max_reported_lines: int, ranges: PlausibleRanges | None = None
) -> LatencyResult:
    """Parse ``trt_layer_latency.json`` (once; entries outside ``ranges`` dropped); an
    unusable file gives no windows, its report (of an empty file) and the reason."""
    skipped = None
    try:
        windows, report = parse_layer_latency(load(), source, max_reported_lines, ranges)
    except LatencyFileError as exc:
        skipped = str(exc)
        parser_logger = logging.getLogger(parse_layer_latency.__module__)
        was = parser_logger.disabled
        parser_logger.disabled = True  # the empty stand-in's findings are not the file's
        try:
            windows, report = parse_layer_latency(b"{}", "", 0)
        finally:
            parser_logger.disabled = was
    names = windows["layer_name"]
    timed = [str(name) for name in names.cat.categories]
    return LatencyResult(windows.assign(layer_name=_as_text(names)), report, timed, skipped)


@on_ordinary_pages
def read_power_log_file(
    load: Loader | None,
    source: str,
    max_reported_lines: int,
    power_range_uw: Range | None = None,
) -> tuple[pd.DataFrame, dict]:
    """Parse ``<model>_power_log.log`` (once; ``None``: no usable file, no samples; readings
    outside ``power_range_uw`` dropped) → the samples in time order and the parser's report."""
    content = b"" if load is None else load()
    power, report = parse_power_log(content, source, max_reported_lines, power_range_uw)
    if report["out_of_order_samples"]:
        power = power.sort_values("timestamp", kind="stable", ignore_index=True)
    return power, report


def _as_text(names: pd.Series) -> pd.Series:
    """A categorical column as a text column, decoded by Arrow from the codes (millions of
    windows share a few hundred names)."""
    categories = pa.array([str(c) for c in names.cat.categories], type=pa.large_string())
    codes = pa.array(names.cat.codes.to_numpy(), mask=names.isna().to_numpy())
    decoded = pa.DictionaryArray.from_arrays(codes, categories).cast(pa.large_string())
    return pd.Series(pd.array(decoded, dtype="str"), index=names.index, name=names.name)
