"""The volatility-target position rule: ``min(max_position, target_vol / trailing realised vol)``.

Buy-and-hold scaled by the ratio of a target volatility to the realised volatility of the last
``window`` close-to-close log returns. Strictly causal: the position at bar ``t`` uses the closes
up to and including bar ``t``. The target volatility is one fitted number, the median trailing
volatility over a segment's train rows (:func:`vol_target_level`), fitted like every other
statistic of a segment on train rows only.

One rule, two users: the ``vol_target`` baseline of every backtest report
(:mod:`cryptorl_core.backtest.baselines`) and the per-row size of
``EnvConfig(sizing="vol_target")`` (:mod:`cryptorl_core.env.sizing`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from cryptorl_core.schema import PRICE_CLOSE_COL, SPLIT_COL, TRAIN

ArrayLike = np.ndarray | pd.Series | Sequence[float]

#: Trailing window (hours of close-to-close log returns) of the realised volatility; the
#: default of ``BacktestConfig.vol_target_window_h``.
VOL_TARGET_WINDOW_H = 168

#: Cap of the position (1 = fully invested, no leverage); the default of
#: ``BacktestConfig.vol_target_max_position``.
VOL_TARGET_MAX_POSITION = 1.0


def log_returns(prices: ArrayLike) -> np.ndarray:
    """Close-to-close log returns ``log(close[t] / close[t-1])``, NaN at bar 0.

    :param prices: closes (positive).
    :return: array aligned with ``prices``.
    """
    px = np.asarray(prices, dtype=float)
    if px.ndim != 1:
        raise ValueError(f"prices must be 1-D, got shape {px.shape}")
    out = np.full(len(px), np.nan)
    out[1:] = np.log(px[1:] / px[:-1])
    return out


def trailing_volatility(prices: ArrayLike, window: int) -> np.ndarray:
    """Realised volatility at each bar: the standard deviation (``ddof=1``) of the last
    ``window`` close-to-close log returns, the newest being bar ``t``'s own.

    Hourly (not annualised): the ``vol_target`` rule only uses ratios of it. Each value is
    computed from its own window, so it never depends on where the series starts or ends.

    :param prices: closes.
    :param window: returns per window, >= 2.
    :return: array aligned with ``prices``; NaN for the first ``window`` bars.
    """
    if window < 2:
        raise ValueError(f"window must be >= 2 returns, got {window}")
    r = log_returns(prices)[1:]
    out = np.full(len(r) + 1, np.nan)
    if len(r) >= window:
        out[window:] = np.lib.stride_tricks.sliding_window_view(r, window).std(axis=1, ddof=1)
    return out


def vol_target_level(volatility: ArrayLike, fit_rows: ArrayLike) -> float:
    """Target volatility of ``vol_target``: the median of ``volatility`` over the fit rows.

    :param volatility: :func:`trailing_volatility`, one value per row.
    :param fit_rows: boolean mask of the rows to fit on (a segment's train rows).
    :return: the median of the finite values on those rows.
    """
    vol = np.asarray(volatility, dtype=float)
    mask = np.asarray(fit_rows, dtype=bool)
    if mask.shape != vol.shape:
        raise ValueError(f"fit_rows {mask.shape} must align with volatility {vol.shape}")
    fitted = vol[mask & np.isfinite(vol)]
    if len(fitted) == 0:
        raise ValueError("no fit row has a trailing volatility: too few rows for the window")
    return float(np.median(fitted))


def vol_target(prices: ArrayLike, window: int, target_vol: float, max_position: float = 1.0) -> np.ndarray:
    """Buy-and-hold scaled by ``target_vol / trailing realised volatility``, in ``[0, max_position]``.

    :param prices: closes.
    :param window: returns per volatility window (:func:`trailing_volatility`).
    :param target_vol: volatility aimed at (same hourly units; :func:`vol_target_level`).
    :param max_position: cap of the position (1 = no leverage).
    :return: targets; 0 before the first full window, ``max_position`` when the trailing
        volatility is 0.
    """
    if target_vol <= 0 or max_position <= 0:
        raise ValueError(f"need target_vol > 0 and max_position > 0, got {target_vol}, {max_position}")
    vol = trailing_volatility(prices, window)
    ready = np.isfinite(vol)
    scaled = np.divide(target_vol, vol, out=np.full(len(vol), np.inf), where=ready & (vol > 0))
    return np.where(ready, np.clip(scaled, 0.0, max_position), 0.0)


def segment_vol_target(
    frame: pd.DataFrame,
    window: int = VOL_TARGET_WINDOW_H,
    max_position: float = VOL_TARGET_MAX_POSITION,
) -> np.ndarray:
    """``vol_target`` over a segment frame, its target volatility fitted on the train rows.

    :param frame: segment frame (``price_close`` and ``split`` columns).
    :param window: returns per volatility window.
    :param max_position: cap of the position.
    :return: one target per frame row.
    """
    closes = frame[PRICE_CLOSE_COL].to_numpy(dtype=float)
    level = vol_target_level(trailing_volatility(closes, window), frame[SPLIT_COL].to_numpy() == TRAIN)
    return vol_target(closes, window, level, max_position)
