"""The aligned hourly market frame every later stage reads."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from cryptorl_core.schema import CRYPTO_SYMBOLS, MACRO_SYMBOLS, TRUE_REGIME_COL


@dataclass(frozen=True)
class GapReport:
    """Hourly gaps found in one symbol's raw file before they were filled.

    :param symbol: the symbol.
    :param n_missing_hours: hours absent from the file inside its own range.
    :param n_gaps: number of runs of consecutive missing hours.
    :param longest_gap_hours: length of the longest run.
    :param longest_gap_start: open time of the first missing hour of the longest run.
    """

    symbol: str
    n_missing_hours: int = 0
    n_gaps: int = 0
    longest_gap_hours: int = 0
    longest_gap_start: pd.Timestamp | None = None

    def as_dict(self) -> dict:
        d = {k: getattr(self, k) for k in ("symbol", "n_missing_hours", "n_gaps", "longest_gap_hours")}
        d["longest_gap_start"] = None if self.longest_gap_start is None else str(self.longest_gap_start)
        return d


@dataclass
class MarketData:
    """Hourly OHLCV for every symbol on one UTC index.

    ``frame`` has a contiguous hourly tz-aware UTC ``DatetimeIndex`` named ``timestamp``
    (bar open time) and the columns ``{SYMBOL}_{open,high,low,close,volume}`` for each
    symbol present. Macro symbols also have ``{SYMBOL}_is_open`` (1.0 when the market
    printed a bar in that hour, 0.0 when the value is carried forward from the past).
    Synthetic data adds :data:`~cryptorl_core.schema.TRUE_REGIME_COL`.

    :param frame: the aligned frame.
    :param source: where it came from (``"synthetic"`` or a folder path).
    :param gaps: per-symbol gap report of the raw files.
    :param notes: human-readable notes (dropped symbols, de-duplication applied, ...).
    """

    frame: pd.DataFrame
    source: str
    gaps: dict[str, GapReport] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def symbols(self) -> list[str]:
        """Symbols present, crypto first then macro, in canonical order."""
        cols = set(self.frame.columns)
        return [s for s in (*CRYPTO_SYMBOLS, *MACRO_SYMBOLS) if f"{s}_close" in cols]

    @property
    def crypto_symbols(self) -> list[str]:
        return [s for s in self.symbols if s in CRYPTO_SYMBOLS]

    @property
    def macro_symbols(self) -> list[str]:
        return [s for s in self.symbols if s in MACRO_SYMBOLS]

    @property
    def true_regime(self) -> pd.Series | None:
        """Ground-truth regime labels (synthetic data only)."""
        return self.frame[TRUE_REGIME_COL] if TRUE_REGIME_COL in self.frame else None

    @property
    def start(self) -> pd.Timestamp:
        return self.frame.index[0]

    @property
    def end(self) -> pd.Timestamp:
        """Open time of the last bar."""
        return self.frame.index[-1]
