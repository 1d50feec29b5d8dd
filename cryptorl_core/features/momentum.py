"""Returns, z-scores and momentum oscillators."""

from __future__ import annotations

import numpy as np
import pandas as pd


def log_return(log_price: pd.Series, hours: int) -> pd.Series:
    """``ln(P_t / P_{t-h})``."""
    return log_price - log_price.shift(hours)


def rolling_zscore(x: pd.Series, window: int, min_std: float) -> pd.Series:
    """``(x_t - mean) / std`` over the trailing ``window`` rows (including t)."""
    roll = x.rolling(window)
    return (x - roll.mean()) / roll.std().clip(lower=min_std)


def rsi(close: pd.Series, period: int) -> pd.Series:
    """Wilder's RSI, rescaled to [-1, 1] (0 is neutral)."""
    delta = close.diff()
    gain = delta.clip(lower=0.0).ewm(alpha=1.0 / period, adjust=False).mean()
    loss = (-delta).clip(lower=0.0).ewm(alpha=1.0 / period, adjust=False).mean()
    total = (gain + loss).replace(0.0, np.nan)
    return (2.0 * gain / total - 1.0).fillna(0.0)


def ema_gap(close: pd.Series, fast: int, slow: int) -> pd.Series:
    """``ln(EMA_fast / EMA_slow)``: trend direction and strength."""
    return np.log(close.ewm(span=fast, adjust=False).mean() / close.ewm(span=slow, adjust=False).mean())


def macd_hist(close: pd.Series, fast: int, slow: int, signal: int) -> pd.Series:
    """MACD histogram, divided by the close so it is scale-free."""
    macd = close.ewm(span=fast, adjust=False).mean() - close.ewm(span=slow, adjust=False).mean()
    return (macd - macd.ewm(span=signal, adjust=False).mean()) / close
