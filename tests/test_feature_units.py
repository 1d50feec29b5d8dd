"""Hand-checked values of the momentum features (log return, rolling z-score, RSI, MACD
histogram, EMA gap) on small series, and their causality."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cryptorl_core.features import momentum as mom

MIN_STD = 1e-8


def series(values) -> pd.Series:
    return pd.Series(
        np.asarray(values, dtype="float64"),
        index=pd.date_range("2021-01-01", periods=len(values), freq="h", tz="UTC"),
    )


def ema(values: np.ndarray, span: int) -> np.ndarray:
    """The recursive EMA written out: e_0 = x_0, e_t = a x_t + (1 - a) e_{t-1}, a = 2 / (span + 1)."""
    a = 2.0 / (span + 1.0)
    out = np.empty(len(values))
    out[0] = values[0]
    for t in range(1, len(values)):
        out[t] = a * values[t] + (1.0 - a) * out[t - 1]
    return out


def test_log_return():
    price = series([100.0, 110.0, 99.0, 121.0])
    got = mom.log_return(np.log(price), 2)
    assert got.iloc[:2].isna().all()
    np.testing.assert_allclose(got.iloc[2:], [np.log(99 / 100), np.log(121 / 110)])
    np.testing.assert_allclose(
        mom.log_return(np.log(price), 1).iloc[1:], np.diff(np.log(price.to_numpy()))
    )


def test_rolling_zscore():
    got = mom.rolling_zscore(series([1.0, 2.0, 3.0, 5.0, 5.0, 5.0, 5.0]), 3, MIN_STD)
    assert got.iloc[:2].isna().all()  # the window is not full yet
    assert got.iloc[2] == pytest.approx(1.0)  # window (1, 2, 3): mean 2, sample std 1
    # window (2, 3, 5): mean 10/3, sample std sqrt(7/3)
    assert got.iloc[3] == pytest.approx((5.0 - 10.0 / 3.0) / np.sqrt(7.0 / 3.0))
    # window (3, 5, 5): mean 13/3, sample std sqrt(4/3)
    assert got.iloc[4] == pytest.approx((5.0 - 13.0 / 3.0) / np.sqrt(4.0 / 3.0))
    assert got.iloc[6] == 0.0  # a constant window: the std floor avoids 0 / 0


def test_rsi_hand_values():
    """Wilder smoothing (alpha = 1 / period), rescaled: RSI = 50 (1 + value)."""
    got = mom.rsi(series([10.0, 11.0, 10.5, 12.0, 11.0]), period=2)
    # moves +1, -0.5, +1.5, -1; gains 1, 0.5, 1, 0.5 and losses 0, 0.25, 0.125, 0.5625 smoothed
    gain = np.array([1.0, 0.5, 1.0, 0.5])
    loss = np.array([0.0, 0.25, 0.125, 0.5625])
    np.testing.assert_allclose(got.iloc[1:], 2 * gain / (gain + loss) - 1)
    assert got.iloc[0] == 0.0  # no move yet: neutral


def test_rsi_of_monotone_and_alternating_series():
    period = 14
    assert (mom.rsi(series(np.linspace(100, 200, 60)), period).iloc[1:] == 1.0).all()  # RSI 100
    assert (mom.rsi(series(np.linspace(200, 100, 60)), period).iloc[1:] == -1.0).all()  # RSI 0
    assert (mom.rsi(series(np.full(30, 100.0)), period) == 0.0).all()  # no moves: RSI 50
    # Equal up and down moves: the smoothed gain and loss settle at 1 / (2 - a) and
    # (1 - a) / (2 - a) of the move (a = 1 / period), so the value alternates around 0 (RSI 50)
    # at +/- a / (2 - a) = 1 / (2 period - 1).
    alternating = series(100.0 + np.tile([0.0, 1.0], 200))
    tail = mom.rsi(alternating, period).iloc[-20:].to_numpy()
    bound = 1.0 / (2 * period - 1)
    np.testing.assert_allclose(np.abs(tail), bound, rtol=1e-9)
    np.testing.assert_allclose(tail[::2] + tail[1::2], 0.0, atol=1e-9)  # mean RSI 50
    assert tail[-1] > 0 > tail[-2]  # after an up move above 50, after a down move below


def test_macd_hist_and_ema_gap_match_the_recursive_ema():
    close = series(100.0 * np.exp(np.cumsum(np.random.default_rng(0).normal(0, 0.01, 300))))
    x = close.to_numpy()
    macd = ema(x, 12) - ema(x, 26)
    expected = (macd - ema(macd, 9)) / x
    np.testing.assert_allclose(mom.macd_hist(close, 12, 26, 9), expected, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(
        mom.ema_gap(close, 12, 48), np.log(ema(x, 12) / ema(x, 48)), atol=1e-12
    )
    # A constant price has no momentum.
    assert np.allclose(mom.macd_hist(series(np.full(50, 7.0)), 12, 26, 9), 0.0)


FEATURES = {
    "log_return": lambda p: mom.log_return(np.log(p), 4),
    "rolling_zscore": lambda p: mom.rolling_zscore(np.log(p), 24, MIN_STD),
    "rsi": lambda p: mom.rsi(p, 14),
    "macd_hist": lambda p: mom.macd_hist(p, 12, 26, 9),
    "ema_gap": lambda p: mom.ema_gap(p, 12, 48),
}


@pytest.mark.parametrize("name", FEATURES)
def test_changing_a_future_value_leaves_past_outputs_unchanged(name):
    feature = FEATURES[name]
    price = series(100.0 * np.exp(np.cumsum(np.random.default_rng(1).normal(0, 0.01, 200))))
    k = 120
    changed = price.copy()
    changed.iloc[k] *= 1.05
    before, after = feature(price), feature(changed)
    pd.testing.assert_series_equal(before.iloc[:k], after.iloc[:k])
    assert not np.isclose(before.iloc[k], after.iloc[k])  # the change is seen from row k on
