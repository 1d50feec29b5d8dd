"""Range-based and realised volatility estimators (per-hour units, rolling means)."""

from __future__ import annotations

import numpy as np
import pandas as pd

LN2 = np.log(2.0)


def parkinson(high: pd.Series, low: pd.Series, window: int) -> pd.Series:
    """Parkinson (1980): ``sqrt(mean(ln(H/L)^2) / (4 ln 2))``."""
    hl = np.log(high / low) ** 2
    return np.sqrt(hl.rolling(window).mean() / (4 * LN2))


def garman_klass(open_: pd.Series, high: pd.Series, low: pd.Series, close: pd.Series, window: int) -> pd.Series:
    """Garman-Klass (1980): ``sqrt(mean(0.5 ln(H/L)^2 - (2 ln 2 - 1) ln(C/O)^2))``."""
    term = 0.5 * np.log(high / low) ** 2 - (2 * LN2 - 1) * np.log(close / open_) ** 2
    return np.sqrt(term.rolling(window).mean().clip(lower=0.0))


def rogers_satchell(open_: pd.Series, high: pd.Series, low: pd.Series, close: pd.Series, window: int) -> pd.Series:
    """Rogers-Satchell (1991), drift-independent:
    ``sqrt(mean(ln(H/C) ln(H/O) + ln(L/C) ln(L/O)))``."""
    term = np.log(high / close) * np.log(high / open_) + np.log(low / close) * np.log(low / open_)
    return np.sqrt(term.rolling(window).mean().clip(lower=0.0))


def realised(log_returns: pd.Series, window: int) -> pd.Series:
    """Realised volatility: rolling standard deviation of hourly log returns."""
    return log_returns.rolling(window).std()
