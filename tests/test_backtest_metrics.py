"""Backtest analytics: metrics, timing quality, significance, collapse and plots.

Expected values are worked out by hand in the comments (or from the published formula with
explicit numbers), never by calling the code under test a second way.
"""

from __future__ import annotations

import base64
import math
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

from cryptorl_core.backtest.config import BacktestConfig
from cryptorl_core.backtest.metrics import (
    annualised_return,
    calmar_ratio,
    compute_metrics,
    count_trades,
    exposure,
    market_label,
    max_drawdown,
    metrics_markdown,
    metrics_table,
    nav_from_returns,
    round_trip_pnls,
    sharpe_ratio,
    sortino_ratio,
    turnover,
)
from cryptorl_core.backtest.plots import (
    drawdown_png,
    equity_curve_png,
    png_to_markdown,
    position_png,
)
from cryptorl_core.backtest.significance import (
    deflated_sharpe_ratio,
    dsr_from_stats,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
    psr_from_stats,
    return_moments,
    sharpe_significance,
)
from cryptorl_core.backtest.timing import timing_quality
from cryptorl_core.policy_stats import CollapseRule, action_bins, collapse_stats

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SQRT_HOURS_PER_YEAR = math.sqrt(24 * 365.25)  # an average calendar year of hours

# NAV [100, 110, 99, 108.9]: returns +10 %, -10 %, +10 %.
NAV = [100.0, 110.0, 99.0, 108.9]

# A strategy with fees, a flip and a final open trip (see test_round_trips for the algebra).
POS = [0.0, 1.0, 1.0, -0.5, -0.5, 0.0, 0.5]
TRIP_NAV = [100.0, 102.0, 105.0, 103.0, 104.0, 103.5, 104.0]
FEES = [0.0, 1.0, 0.0, 1.5, 0.0, 0.5, 0.5]


def hourly(values, start="2021-01-01") -> pd.Series:
    idx = pd.date_range(start, periods=len(values), freq="h", tz="UTC", name="timestamp")
    return pd.Series(values, index=idx, dtype=float)


# --------------------------------------------------------------------------- metrics


def test_sharpe_hand_computed():
    # mean = 0.1/3 = 1/30; deviations 1/15, -2/15, 1/15 -> var(ddof=1) = (6/225)/2 = 1/75
    r = [0.1, -0.1, 0.1]
    expected = (1 / 30) / math.sqrt(1 / 75) * SQRT_HOURS_PER_YEAR
    assert sharpe_ratio(r) == pytest.approx(expected, rel=1e-12)
    assert sharpe_ratio(r) == pytest.approx(27.0278, abs=1e-4)
    # annualisation is exactly sqrt(8766)
    assert sharpe_ratio(r, periods_per_year=1) * SQRT_HOURS_PER_YEAR == pytest.approx(sharpe_ratio(r))


def test_sortino_hand_computed():
    # downside deviation over all 3 periods: sqrt((0 + 0.01 + 0) / 3)
    r = [0.1, -0.1, 0.1]
    expected = (1 / 30) / math.sqrt(0.01 / 3) * SQRT_HOURS_PER_YEAR
    assert sortino_ratio(r) == pytest.approx(expected, rel=1e-12)
    assert sortino_ratio(r) == pytest.approx(SQRT_HOURS_PER_YEAR / math.sqrt(3))


def test_ratio_edge_cases():
    assert sharpe_ratio([0.0, 0.0, 0.0]) == 0.0  # always flat
    assert math.isnan(sharpe_ratio([0.01, 0.01]))  # zero variance, non-zero mean
    assert math.isnan(sharpe_ratio([0.01]))
    assert sortino_ratio([0.0, 0.0]) == 0.0
    assert math.isnan(sortino_ratio([0.01, 0.02]))  # no downside


def test_max_drawdown_and_duration():
    # peak 110, trough 99: -10 %; bars 2 and 3 under the peak (108.9 < 110): 2 hours
    mdd, dur = max_drawdown(NAV)
    assert mdd == pytest.approx(-0.10)
    assert dur == 2
    # recovered drawdowns: 2 bars under water, then a new peak, then 1 bar
    mdd, dur = max_drawdown([100, 90, 95, 101, 100, 102])
    assert mdd == pytest.approx(-0.10)
    assert dur == 2
    assert max_drawdown([1, 2, 3]) == (0.0, 0)


def test_annualised_return_and_calmar():
    # 3 periods; with 3 periods per year the annualised return is the total return 8.9 %
    assert annualised_return(NAV, periods_per_year=3) == pytest.approx(0.089)
    # with 6 periods per year it compounds twice: 1.089 ** 2 - 1
    assert annualised_return(NAV, periods_per_year=6) == pytest.approx(0.185921)
    assert calmar_ratio(NAV, periods_per_year=3) == pytest.approx(0.089 / 0.10)
    assert math.isnan(calmar_ratio([1.0, 2.0], periods_per_year=1))  # no drawdown
    assert annualised_return([100.0, 0.0]) == -1.0


def test_trades_turnover_exposure():
    # changes at bars 1 (+1), 3 (-1.5), 5 (+0.5), 6 (+0.5)
    assert count_trades(POS) == 4
    assert turnover(POS) == pytest.approx(3.5)
    # measured bars 1..6: [1, 1, -0.5, -0.5, 0, 0.5]
    long_, short_, any_ = exposure(POS)
    assert (long_, short_, any_) == pytest.approx((3 / 6, 2 / 6, 5 / 6))
    assert count_trades([0.3, 0.3 + 1e-12, 0.3]) == 0  # float noise is not a trade


def test_round_trips():
    # gross bar PnL (NAV change + fee): 3, 3, -0.5, 1, 0, 1
    # long  bars 1-2: 3 + 3 - entry fee 1 - its share of bar 3's flip fee (1.5 * 1/1.5) = 4
    # short bars 3-4: -0.5 + 1 - remaining 0.5 of bar 3's fee - exit fee 0.5 = -0.5
    # long  bar 6 (open at the end): 1 - entry fee 0.5 = 0.5
    pnls = round_trip_pnls(TRIP_NAV, POS, FEES)
    np.testing.assert_allclose(pnls, [4.0, -0.5, 0.5])
    assert pnls.sum() == pytest.approx(TRIP_NAV[-1] - TRIP_NAV[0])  # every fee attributed once
    assert len(round_trip_pnls(NAV, [0, 0, 0, 0])) == 0


def test_market_label_rule():
    assert market_label(0.06, 0.05) == "bullish"
    assert market_label(-0.06, 0.05) == "bearish"
    assert market_label(0.05, 0.05) == "ranging"  # strict inequality
    assert market_label(-0.01, 0.05) == "ranging"


def test_compute_metrics_hand_case():
    cfg = BacktestConfig(initial_capital=10_000.0, timing_horizon_h=1, market_label_threshold=0.05)
    prices = hourly([100, 101, 103, 102, 104, 100, 99])  # buy & hold: -1 %
    m = compute_metrics(hourly(POS), prices, nav=hourly(TRIP_NAV), fees=FEES, config=cfg)
    assert m["n_hours"] == 6
    assert m["total_return_pct"] == pytest.approx(4.0)
    assert m["pnl"] == pytest.approx(400.0)  # 4 NAV units, NAV rebased from 100 to 10,000
    assert m["fees_paid"] == pytest.approx(350.0)
    assert m["fees_pct"] == pytest.approx(3.5)
    assert m["n_trades"] == 4 and m["turnover"] == pytest.approx(3.5)
    assert m["exposure_long_pct"] == pytest.approx(50.0)
    assert m["exposure_short_pct"] == pytest.approx(100 / 3)
    assert m["n_round_trips"] == 3 and m["win_rate_pct"] == pytest.approx(200 / 3)
    assert m["max_drawdown_pct"] == pytest.approx(100 * (103 / 105 - 1))
    assert m["max_drawdown_duration_h"] == 4  # bars 3..6 all below 105
    assert m["bh_return_pct"] == pytest.approx(-1.0)
    assert m["alpha_return_pct"] == pytest.approx(5.0)
    assert m["alpha_sharpe"] == pytest.approx(m["sharpe"] - m["bh_sharpe"])
    assert m["market_label"] == "ranging"
    # default fills: previous close. Horizon 1: BUY at t=1 fills 100, 1 h later 101: good;
    # SELL at t=3 fills 103 -> 102: good; BUY at t=5 fills 104 -> 100: bad; t=6 excluded.
    assert (m["n_buys"], m["buy_good_pct"]) == (2, pytest.approx(50.0))
    assert (m["n_sells"], m["sell_good_pct"]) == (1, pytest.approx(100.0))
    assert list(m)[:3] == ["n_hours", "total_return_pct", "pnl"]  # ordered


def test_compute_metrics_returns_equal_nav():
    nav = hourly(NAV)
    by_nav = compute_metrics([0, 1, 1, 1], NAV, nav=nav, initial_capital=100.0)
    by_ret = compute_metrics([0, 1, 1, 1], NAV, returns=nav.pct_change(), initial_capital=100.0)
    for key, value in by_nav.items():
        assert by_ret[key] == (
            value if isinstance(value, str) else pytest.approx(value, nan_ok=True)
        )
    np.testing.assert_allclose(nav_from_returns(nav.pct_change(), 100.0), NAV)
    # B&H on the same prices as the NAV: zero alpha, 8.9 % return, Sharpe 27.0185
    assert by_nav["bh_return_pct"] == pytest.approx(8.9)
    assert by_nav["alpha_sharpe"] == pytest.approx(0.0)
    assert by_nav["sharpe"] == pytest.approx(27.0278, abs=1e-4)


def test_compute_metrics_rejects_bad_input():
    with pytest.raises(ValueError, match="exactly one"):
        compute_metrics([0, 1], [1, 2])
    with pytest.raises(ValueError, match="same length"):
        compute_metrics([0, 1, 1], [1, 2], nav=[1, 2])
    gappy = hourly(NAV).drop(hourly(NAV).index[1])
    with pytest.raises(ValueError, match="hourly"):
        compute_metrics([0, 1, 1], gappy.values, nav=gappy)


def test_metrics_table_and_markdown():
    cfg = BacktestConfig(initial_capital=100.0)
    agent = compute_metrics([0, 1, 1, 1], NAV, nav=NAV, config=cfg)
    flat = compute_metrics([0, 0, 0, 0], NAV, nav=[100.0] * 4, config=cfg)
    table = metrics_table({"agent": agent, "flat": flat})
    assert list(table.columns) == ["agent", "flat"]
    assert list(table.index) == list(agent)
    assert table.loc["total_return_pct", "agent"] == pytest.approx(8.9)
    assert table.loc["sharpe", "flat"] == 0.0
    md = metrics_markdown(table)
    lines = md.splitlines()
    assert lines[0] == "| Metric | agent | flat |"
    assert len(lines) == 2 + len(agent)
    assert "| Total return % | 8.90 | 0.00 |" in lines
    assert "| Max drawdown % | -10.00 | 0.00 |" in lines
    assert "| Win rate % | 100.0 | n/a |" in lines  # flat: no round trip
    assert "e+" in next(line for line in lines if line.startswith("| Annualised"))


# --------------------------------------------------------------------------- timing


def test_timing_quality_tiny_path():
    px = [100, 101, 103, 102, 104, 100, 99]
    # horizon 2: BUY t=1 101 -> px[3]=102 good; SELL t=3 102 -> px[5]=100 good;
    # t=5 and t=6 have t+2 >= 7: excluded
    tq = timing_quality(POS, px, horizon_h=2)
    assert (tq.n_buys, tq.buy_good, tq.n_sells, tq.sell_good, tq.n_excluded) == (1, 1, 1, 1, 2)
    # horizon 1: BUY t=1 101 -> 103 good; SELL t=3 102 -> 104 bad; BUY t=5 100 -> 99 bad
    tq = timing_quality(POS, px, horizon_h=1)
    assert (tq.n_buys, tq.buy_good, tq.n_sells, tq.sell_good, tq.n_excluded) == (2, 1, 1, 0, 1)
    assert tq.buy_good_pct == pytest.approx(50.0) and tq.sell_good_pct == 0.0
    assert tq.as_dict()["horizon_h"] == 1


def test_timing_quality_ties_and_no_trades():
    tq = timing_quality([0, 1, 1], [10, 10, 10], horizon_h=1)  # flat price: not good
    assert (tq.n_buys, tq.buy_good) == (1, 0)
    tq = timing_quality([0, 0, 0], [1, 2, 3], horizon_h=1)
    assert math.isnan(tq.buy_good_pct) and math.isnan(tq.sell_good_pct)
    assert timing_quality([0, 1], [1, 2], config=BacktestConfig.quick()).horizon_h == 12


# --------------------------------------------------------------------------- significance


def phi(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def test_psr_hand_computed():
    # SR 0.1, n 101, skew -0.5, kurtosis 4: 1 + 0.05 + 3/4 * 0.01 = 1.0575
    # z = 0.1 * sqrt(100) / sqrt(1.0575) = 0.97243
    expected = phi(1.0 / math.sqrt(1.0575))
    assert psr_from_stats(0.1, 101, -0.5, 4.0) == pytest.approx(expected, rel=1e-9)
    assert psr_from_stats(0.1, 101, -0.5, 4.0) == pytest.approx(0.83459, abs=1e-5)
    # against a benchmark: z = (0.1 - 0.05) * 10 / sqrt(1.0575)
    assert psr_from_stats(0.1, 101, -0.5, 4.0, 0.05) == pytest.approx(
        phi(0.5 / math.sqrt(1.0575)), rel=1e-9
    )


def test_psr_edges():
    assert psr_from_stats(0.2, 500, 0.3, 5.0, sr_benchmark=0.2) == pytest.approx(0.5)
    values = [psr_from_stats(0.05, n, 0.0, 3.0) for n in (10, 100, 1000, 10000)]
    assert all(a < b for a, b in zip(values[:-1], values[1:], strict=True))
    assert psr_from_stats(-0.05, 1000, 0.0, 3.0) < 0.5
    assert math.isnan(psr_from_stats(0.1, 1, 0.0, 3.0))
    assert math.isnan(psr_from_stats(1.0, 100, 5.0, 3.0))  # 1 - 5 + 0.5 < 0


def test_return_moments_and_psr_from_returns():
    r = np.array([0.01, -0.02, 0.03, 0.0, 0.01])
    mean = 0.006  # 0.03 / 5
    dev = r - mean  # [0.004, -0.026, 0.024, -0.006, 0.004]
    m2, m3, m4 = (dev**2).mean(), (dev**3).mean(), (dev**4).mean()
    sr, n, skew, kurt = return_moments(r)
    assert sr == pytest.approx(mean / math.sqrt((dev**2).sum() / 4))
    assert n == 5
    assert skew == pytest.approx(m3 / m2**1.5)
    assert kurt == pytest.approx(m4 / m2**2)  # non-excess
    z = sr * 2.0 / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
    assert probabilistic_sharpe_ratio(r) == pytest.approx(phi(z))


def test_expected_max_sharpe_and_dsr():
    # N = 10, V = 0.04: sqrt(V) = 0.2
    g = 0.5772156649015329
    z1 = NormalDist().inv_cdf(0.9)  # 1.28155
    z2 = NormalDist().inv_cdf(1 - 1 / (10 * math.e))  # 1.78947
    expected = 0.2 * ((1 - g) * z1 + g * z2)
    assert expected_max_sharpe(10, 0.04) == pytest.approx(expected, rel=1e-9)
    assert expected_max_sharpe(10, 0.04) == pytest.approx(0.3150, abs=1e-4)
    assert expected_max_sharpe(1, 0.04) == 0.0
    assert expected_max_sharpe(100, 0.04) > expected_max_sharpe(10, 0.04)
    # DSR = PSR against SR*; a single trial is not deflated
    dsr = dsr_from_stats(0.1, 101, -0.5, 4.0, n_trials=10, sr_variance=0.0001)
    sr_star = 0.01 * ((1 - g) * z1 + g * z2)
    assert dsr == pytest.approx(phi((0.1 - sr_star) * 10 / math.sqrt(1.0575)), rel=1e-9)
    assert dsr < psr_from_stats(0.1, 101, -0.5, 4.0)
    r = np.random.default_rng(1).normal(0.001, 0.01, 2000)
    assert deflated_sharpe_ratio(r, 1, 0.0) == pytest.approx(probabilistic_sharpe_ratio(r))
    summary = sharpe_significance(r, n_trials=10, sr_variance=0.04)
    assert summary["sr_star"] == pytest.approx(expected)
    assert summary["dsr"] < summary["psr"]


# --------------------------------------------------------------------------- collapse


def test_action_bins():
    idx, centres = action_bins([0.04, 0.06, -0.96, 1.3, -0.149])
    assert len(centres) == 21
    np.testing.assert_allclose(centres[idx], [0.0, 0.1, -1.0, 1.0, -0.1])


def test_collapse_constant_actions():
    stats = collapse_stats([0.5] * 100)
    assert stats.entropy_bits == 0.0 and stats.entropy_frac == 0.0
    assert stats.modal_action == pytest.approx(0.5) and stats.modal_share == 1.0
    assert stats.n_trades == 0 and stats.n_actions == 100
    collapsed, reasons = CollapseRule().verdict(stats)
    assert collapsed and len(reasons) == 3
    assert "+0.5" in reasons[0] and "100.0%" in reasons[0]


def test_collapse_varied_actions():
    stats = collapse_stats([-1.0, 1.0] * 50)  # two bins, half each: 1 bit
    assert stats.entropy_bits == pytest.approx(1.0)
    assert stats.entropy_frac == pytest.approx(1.0 / math.log2(21))
    assert stats.modal_share == 0.5 and stats.n_trades == 99
    assert stats.as_dict()["histogram"] == {"-1.0": 50, "+1.0": 50}
    assert CollapseRule().verdict(stats) == (False, [])
    # four bins over a quarter (2,160 bars): 2 bits, but 3 trades < 10
    stats = collapse_stats(np.repeat([0.0, 0.1, 0.2, 0.3], 540))
    assert stats.entropy_bits == pytest.approx(2.0) and stats.n_trades == 3
    collapsed, reasons = CollapseRule().verdict(stats)
    assert collapsed and reasons == ["3 trades over 2160 bars (< 10)"]
    assert CollapseRule(min_trades=3).verdict(stats) == (False, [])
    # The floor is per quarter, scaled to the window: 4 trades pass over one month (720 bars).
    assert CollapseRule().verdict(collapse_stats(np.repeat([0.0, 0.1, 0.2, 0.3, 0.4], 144))) == (False, [])
    # Every calendar quarter (2,160 to 2,208 bars) needs exactly the 10 trades.
    assert [CollapseRule().required_trades(n) for n in (2208, 2184, 2160, 720, 100, 1)] == [10, 10, 10, 4, 1, 1]
    assert CollapseRule().required_trades(2209) == 11
    assert CollapseRule.off().required_trades(2160) == 0


def test_collapse_modal_share_threshold():
    actions = [0.0] * 96 + [1.0, 0.0, 1.0, 0.0]  # modal share 98 %, 4 trades
    stats = collapse_stats(actions)
    assert stats.modal_share == pytest.approx(0.98) and stats.n_trades == 4
    # -(0.98 log2 0.98 + 0.02 log2 0.02) = 0.14144 bits, 0.0322 of log2(21)
    assert stats.entropy_bits == pytest.approx(0.14144, abs=1e-5)
    collapsed, reasons = CollapseRule(max_modal_share=0.95, min_trades=2, window_bars=100).verdict(stats)
    assert collapsed and len(reasons) == 2
    assert "98.0%" in reasons[0] and "entropy 0.032" in reasons[1]
    relaxed = {"min_trades": 2, "min_entropy_frac": 0.0, "window_bars": 100}
    assert CollapseRule(max_modal_share=0.95, **relaxed).verdict(stats)[1] == [reasons[0]]
    assert CollapseRule(max_modal_share=0.99, **relaxed).verdict(stats) == (False, [])


# --------------------------------------------------------------------------- plots


def test_plots_are_small_pngs(tmp_path):
    rng = np.random.default_rng(0)
    n = 2200  # a calendar quarter of hours
    prices = hourly(100 * np.exp(np.cumsum(rng.normal(0, 0.01, n))))
    agent = hourly(100 * np.exp(np.cumsum(rng.normal(0, 0.005, n))))
    positions = np.sign(np.sin(np.arange(n) / 50.0))
    navs = {"agent": agent, "buy_and_hold": prices, "flat": hourly(np.full(n, 100.0))}

    out = tmp_path / "sub" / "equity.png"
    pngs = [
        equity_curve_png(navs, path=out),
        drawdown_png(navs),
        position_png(prices, positions),
        position_png(prices.values, positions),  # plain arrays work too
    ]
    for png in pngs:
        assert png.startswith(PNG_MAGIC)
        assert len(png_to_markdown(png)) < 150_000
    assert out.read_bytes() == pngs[0]

    md = png_to_markdown(pngs[0], alt="equity")
    assert md.startswith("![equity](data:image/png;base64,") and md.endswith(")")
    assert base64.b64decode(md[len("![equity](data:image/png;base64,") : -1]) == pngs[0]
    with pytest.raises(ValueError):
        position_png(prices, positions[:-1])
