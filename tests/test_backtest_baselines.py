"""Baseline target-position generators: hand-computed cases and causality."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cryptorl_core.backtest.baselines import (
    baseline_positions,
    buy_and_hold,
    flat,
    momentum,
    sma_crossover,
    trailing_mean,
)
from cryptorl_core.backtest.config import BacktestConfig

TENT = [1.0, 2.0, 3.0, 4.0, 5.0, 4.0, 3.0, 2.0, 1.0]


def test_constant_baselines():
    px = pd.Series([3.0, 2.0, 5.0])
    np.testing.assert_array_equal(buy_and_hold(px), [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(flat(px), [0.0, 0.0, 0.0])


def test_trailing_mean_hand():
    # window 3 over [1, 2, 3, 4, 5]: NaN, NaN, 2, 3, 4
    np.testing.assert_allclose(trailing_mean([1, 2, 3, 4, 5], 3), [np.nan, np.nan, 2, 3, 4])
    assert np.isnan(trailing_mean([1, 2], 3)).all()


def test_sma_crossover_hand():
    # fast (2): -, 1.5, 2.5, 3.5, 4.5, 4.5, 3.5, 2.5, 1.5
    # slow (4): -, -, -, 2.5, 3.5, 4.0, 4.0, 3.5, 2.5
    # fast > slow at t = 3, 4, 5; below at t = 6, 7, 8; no slow SMA before t = 3
    np.testing.assert_array_equal(sma_crossover(TENT, 2, 4), [0, 0, 0, 1, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(
        sma_crossover(TENT, 2, 4, allow_short=True), [0, 0, 0, 1, 1, 1, -1, -1, -1]
    )
    # equal SMAs (constant prices) are not "fast above slow", whatever the float rounding
    np.testing.assert_array_equal(sma_crossover([0.1] * 10, 3, 7), np.zeros(10))
    with pytest.raises(ValueError):
        sma_crossover(TENT, 4, 4)


def test_momentum_hand():
    px = [100.0, 101.0, 99.0, 102.0, 102.0, 98.0, 102.0]
    # lookback 2: t2 99/100 -> -1, t3 102/101 -> +1, t4 102/99 -> +1, t5 98/102 -> -1,
    # t6 102/102 -> 0 (no move, no position)
    np.testing.assert_array_equal(momentum(px, 2, long_only=False), [0, 0, -1, 1, 1, -1, 0])
    np.testing.assert_array_equal(momentum(px, 2, long_only=True), [0, 0, 0, 1, 1, 0, 0])
    np.testing.assert_array_equal(momentum(px[:2], 2), [0, 0])  # not enough history


@pytest.mark.parametrize("cut", [1, 5, 47, 48, 49, 100, 333, 599])
def test_baselines_are_causal(cut):
    """Truncating the input, or changing the future, never changes earlier decisions."""
    rng = np.random.default_rng(7)
    px = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 600)))
    other_future = px.copy()
    other_future[cut:] *= np.exp(rng.normal(0, 0.05, 600 - cut))
    gens = {
        "sma": lambda p: sma_crossover(p, 12, 48),
        "sma_short": lambda p: sma_crossover(p, 12, 48, allow_short=True),
        "mom": lambda p: momentum(p, 24, long_only=False),
        "mom_long": lambda p: momentum(p, 24),
        "bh": buy_and_hold,
        "flat": flat,
    }
    for name, gen in gens.items():
        full = gen(px)
        assert len(full) == len(px), name
        np.testing.assert_array_equal(gen(px[:cut]), full[:cut], err_msg=name)
        np.testing.assert_array_equal(gen(other_future)[:cut], full[:cut], err_msg=name)


def test_baseline_positions_from_config():
    px = np.linspace(100.0, 200.0, 300)  # steady uptrend
    out = baseline_positions(px, BacktestConfig.quick())  # sma 12/48, momentum 24
    assert set(out) == {"buy_and_hold", "flat", "sma_crossover", "momentum"}
    assert all(len(v) == 300 for v in out.values())
    # in an uptrend the fast SMA is above the slow one once both exist (t >= 47)
    np.testing.assert_array_equal(out["sma_crossover"][:47], 0.0)
    np.testing.assert_array_equal(out["sma_crossover"][47:], 1.0)
    np.testing.assert_array_equal(out["momentum"][:24], 0.0)
    np.testing.assert_array_equal(out["momentum"][24:], 1.0)
