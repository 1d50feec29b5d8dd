"""Put every symbol's bars on one contiguous hourly UTC index.

Range:

- start: the latest first bar among the crypto symbols, so every crypto column is
  defined from the first row. A macro symbol must also have a value by then (its
  first bar, or for daily bars its first visible hour); when one starts later, the
  frame starts there instead (and a note says so). Nothing is ever back-filled.
- end: the earliest last bar among the crypto symbols.

Crypto symbols have their missing hours filled by :func:`~cryptorl_core.data.gaps.fill_gaps`
(flat bar at the previous close, zero volume). Macro symbols are carried forward the
same way across every hour they did not print, including after their last bar, and get
``{SYM}_is_open``: 1.0 where the symbol printed a bar in that hour, else 0.0.
"""

from __future__ import annotations

import pandas as pd

from cryptorl_core.data.errors import MarketAlignmentError
from cryptorl_core.data.gaps import BAR_FREQ, fill_gaps
from cryptorl_core.schema import CRYPTO_SYMBOLS, MACRO_SYMBOLS, OHLCV, raw_column

TIME_COL = "timestamp"
IS_OPEN_FIELD = "is_open"


def common_range(
    crypto: dict[str, pd.DataFrame], macro: dict[str, pd.DataFrame]
) -> tuple[pd.Timestamp, pd.Timestamp, list[str]]:
    """First and last hour of the aligned frame (both inclusive).

    :param crypto: bars per crypto symbol (at least one), indexed by sorted open time.
    :param macro: bars per macro symbol, indexed by sorted open (or visibility) time.
    :return: ``(start, end, notes)``; notes explain a start delayed by a macro symbol.
    :raises MarketAlignmentError: when the range is empty.
    """
    if not crypto:
        raise MarketAlignmentError("no crypto symbol to align")
    start = max(bars.index[0] for bars in crypto.values())
    end = min(bars.index[-1] for bars in crypto.values())
    notes = []
    for symbol, bars in macro.items():
        if bars.index[0] > start:
            notes.append(
                f"start moved from {start} to {bars.index[0]}: {symbol} has no value before "
                "then and macro series are never back-filled"
            )
            start = bars.index[0]
    if start > end:
        raise MarketAlignmentError(
            f"the symbols share no common hour: aligned start {start} is after end {end} "
            f"(crypto {_spans(crypto)}; macro {_spans(macro)})"
        )
    return start, end, notes


def align_market(
    crypto: dict[str, pd.DataFrame], macro: dict[str, pd.DataFrame]
) -> tuple[pd.DataFrame, list[str]]:
    """Build the aligned market frame.

    :param crypto: validated bars per crypto symbol, indexed by UTC open time.
    :param macro: validated bars per macro symbol, indexed by the UTC hour from which
        each bar is visible (its open time for hourly data, see
        :mod:`~cryptorl_core.data.daily` for daily data).
    :return: the frame (contiguous hourly index ``timestamp``, columns
        ``{SYM}_{open,high,low,close,volume}`` and, for macro, ``{SYM}_is_open``, in
        canonical symbol order) and notes.
    """
    start, end, notes = common_range(crypto, macro)
    hours = pd.date_range(start, end, freq=BAR_FREQ, name=TIME_COL)
    blocks = []
    for symbol in _canonical(crypto):
        filled, _ = fill_gaps(crypto[symbol])
        blocks.append(_renamed(filled.reindex(hours), symbol))
    for symbol in _canonical(macro):
        filled, present = fill_gaps(macro[symbol], end=end)
        block = _renamed(filled.reindex(hours), symbol)
        block[raw_column(symbol, IS_OPEN_FIELD)] = present.reindex(hours).astype("float64")
        blocks.append(block)
    frame = pd.concat(blocks, axis=1)
    frame.index = hours
    return frame, notes


def _renamed(bars: pd.DataFrame, symbol: str) -> pd.DataFrame:
    return bars[list(OHLCV)].astype("float64").rename(columns=lambda f: raw_column(symbol, f))


def _canonical(by_symbol: dict[str, pd.DataFrame]) -> list[str]:
    order = (*CRYPTO_SYMBOLS, *MACRO_SYMBOLS)
    return sorted(by_symbol, key=lambda s: order.index(s) if s in order else len(order))


def _spans(by_symbol: dict[str, pd.DataFrame]) -> str:
    return ", ".join(f"{s} {b.index[0]}..{b.index[-1]}" for s, b in by_symbol.items()) or "none"
