"""Fixed-width-window fractional differentiation (López de Prado, AFML ch. 5)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from statsmodels.tsa.stattools import adfuller


def ffd_weights(d: float, threshold: float, max_width: int) -> np.ndarray:
    """FFD weights ``w_0 = 1, w_k = -w_{k-1} (d - k + 1) / k``, oldest lag last.

    :param d: differentiation order.
    :param threshold: stop once ``|w_k|`` falls below it.
    :param max_width: hard cap on the number of weights.
    :return: weights ``[w_0, w_1, ...]`` (``w_0`` applies to the current value).
    """
    weights = [1.0]
    for k in range(1, max_width):
        w = -weights[-1] * (d - k + 1) / k
        if abs(w) < threshold:
            break
        weights.append(w)
    return np.asarray(weights)


def ffd(series: pd.Series, d: float, threshold: float, max_width: int) -> pd.Series:
    """Fractionally differentiate ``series``; the first ``width - 1`` values are NaN.

    Row ``t`` uses rows ``t - width + 1 .. t`` only (a causal convolution).
    """
    w = ffd_weights(d, threshold, max_width)
    x = series.to_numpy(dtype=float)
    out = np.full(len(x), np.nan)
    if len(x) >= len(w):
        out[len(w) - 1 :] = np.convolve(x, w, mode="valid")
    return pd.Series(out, index=series.index, name=series.name)


def min_stationary_d(
    log_price: pd.Series,
    fit_mask: np.ndarray,
    d_grid: tuple[float, ...],
    threshold: float,
    max_width: int,
    pvalue: float,
    maxlag: int,
) -> tuple[float, float]:
    """Smallest ``d`` whose FFD series passes an ADF test on the fit (train) rows.

    :param log_price: log prices, including history before the fit window.
    :param fit_mask: boolean mask of the rows the test may look at (train rows).
    :return: ``(d, p_value)``; the largest grid value when none passes.
    """
    p = 1.0
    for d in d_grid:
        x = ffd(log_price, d, threshold, max_width).to_numpy()[fit_mask]
        x = x[np.isfinite(x)]
        p = float(adfuller(x, maxlag=maxlag, autolag=None, regression="c", result_object=False)[1])
        if p < pvalue:
            return float(d), p
    return float(d_grid[-1]), p
