"""Is a Sharpe ratio better than luck? Probabilistic and deflated Sharpe ratios.

Everything here works on the *per-period* (non-annualised) Sharpe ratio
``SR = mean(r) / std(r, ddof=1)`` of hourly returns. Convert annualised values with
:func:`per_period_sharpe` (and a variance of annualised Sharpes by dividing it by
``periods_per_year``) before passing them in.

- Probabilistic Sharpe ratio (Bailey & Lopez de Prado, 2012, "The Sharpe ratio efficient
  frontier"): the probability that the true SR exceeds a benchmark ``SR*``, given ``n``
  returns with skewness ``g3`` and (non-excess) kurtosis ``g4``::

      PSR(SR*) = Phi( (SR - SR*) sqrt(n - 1) / sqrt(1 - g3 SR + (g4 - 1) / 4 SR^2) )

- Deflated Sharpe ratio (Bailey & Lopez de Prado, 2014, "The deflated Sharpe ratio"):
  the PSR against the SR expected from the best of ``N`` unskilled trials whose Sharpes
  have variance ``V``::

      SR* = sqrt(V) ((1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e)))

  with ``gamma`` the Euler-Mascheroni constant.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

ArrayLike = np.ndarray | pd.Series | Sequence[float]


def per_period_sharpe(annualised_sharpe: float, periods_per_year: float) -> float:
    """Undo the ``sqrt(periods_per_year)`` annualisation of a Sharpe ratio."""
    return annualised_sharpe / np.sqrt(periods_per_year)


def return_moments(returns: ArrayLike) -> tuple[float, int, float, float]:
    """Per-period Sharpe, sample size, skewness and non-excess kurtosis of returns.

    Skewness and kurtosis are the plain sample moments (``scipy.stats.skew`` and
    ``scipy.stats.kurtosis(fisher=False)``, biased); a normal sample has kurtosis near 3.

    :param returns: per-period simple returns.
    :return: ``(sr, n, skew, kurtosis)``; NaNs when fewer than 2 returns or zero variance.
    """
    r = np.asarray(returns, dtype=float)
    n = len(r)
    std = r.std(ddof=1) if n > 1 else 0.0
    if std == 0.0:
        return float("nan"), n, float("nan"), float("nan")
    return (
        float(r.mean() / std),
        n,
        float(stats.skew(r)),
        float(stats.kurtosis(r, fisher=True) + 3.0),
    )


def psr_from_stats(
    sr: float, n: int, skew: float, kurtosis: float, sr_benchmark: float = 0.0
) -> float:
    """Probabilistic Sharpe ratio from summary statistics.

    :param sr: per-period Sharpe ratio estimate.
    :param n: number of returns it was estimated on.
    :param skew: skewness of the returns.
    :param kurtosis: non-excess kurtosis of the returns (3 for a normal distribution).
    :param sr_benchmark: ``SR*``, per period.
    :return: probability in [0, 1]; NaN when ``n < 2`` or the variance term is not positive.
    """
    var_term = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr**2
    if n < 2 or not np.isfinite(var_term) or var_term <= 0.0:
        return float("nan")
    z = (sr - sr_benchmark) * np.sqrt(n - 1) / np.sqrt(var_term)
    return float(stats.norm.cdf(z))


def probabilistic_sharpe_ratio(returns: ArrayLike, sr_benchmark: float = 0.0) -> float:
    """PSR of a return series against a per-period benchmark Sharpe (see module docstring).

    :param returns: per-period simple returns.
    :param sr_benchmark: ``SR*``, per period.
    :return: probability that the true Sharpe exceeds ``sr_benchmark``.
    """
    sr, n, skew, kurt = return_moments(returns)
    return psr_from_stats(sr, n, skew, kurt, sr_benchmark)


def expected_max_sharpe(n_trials: int, sr_variance: float) -> float:
    """``SR*``: the Sharpe expected from the best of ``n_trials`` skill-less trials.

    :param n_trials: number of independent strategy configurations tried (``N``).
    :param sr_variance: variance of the per-period Sharpes across those trials (``V``).
    :return: ``SR*`` per period; 0 for a single trial (no selection, and the formula's
        ``Phi^-1(0)`` is undefined).
    """
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    if sr_variance < 0:
        raise ValueError(f"sr_variance must be >= 0, got {sr_variance}")
    if n_trials == 1:
        return 0.0
    gamma = np.euler_gamma
    z1 = stats.norm.ppf(1.0 - 1.0 / n_trials)
    z2 = stats.norm.ppf(1.0 - 1.0 / (n_trials * np.e))
    return float(np.sqrt(sr_variance) * ((1.0 - gamma) * z1 + gamma * z2))


def dsr_from_stats(
    sr: float, n: int, skew: float, kurtosis: float, n_trials: int, sr_variance: float
) -> float:
    """Deflated Sharpe ratio from summary statistics: ``PSR(expected_max_sharpe(N, V))``."""
    return psr_from_stats(sr, n, skew, kurtosis, expected_max_sharpe(n_trials, sr_variance))


def deflated_sharpe_ratio(returns: ArrayLike, n_trials: int, sr_variance: float) -> float:
    """Deflated Sharpe ratio of a return series (see module docstring).

    :param returns: per-period simple returns of the selected strategy.
    :param n_trials: number of trials the strategy was selected from.
    :param sr_variance: variance of the trials' per-period Sharpes.
    :return: probability that the true Sharpe beats the best-of-``N`` luck benchmark.
    """
    sr, n, skew, kurt = return_moments(returns)
    return dsr_from_stats(sr, n, skew, kurt, n_trials, sr_variance)


def sharpe_significance(
    returns: ArrayLike, n_trials: int = 1, sr_variance: float = 0.0
) -> dict[str, float]:
    """Summary for a report: moments, PSR against 0 and the deflated Sharpe ratio.

    :param returns: per-period simple returns.
    :param n_trials: trials the strategy was selected from (1: no deflation).
    :param sr_variance: variance of the trials' per-period Sharpes.
    :return: ``sr_per_period, n, skew, kurtosis, psr, sr_star, dsr``.
    """
    sr, n, skew, kurt = return_moments(returns)
    sr_star = expected_max_sharpe(n_trials, sr_variance)
    return {
        "sr_per_period": sr,
        "n": n,
        "skew": skew,
        "kurtosis": kurt,
        "psr": psr_from_stats(sr, n, skew, kurt, 0.0),
        "sr_star": sr_star,
        "dsr": psr_from_stats(sr, n, skew, kurt, sr_star),
    }
