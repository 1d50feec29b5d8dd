"""Timing quality of trades: was the price N hours after a trade better than its fill?

Seed 004's check. A trade at bar ``t`` is any change of position between bar ``t-1`` and
bar ``t`` (``positions[t]`` is the position held over bar ``t``, filled at
``exec_prices[t]``). An increase is a BUY, a decrease a SELL (reducing a long, adding to a
short and flipping both count). A BUY is *good* when ``exec_prices[t + N]`` (the price N
hours after the fill) is strictly higher than ``exec_prices[t]``; a SELL is good when it is
strictly lower. Equal prices are not good. Trades with ``t + N`` past the last bar of the
window are excluded, because their outcome is not observed inside the window.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from cryptorl_core.backtest.config import BacktestConfig


@dataclass(frozen=True)
class TimingQuality:
    """Outcome of :func:`timing_quality`.

    :param horizon_h: N, hours between the fill and the reference price.
    :param n_buys: BUYs whose outcome is inside the window.
    :param n_sells: SELLs whose outcome is inside the window.
    :param buy_good: BUYs followed by a higher price N hours later.
    :param sell_good: SELLs followed by a lower price N hours later.
    :param n_excluded: trades excluded because ``t + N`` falls outside the window.
    """

    horizon_h: int
    n_buys: int
    n_sells: int
    buy_good: int
    sell_good: int
    n_excluded: int

    @property
    def buy_good_pct(self) -> float:
        """Share of good BUYs in %, NaN without BUYs."""
        return 100.0 * self.buy_good / self.n_buys if self.n_buys else float("nan")

    @property
    def sell_good_pct(self) -> float:
        """Share of good SELLs in %, NaN without SELLs."""
        return 100.0 * self.sell_good / self.n_sells if self.n_sells else float("nan")

    def as_dict(self) -> dict[str, float]:
        """Counts and percentages as a flat dict."""
        d: dict[str, float] = asdict(self)
        d["buy_good_pct"] = self.buy_good_pct
        d["sell_good_pct"] = self.sell_good_pct
        return d


def timing_quality(
    positions: np.ndarray | pd.Series,
    exec_prices: np.ndarray | pd.Series,
    horizon_h: int | None = None,
    *,
    position_eps: float | None = None,
    config: BacktestConfig | None = None,
) -> TimingQuality:
    """Share of BUYs and SELLs that the price N hours later proved right.

    :param positions: position held over each bar, ``positions[0]`` being the starting one.
    :param exec_prices: fill price of a trade made at each bar (e.g. the bar's open),
        aligned with ``positions``; ``exec_prices[t + N]`` is the price N hours later.
    :param horizon_h: N in hours; ``config.timing_horizon_h`` when None.
    :param position_eps: changes smaller than this are not trades; from config when None.
    :param config: defaults for the parameters left None.
    :return: counts of BUYs/SELLs and of the good ones.
    """
    cfg = config or BacktestConfig()
    n = cfg.timing_horizon_h if horizon_h is None else int(horizon_h)
    eps = cfg.position_eps if position_eps is None else position_eps
    if n < 1:
        raise ValueError(f"horizon_h must be >= 1, got {n}")
    pos = np.asarray(positions, dtype=float)
    px = np.asarray(exec_prices, dtype=float)
    if pos.shape != px.shape or pos.ndim != 1:
        raise ValueError(f"positions {pos.shape} and exec_prices {px.shape} must be equal 1-D")

    t = np.arange(1, len(pos))
    delta = pos[1:] - pos[:-1]
    traded = np.abs(delta) > eps
    observed = t + n < len(pos)
    keep = traded & observed
    t_kept, d_kept = t[keep], delta[keep]
    move = px[t_kept + n] - px[t_kept]
    buys, sells = d_kept > 0, d_kept < 0
    return TimingQuality(
        horizon_h=n,
        n_buys=int(buys.sum()),
        n_sells=int(sells.sum()),
        buy_good=int((move[buys] > 0).sum()),
        sell_good=int((move[sells] < 0).sum()),
        n_excluded=int((traded & ~observed).sum()),
    )
