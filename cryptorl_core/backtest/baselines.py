"""Rule-based baseline strategies: target positions from prices (and, for
:func:`segment_baseline_positions`, the regime context and the synthetic true regime).

Every generator is strictly causal: the target decided at bar ``t`` uses the closes up to
and including bar ``t`` and nothing later, so truncating the input never changes earlier
outputs. The output is the *decision* at each bar; the environment fills it with its own
execution lag (next bar's open) and costs, exactly as it does the agent's actions.
Bars before a rule has enough history get a flat (0) target.

``vol_target`` is the volatility-target rule of :mod:`cryptorl_core.vol_target`; it also takes
one fitted number, the target volatility: the median trailing volatility over the segment's
train rows (:func:`~cryptorl_core.vol_target.vol_target_level`), fitted like every other
statistic of a segment on train rows only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from cryptorl_core.backtest.config import BacktestConfig
from cryptorl_core.backtest.regime_baselines import (
    RegimeContextLike,
    regime_oracle_positions,
    regime_rule_positions,
)
from cryptorl_core.schema import PRICE_CLOSE_COL, TRUE_REGIME_COL
from cryptorl_core.vol_target import segment_vol_target

ArrayLike = np.ndarray | pd.Series | Sequence[float]

#: Strategy names of the baselines that other modules refer to.
BUY_AND_HOLD = "buy_and_hold"
VOL_TARGET = "vol_target"
REGIME_RULE = "regime_rule"
REGIME_RULE_LONG_ONLY = "regime_rule_long_only"
REGIME_ORACLE = "regime_oracle"

#: Relative tolerance of the SMA comparison: two means of (near) equal prices can differ by
#: float rounding only, which must not flip the signal.
_SMA_REL_TOL = 1e-12


def _closes(prices: ArrayLike) -> np.ndarray:
    px = np.asarray(prices, dtype=float)
    if px.ndim != 1:
        raise ValueError(f"prices must be 1-D, got shape {px.shape}")
    return px


def trailing_mean(prices: ArrayLike, window: int) -> np.ndarray:
    """Mean of the last ``window`` closes at each bar (NaN before ``window`` closes exist).

    Each mean is computed from its own window (no running sum), so a value never depends on
    where the series starts or ends.

    :param prices: closes.
    :param window: number of bars, >= 1.
    :return: array aligned with ``prices``.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    px = _closes(prices)
    out = np.full(len(px), np.nan)
    if len(px) >= window:
        out[window - 1 :] = np.lib.stride_tricks.sliding_window_view(px, window).mean(axis=1)
    return out


def buy_and_hold(prices: ArrayLike) -> np.ndarray:
    """Always fully long (1.0)."""
    return np.ones(len(_closes(prices)))


def flat(prices: ArrayLike) -> np.ndarray:
    """Never in the market (0.0)."""
    return np.zeros(len(_closes(prices)))


def sma_crossover(prices: ArrayLike, fast: int, slow: int, allow_short: bool = False) -> np.ndarray:
    """Long when the fast SMA is above the slow SMA, else flat (or short).

    :param prices: closes.
    :param fast: fast window in bars.
    :param slow: slow window in bars, > ``fast``.
    :param allow_short: -1 instead of 0 when fast <= slow.
    :return: targets in {-1, 0, 1}; 0 for the first ``slow - 1`` bars (no slow SMA yet).
    """
    if not 1 <= fast < slow:
        raise ValueError(f"need 1 <= fast < slow, got fast={fast}, slow={slow}")
    f, s = trailing_mean(prices, fast), trailing_mean(prices, slow)
    ready = ~np.isnan(s)
    above = f - s > _SMA_REL_TOL * np.abs(s)
    out = np.where(above, 1.0, -1.0 if allow_short else 0.0)
    return np.where(ready, out, 0.0)


def momentum(prices: ArrayLike, lookback: int, long_only: bool = True) -> np.ndarray:
    """Sign of the trailing return ``close[t] / close[t - lookback] - 1``.

    :param prices: closes.
    :param lookback: bars, >= 1.
    :param long_only: 0 instead of -1 on a negative return.
    :return: targets in {-1, 0, 1}; 0 for the first ``lookback`` bars and on a zero return.
    """
    if lookback < 1:
        raise ValueError(f"lookback must be >= 1, got {lookback}")
    px = _closes(prices)
    out = np.zeros(len(px))
    if len(px) > lookback:
        out[lookback:] = np.sign(px[lookback:] / px[:-lookback] - 1.0)
    return np.maximum(out, 0.0) if long_only else out


def baseline_positions(
    prices: ArrayLike, config: BacktestConfig | None = None
) -> dict[str, np.ndarray]:
    """All baselines with the windows of ``config``.

    :param prices: closes (include the warm-up history before the test window, then slice,
        so the rules are ready on the window's first bar).
    :param config: analytics configuration (``BacktestConfig()`` when None).
    :return: name to target positions aligned with ``prices``.
    """
    cfg = config or BacktestConfig()
    return {
        BUY_AND_HOLD: buy_and_hold(prices),
        "flat": flat(prices),
        "sma_crossover": sma_crossover(prices, cfg.sma_fast, cfg.sma_slow, cfg.sma_allow_short),
        "momentum": momentum(prices, cfg.momentum_lookback_h, cfg.momentum_long_only),
    }


def segment_baseline_positions(
    frame: pd.DataFrame,
    config: BacktestConfig | None = None,
    regime_context: RegimeContextLike | None = None,
) -> dict[str, np.ndarray]:
    """Every baseline a segment frame allows, one target per frame row.

    Always: :func:`baseline_positions` and ``vol_target``. With ``regime_context`` (the HMM's
    forward-filtered probabilities): ``regime_rule`` and ``regime_rule_long_only``
    (:func:`~cryptorl_core.backtest.regime_baselines.regime_rule_positions`). When the frame
    carries ``true_regime`` (synthetic data): ``regime_oracle``, an upper bound computed here
    and nowhere else.

    :param frame: segment frame.
    :param config: windows, weights and mappings.
    :param regime_context: HMM context of every frame row (a frame with ``hmm_p0..hmm_p3``, an
        array, or a regime model with ``context(frame)``); None leaves the regime rules out.
    :return: name to targets, in report order.
    """
    cfg = config or BacktestConfig()
    targets = baseline_positions(frame[PRICE_CLOSE_COL].to_numpy(), cfg)
    targets[VOL_TARGET] = segment_vol_target(frame, cfg.vol_target_window_h, cfg.vol_target_max_position)
    if regime_context is not None:
        weights = cfg.regime_rule_weights
        targets[REGIME_RULE] = regime_rule_positions(regime_context, weights=weights, frame=frame)
        targets[REGIME_RULE_LONG_ONLY] = regime_rule_positions(
            regime_context, weights=weights, long_only=True, frame=frame)
    if TRUE_REGIME_COL in frame.columns:
        targets[REGIME_ORACLE] = regime_oracle_positions(frame[TRUE_REGIME_COL], cfg.oracle_regime_positions)
    return targets
