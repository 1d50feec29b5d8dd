"""Find and fill missing hours of one symbol's bar series.

Fill rule (past values only): a missing hour gets ``open = high = low = close =`` the
close of the last bar before it, and ``volume = 0``, i.e. a flat, empty bar. Nothing
after the missing hour is ever used, so filling cannot leak the future. The same rule
carries macro series across closed hours, where a mask of printed hours records which
rows are real (``{SYM}_is_open``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cryptorl_core.data.market import GapReport
from cryptorl_core.schema import OHLCV

HOUR = pd.Timedelta(hours=1)
#: Frequency of every bar series.
BAR_FREQ = "h"
#: Volume of a filled (not traded / not printed) hour.
FILLED_VOLUME = 0.0


def find_gaps(index: pd.DatetimeIndex, symbol: str) -> GapReport:
    """Report the hours missing inside a sorted hourly index's own range.

    :param index: bar open times, sorted, unique, on hour boundaries.
    :param symbol: the symbol, for the report.
    :return: count of missing hours, number of gaps, longest gap and its first hour.
    """
    if len(index) < 2:
        return GapReport(symbol=symbol)
    steps = np.diff(index.as_unit("ns").asi8) // HOUR.value  # hours between bars
    missing = steps - 1
    is_gap = missing > 0
    if not is_gap.any():
        return GapReport(symbol=symbol)
    longest = int(np.argmax(missing))
    return GapReport(
        symbol=symbol,
        n_missing_hours=int(missing[is_gap].sum()),
        n_gaps=int(is_gap.sum()),
        longest_gap_hours=int(missing[longest]),
        longest_gap_start=index[longest] + HOUR,
    )


def fill_gaps(
    bars: pd.DataFrame, end: pd.Timestamp | None = None
) -> tuple[pd.DataFrame, pd.Series]:
    """Put bars on a contiguous hourly index, filling missing hours from the past.

    :param bars: OHLCV bars indexed by sorted, unique UTC open times.
    :param end: last hour of the output (default: the last bar); hours after the last
        bar are filled like any other missing hour.
    :return: the filled frame (first bar to ``end``) and a boolean Series, True where
        the hour held a real bar.
    """
    last = bars.index[-1] if end is None else max(end, bars.index[-1])
    hours = pd.date_range(bars.index[0], last, freq=BAR_FREQ, name=bars.index.name)
    hours = hours.as_unit(bars.index.unit)
    filled = bars[list(OHLCV)].reindex(hours)
    present = pd.Series(filled["close"].notna().to_numpy(), index=hours, name="present")
    last_close = filled["close"].ffill()
    for field in ("open", "high", "low", "close"):
        filled[field] = filled[field].where(present, last_close)
    filled["volume"] = filled["volume"].where(present, FILLED_VOLUME)
    return filled, present
