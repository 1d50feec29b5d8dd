"""Seed 004's verdict on a strategy: the quality of its BUY timing.

Seed 004 judges a policy by the share of its BUYs that the price N hours later proved right
(:mod:`cryptorl_core.backtest.timing`): at least 50 % good BUYs is a *success*, 35-50 % a
*partial* success, under 30 % a *failure*. The seed leaves 30-35 % unnamed; this project calls
that band a *failure* too (a "partial" verdict needs the seed's own partial criterion, >= 35 %,
to be met), so the verdict has two thresholds, ``BacktestConfig.verdict_success_buy_good_pct``
and ``BacktestConfig.verdict_partial_buy_good_pct``. A window without a BUY whose outcome is
observed has no timing to judge: its verdict is ``"no buys"``, never a success.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from cryptorl_core.backtest.config import BacktestConfig

SUCCESS = "success"
PARTIAL = "partial"
FAILURE = "failure"
NO_BUYS = "no buys"
#: Every verdict, best first.
VERDICTS = (SUCCESS, PARTIAL, FAILURE, NO_BUYS)


def buy_timing_verdict(n_buys: int, buy_good_pct: float | None, config: BacktestConfig | None = None) -> str:
    """Seed 004's verdict from the share of good BUYs.

    :param n_buys: BUYs whose outcome is inside the window.
    :param buy_good_pct: share of those BUYs followed by a higher price N hours later, in %
        (NaN, or None once read back from JSON, without BUYs).
    :param config: the success and partial thresholds (``BacktestConfig()`` when None).
    :return: ``"success"`` (>= the success threshold), ``"partial"`` (>= the partial one),
        ``"failure"`` (below it) or ``"no buys"``.
    """
    cfg = config or BacktestConfig()
    if cfg.verdict_partial_buy_good_pct > cfg.verdict_success_buy_good_pct:
        raise ValueError("verdict_partial_buy_good_pct must not exceed verdict_success_buy_good_pct")
    if n_buys <= 0 or buy_good_pct is None or not math.isfinite(buy_good_pct):
        return NO_BUYS
    if buy_good_pct >= cfg.verdict_success_buy_good_pct:
        return SUCCESS
    if buy_good_pct >= cfg.verdict_partial_buy_good_pct:
        return PARTIAL
    return FAILURE


def verdict_line(metrics: Mapping[str, Any], config: BacktestConfig | None = None) -> str:
    """One sentence stating a strategy's verdict, its evidence and the thresholds.

    :param metrics: the strategy's metrics (``timing_verdict``, ``n_buys``, ``buy_good_pct``,
        ``timing_horizon_h``).
    :param config: the thresholds shown.
    :return: e.g. ``"partial: 42.0 % of 50 BUYs good after 24 h (seed 004: success >= 50 %,
        partial >= 35 %)"``.
    """
    cfg = config or BacktestConfig()
    n_buys = int(metrics.get("n_buys") or 0)
    pct = metrics.get("buy_good_pct")
    verdict = metrics.get("timing_verdict") or buy_timing_verdict(n_buys, pct, cfg)
    evidence = "no BUY with an observed outcome" if verdict == NO_BUYS else (
        f"{pct:.1f} % of {n_buys} BUYs good after {metrics.get('timing_horizon_h')} h")
    return (f"{verdict}: {evidence} (seed 004: success >= {cfg.verdict_success_buy_good_pct:g} %, "
            f"partial >= {cfg.verdict_partial_buy_good_pct:g} %)")
