"""Performance metrics of one backtest window, from hourly NAV, positions, fees and prices.

Alignment convention (all inputs have the same length ``T`` and hourly index):

- ``nav[t]``: net asset value at the close of bar ``t``; ``nav[0]`` is the starting value,
  before any measured return. Returns are ``r[t] = nav[t] / nav[t-1] - 1`` for ``t >= 1``
  (``T - 1`` hourly returns, the same as ``nav.pct_change()`` without its leading NaN).
- ``positions[t]``: position (fraction of NAV, in [-1, 1]) held over bar ``t``, i.e. the one
  in force after the trade filled at the bar's open; ``positions[0]`` is the starting
  position. A trade at bar ``t`` is a change ``positions[t] != positions[t-1]``.
- ``fees[t]``: fees (NAV currency units) deducted between ``nav[t-1]`` and ``nav[t]``;
  ``fees[0]`` lies before the window and is ignored.
- ``prices[t]``: close of the traded asset at bar ``t`` (for buy-and-hold and timing).

This is what the environment's step produces: the action decided at row ``t-1`` is filled at
the open of row ``t`` (``exec_prices`` = ``price_open``), its fee is taken there, and the NAV
is marked at the close of row ``t``.

Ratios are annualised with ``periods_per_year`` = 8,760 hourly periods because crypto
trades 24/7 (365 days x 24 h, no sessions or weekends).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from cryptorl_core.backtest.config import BacktestConfig
from cryptorl_core.backtest.timing import timing_quality
from cryptorl_core.backtest.verdict import buy_timing_verdict
from cryptorl_core.schema import HOURS_PER_YEAR

ArrayLike = np.ndarray | pd.Series | Sequence[float]

BULLISH, BEARISH, RANGING = "bullish", "bearish", "ranging"


# ---------------------------------------------------------------------------------------
# Input helpers
# ---------------------------------------------------------------------------------------


def _as_array(x: ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    return arr


def check_hourly_index(index: pd.Index) -> None:
    """Raise if a ``DatetimeIndex`` is not contiguous hourly (annualisation assumes 1 h steps).

    :param index: the index of an input series; other index types are not checked.
    """
    if isinstance(index, pd.DatetimeIndex) and len(index) > 1:
        # Compare as timedeltas: the index unit may be s, ms, us or ns under pandas 3.
        if not ((index[1:] - index[:-1]) == pd.Timedelta(hours=1)).all():
            raise ValueError("expected a contiguous hourly DatetimeIndex")


def returns_from_nav(nav: ArrayLike) -> np.ndarray:
    """Hourly simple returns ``nav[t] / nav[t-1] - 1`` for ``t >= 1`` (length ``T - 1``)."""
    v = _as_array(nav, "nav")
    return v[1:] / v[:-1] - 1.0


def nav_from_returns(returns: ArrayLike, initial: float) -> np.ndarray:
    """NAV path from hourly returns as given by ``nav.pct_change()``.

    :param returns: ``returns[t]`` is the return over bar ``t``; ``returns[0]`` is ignored
        (it lies before the window, and is NaN in ``pct_change()`` output).
    :param initial: ``nav[0]``.
    :return: ``nav`` of the same length, ``nav[0] == initial``.
    """
    r = _as_array(returns, "returns").copy()
    r[0] = 0.0
    return initial * np.cumprod(1.0 + r)


# ---------------------------------------------------------------------------------------
# Return / risk
# ---------------------------------------------------------------------------------------


def total_return(nav: ArrayLike) -> float:
    """``nav[-1] / nav[0] - 1`` (fraction)."""
    v = _as_array(nav, "nav")
    return float(v[-1] / v[0] - 1.0)


def annualised_return(nav: ArrayLike, periods_per_year: float = HOURS_PER_YEAR) -> float:
    """Compound annual growth rate ``(nav[-1]/nav[0]) ** (periods_per_year / (T-1)) - 1``.

    :param nav: NAV path of ``T >= 2`` points (``T - 1`` periods).
    :param periods_per_year: 8,760 for hourly crypto bars.
    :return: the annualised return (fraction); -1 when the NAV was wiped out.
    """
    v = _as_array(nav, "nav")
    growth = v[-1] / v[0]
    if growth <= 0:
        return -1.0
    return float(growth ** (periods_per_year / (len(v) - 1)) - 1.0)


def sharpe_ratio(returns: ArrayLike, periods_per_year: float = HOURS_PER_YEAR) -> float:
    """Annualised Sharpe ratio: ``mean(r) / std(r, ddof=1) * sqrt(periods_per_year)``.

    Zero risk-free rate; ``sqrt(HOURS_PER_YEAR)`` (8,766 h) annualises hourly returns of a 24/7 market.

    :param returns: per-period simple returns.
    :param periods_per_year: periods in a year.
    :return: the ratio; 0 when every return is 0 (e.g. always flat), NaN when the
        returns are otherwise constant or fewer than 2.
    """
    r = _as_array(returns, "returns")
    if len(r) < 2:
        return float("nan")
    mean, std = r.mean(), r.std(ddof=1)
    if std == 0.0:
        return 0.0 if mean == 0.0 else float("nan")
    return float(mean / std * np.sqrt(periods_per_year))


def sortino_ratio(returns: ArrayLike, periods_per_year: float = HOURS_PER_YEAR) -> float:
    """Annualised Sortino ratio: ``mean(r) / DD * sqrt(periods_per_year)``.

    ``DD = sqrt(mean(min(r, 0) ** 2))`` is the downside deviation below a 0 target, averaged
    over *all* periods (Sortino & Price), zero risk-free rate.

    :param returns: per-period simple returns.
    :param periods_per_year: periods in a year.
    :return: the ratio; 0 when every return is 0, NaN when there is no downside otherwise.
    """
    r = _as_array(returns, "returns")
    if len(r) == 0:
        return float("nan")
    downside = np.sqrt(np.mean(np.minimum(r, 0.0) ** 2))
    if downside == 0.0:
        return 0.0 if np.all(r == 0.0) else float("nan")
    return float(r.mean() / downside * np.sqrt(periods_per_year))


def drawdown(nav: ArrayLike) -> np.ndarray:
    """Drawdown path ``nav[t] / max(nav[:t+1]) - 1`` (0 at a peak, negative below it)."""
    v = _as_array(nav, "nav")
    return v / np.maximum.accumulate(v) - 1.0


def max_drawdown(nav: ArrayLike) -> tuple[float, int]:
    """Deepest drawdown and the longest time spent under water.

    :param nav: NAV path.
    :return: ``(max_dd, duration)``: ``max_dd`` = ``min(drawdown(nav))`` (a fraction <= 0,
        e.g. -0.10 for a 10 % fall from the running peak); ``duration`` = the longest run of
        consecutive bars below the running peak, in hours (a drawdown not recovered by the
        end of the window counts up to the last bar).
    """
    dd = drawdown(nav)
    longest = run = 0
    for under in dd < 0.0:
        run = run + 1 if under else 0
        longest = max(longest, run)
    return float(dd.min()), int(longest)


def calmar_ratio(nav: ArrayLike, periods_per_year: float = HOURS_PER_YEAR) -> float:
    """Annualised return over the absolute max drawdown; NaN without a drawdown."""
    mdd, _ = max_drawdown(nav)
    if mdd == 0.0:
        return float("nan")
    return annualised_return(nav, periods_per_year) / abs(mdd)


# ---------------------------------------------------------------------------------------
# Trading activity
# ---------------------------------------------------------------------------------------


def _sign(x: np.ndarray, eps: float) -> np.ndarray:
    return np.where(x > eps, 1, np.where(x < -eps, -1, 0))


def count_trades(positions: ArrayLike, eps: float = BacktestConfig.position_eps) -> int:
    """Number of bars ``t >= 1`` whose position differs from the previous bar's."""
    p = _as_array(positions, "positions")
    return int((np.abs(np.diff(p)) > eps).sum())


def turnover(positions: ArrayLike) -> float:
    """Sum of ``|positions[t] - positions[t-1]|`` (1.0 = one full NAV traded)."""
    p = _as_array(positions, "positions")
    return float(np.abs(np.diff(p)).sum())


def exposure(
    positions: ArrayLike, eps: float = BacktestConfig.position_eps
) -> tuple[float, float, float]:
    """Share of the measured bars (``t >= 1``) spent long, short, and in either.

    :return: ``(long, short, any)`` as fractions.
    """
    s = _sign(_as_array(positions, "positions")[1:], eps)
    if len(s) == 0:
        return float("nan"), float("nan"), float("nan")
    return float((s > 0).mean()), float((s < 0).mean()), float((s != 0).mean())


def round_trip_pnls(
    nav: ArrayLike,
    positions: ArrayLike,
    fees: ArrayLike | None = None,
    eps: float = BacktestConfig.position_eps,
) -> np.ndarray:
    """Net PnL (NAV units) of every round trip.

    A round trip is a maximal run of bars holding a position of one sign (long or short);
    resizing inside it does not end it, going flat or flipping does. Its PnL is the NAV
    change over its bars plus the fees of those bars, minus the fees attributable to it:
    the fee of a bar is split between the closing and the opening trip in proportion to
    ``|old position|`` and ``|new position|``. A trip still open at the end of the window
    is marked to market at the last NAV (no exit fee) and included. Bar ``t``'s PnL goes to
    the position held over bar ``t``; the small close-to-open move of the previous position
    (zero in a 24/7 market) is not split off.

    :param nav: NAV path.
    :param positions: positions, aligned with ``nav``.
    :param fees: fees per bar, aligned (zeros when None).
    :param eps: position tolerance.
    :return: one PnL per round trip, in time order.
    """
    v = _as_array(nav, "nav")
    p = _as_array(positions, "positions")
    f = np.zeros_like(v) if fees is None else _as_array(fees, "fees")
    sign = _sign(p, eps)
    gross = np.diff(v) + f[1:]  # what bar t earned before its fee, t >= 1

    pnls: list[float] = []
    current: float | None = None
    for t in range(1, len(v)):
        fee = f[t]
        if sign[t - 1] != 0 and sign[t] != sign[t - 1]:
            # The trip held over bar t-1 closes at bar t's open: it pays its share of the fee.
            change = abs(p[t] - p[t - 1])
            closing_fee = fee * abs(p[t - 1]) / change if change > 0 else fee
            pnls.append((current or 0.0) - closing_fee)
            current, fee = None, fee - closing_fee
        if sign[t] != 0:
            current = (current or 0.0) + gross[t - 1] - fee
    if current is not None:
        pnls.append(current)
    return np.asarray(pnls, dtype=float)


def market_label(buy_and_hold_return: float, threshold: float) -> str:
    """Label a window by its buy-and-hold return ``R``.

    :param buy_and_hold_return: buy-and-hold return over the window (fraction).
    :param threshold: ``x`` (fraction).
    :return: ``"bullish"`` if ``R > x``, ``"bearish"`` if ``R < -x``, else ``"ranging"``.
    """
    if buy_and_hold_return > threshold:
        return BULLISH
    if buy_and_hold_return < -threshold:
        return BEARISH
    return RANGING


# ---------------------------------------------------------------------------------------
# All metrics of one window
# ---------------------------------------------------------------------------------------


def compute_metrics(
    positions: ArrayLike,
    prices: ArrayLike,
    *,
    nav: ArrayLike | None = None,
    returns: ArrayLike | None = None,
    fees: ArrayLike | None = None,
    exec_prices: ArrayLike | None = None,
    initial_capital: float | None = None,
    config: BacktestConfig | None = None,
) -> dict[str, float | str]:
    """Every metric of one strategy over one window (see the module docstring for alignment).

    Give exactly one of ``nav`` or ``returns``. Percentages are in % (``*_pct``), currency
    amounts are scaled to ``initial_capital`` (the NAV is rebased so ``nav[0]`` equals it).
    Nothing is rounded: round at display time (:func:`metrics_markdown`).

    Definitions not obvious from the key names:

    - ``n_trades``: bars where the position changed; ``turnover``: sum of ``|Δposition|``.
    - ``mean_position``: mean signed position held over the measured bars (``positions[1:]``).
    - ``win_rate_pct``: share of round trips with a positive net PnL
      (:func:`round_trip_pnls`; the trip open at the end is marked to market).
    - ``bh_*``: buy-and-hold of the asset on the same window, from ``prices``
      (``prices[-1] / prices[0] - 1``, Sharpe of the hourly price returns).
    - ``alpha_return_pct``: total return minus buy-and-hold return (percentage points);
      ``alpha_sharpe``: Sharpe minus buy-and-hold Sharpe (a difference, not a regression alpha).
    - ``market_label``: :func:`market_label` of the buy-and-hold return.
    - timing keys: :func:`~cryptorl_core.backtest.timing.timing_quality` with horizon
      ``config.timing_horizon_h``; fills at ``exec_prices`` (the bars' opens), by default the
      previous bar's close, which equals the open in a 24/7 market.
    - ``timing_verdict``: seed 004's verdict on the BUY timing,
      :func:`~cryptorl_core.backtest.verdict.buy_timing_verdict` (``success``, ``partial``,
      ``failure`` or ``no buys``).

    :param positions: position held over each bar, ``positions[0]`` the starting one.
    :param prices: close of the traded asset at each bar.
    :param nav: NAV at each bar's close.
    :param returns: alternatively, hourly returns as from ``nav.pct_change()`` (first ignored).
    :param fees: fees deducted in each bar, NAV units (with ``returns``: currency at
        ``initial_capital``); zeros when None.
    :param exec_prices: fill price of a trade at each bar (for the timing quality).
    :param initial_capital: capital the currency amounts refer to; from config when None.
    :param config: analytics configuration (``BacktestConfig()`` when None).
    :return: an ordered dict of metric name to value.
    """
    cfg = config or BacktestConfig()
    capital = cfg.initial_capital if initial_capital is None else float(initial_capital)
    if (nav is None) == (returns is None):
        raise ValueError("give exactly one of nav or returns")
    for series in (positions, prices, nav, returns):
        if isinstance(series, pd.Series):
            check_hourly_index(series.index)
    v = nav_from_returns(returns, capital) if nav is None else _as_array(nav, "nav")
    p = _as_array(positions, "positions")
    px = _as_array(prices, "prices")
    f = np.zeros_like(v) if fees is None else _as_array(fees, "fees")
    if not (len(v) == len(p) == len(px) == len(f)) or len(v) < 2:
        raise ValueError(
            f"nav/returns ({len(v)}), positions ({len(p)}), prices ({len(px)}) and fees "
            f"({len(f)}) must have the same length >= 2"
        )
    if exec_prices is None:
        fill = np.concatenate([[np.nan], px[:-1]])
    else:
        fill = _as_array(exec_prices, "exec_prices")

    ppy, eps = cfg.periods_per_year, cfg.position_eps
    scale = capital / v[0]
    r = returns_from_nav(v)
    ret, sharpe = total_return(v), sharpe_ratio(r, ppy)
    mdd, mdd_len = max_drawdown(v)
    long_, short_, any_ = exposure(p, eps)
    trips = round_trip_pnls(v, p, f, eps)
    timing = timing_quality(p, fill, cfg.timing_horizon_h, position_eps=eps)
    bh_ret, bh_sharpe = total_return(px), sharpe_ratio(returns_from_nav(px), ppy)
    fees_paid = float(f[1:].sum()) * scale

    return {
        "n_hours": len(r),
        "total_return_pct": 100.0 * ret,
        "pnl": (v[-1] - v[0]) * scale,
        "annualised_return_pct": 100.0 * annualised_return(v, ppy),
        "sharpe": sharpe,
        "sortino": sortino_ratio(r, ppy),
        "max_drawdown_pct": 100.0 * mdd,
        "max_drawdown_duration_h": mdd_len,
        "calmar": calmar_ratio(v, ppy),
        "n_trades": count_trades(p, eps),
        "turnover": turnover(p),
        "fees_paid": fees_paid,
        "fees_pct": 100.0 * fees_paid / capital,
        "exposure_long_pct": 100.0 * long_,
        "exposure_short_pct": 100.0 * short_,
        "exposure_pct": 100.0 * any_,
        "mean_position": float(p[1:].mean()),
        "n_round_trips": len(trips),
        "win_rate_pct": 100.0 * float((trips > 0).mean()) if len(trips) else float("nan"),
        "timing_horizon_h": timing.horizon_h,
        "n_buys": timing.n_buys,
        "buy_good_pct": timing.buy_good_pct,
        "n_sells": timing.n_sells,
        "sell_good_pct": timing.sell_good_pct,
        "timing_verdict": buy_timing_verdict(timing.n_buys, timing.buy_good_pct, cfg),
        "bh_return_pct": 100.0 * bh_ret,
        "bh_sharpe": bh_sharpe,
        "alpha_return_pct": 100.0 * (ret - bh_ret),
        "alpha_sharpe": sharpe - bh_sharpe,
        "market_label": market_label(bh_ret, cfg.market_label_threshold),
    }


# ---------------------------------------------------------------------------------------
# Display
# ---------------------------------------------------------------------------------------

#: Display label and number of decimals per metric key (None: show as text).
METRIC_DISPLAY: dict[str, tuple[str, int | None]] = {
    "n_hours": ("Hours", 0),
    "total_return_pct": ("Total return %", 2),
    "pnl": ("PnL", 2),
    "annualised_return_pct": ("Annualised return %", 2),
    "sharpe": ("Sharpe (ann.)", 3),
    "sortino": ("Sortino (ann.)", 3),
    "max_drawdown_pct": ("Max drawdown %", 2),
    "max_drawdown_duration_h": ("Max DD duration h", 0),
    "calmar": ("Calmar", 3),
    "n_trades": ("Trades", 0),
    "turnover": ("Turnover", 2),
    "fees_paid": ("Fees paid", 2),
    "fees_pct": ("Fees % of capital", 3),
    "exposure_long_pct": ("Long %", 1),
    "exposure_short_pct": ("Short %", 1),
    "exposure_pct": ("Exposure %", 1),
    "mean_position": ("Mean position", 3),
    "n_round_trips": ("Round trips", 0),
    "win_rate_pct": ("Win rate %", 1),
    "timing_horizon_h": ("Timing horizon h", 0),
    "n_buys": ("BUYs", 0),
    "buy_good_pct": ("BUY good %", 1),
    "n_sells": ("SELLs", 0),
    "sell_good_pct": ("SELL good %", 1),
    "timing_verdict": ("Seed-004 verdict (BUY timing)", None),
    "bh_return_pct": ("Buy & hold return %", 2),
    "bh_sharpe": ("Buy & hold Sharpe", 3),
    "alpha_return_pct": ("Alpha vs B&H (return pp)", 2),
    "alpha_sharpe": ("Alpha vs B&H (Sharpe diff)", 3),
    "timing_alpha_return_pct": ("Timing alpha (return pp)", 2),
    "timing_alpha_sharpe": ("Timing alpha (Sharpe diff)", 3),
    "market_label": ("Market", None),
}

#: Columns of the compact one-row-per-strategy table (:func:`strategy_table`).
STRATEGY_TABLE_KEYS = ("total_return_pct", "sharpe", "max_drawdown_pct", "n_trades", "mean_position",
                       "fees_pct", "timing_alpha_return_pct", "timing_alpha_sharpe")


#: Values this large are shown in scientific notation rather than as a wall of digits.
_SCIENTIFIC_ABOVE = 1e9


def metrics_table(results: Mapping[str, Mapping[str, float | str]]) -> pd.DataFrame:
    """Side-by-side table: one row per metric, one column per strategy.

    :param results: strategy name (e.g. ``"agent"``, ``"buy_and_hold"``) to the dict of
        :func:`compute_metrics`.
    :return: a DataFrame of raw (unrounded) values, rows in the order metrics first appear.
    """
    keys: list[str] = []
    for res in results.values():
        keys.extend(k for k in res if k not in keys)
    data = {name: [res.get(k, np.nan) for k in keys] for name, res in results.items()}
    return pd.DataFrame(data, index=pd.Index(keys, name="metric"), dtype=object)


def format_metric(key: str, value: float | str) -> str:
    """Format one value for display with the decimals of :data:`METRIC_DISPLAY`."""
    if isinstance(value, str):
        return value
    if value is None or not np.isfinite(value):
        return "n/a" if value is None or np.isnan(value) else ("inf" if value > 0 else "-inf")
    if abs(value) >= _SCIENTIFIC_ABOVE:  # e.g. a short window's annualised return
        return f"{value:.3e}"
    decimals = METRIC_DISPLAY.get(key, (key, 3))[1]
    return f"{value:,.{decimals if decimals is not None else 3}f}"


def metrics_markdown(table: pd.DataFrame) -> str:
    """Render a :func:`metrics_table` as a GitHub-flavoured markdown table.

    :param table: rows = metric keys, columns = strategies.
    :return: markdown text, numbers rounded per :data:`METRIC_DISPLAY`.
    """
    header = ["Metric", *map(str, table.columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key, row in table.iterrows():
        label = METRIC_DISPLAY.get(str(key), (str(key), 3))[0]
        cells = [format_metric(str(key), v) for v in row]
        lines.append("| " + " | ".join([label, *cells]) + " |")
    return "\n".join(lines)


def strategy_table(
    results: Mapping[str, Mapping[str, float | str | None]], keys: Sequence[str] = STRATEGY_TABLE_KEYS
) -> pd.DataFrame:
    """Compact table: one row per strategy, one column per metric of ``keys``.

    :param results: strategy name to its metrics dict.
    :param keys: metric keys to show; a key a strategy lacks is NaN.
    :return: raw values, index ``strategy``.
    """
    table = pd.DataFrame(
        {k: {name: (np.nan if res.get(k) is None else res.get(k)) for name, res in results.items()} for k in keys},
        dtype=object,
    )
    table.index.name = "strategy"
    return table


def strategy_markdown(table: pd.DataFrame) -> str:
    """Render a :func:`strategy_table` as markdown, labels and decimals per :data:`METRIC_DISPLAY`.

    :param table: rows = strategies, columns = metric keys.
    :return: markdown text.
    """
    header = ["Strategy", *(METRIC_DISPLAY.get(str(k), (str(k), 3))[0] for k in table.columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, row in table.iterrows():
        cells = [format_metric(str(k), v) for k, v in row.items()]
        lines.append("| " + " | ".join([str(name), *cells]) + " |")
    return "\n".join(lines)
