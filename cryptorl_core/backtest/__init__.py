"""Backtest analytics: metrics, timing quality, baselines, significance, collapse audit, plots.

Pure functions of arrays / Series; running the agent and the baselines through the
environment (execution lag, costs) happens elsewhere.
"""

from cryptorl_core.backtest.baselines import (
    baseline_positions,
    buy_and_hold,
    flat,
    momentum,
    segment_baseline_positions,
    sma_crossover,
)
from cryptorl_core.backtest.config import BacktestConfig
from cryptorl_core.backtest.metrics import (
    compute_metrics,
    max_drawdown,
    metrics_markdown,
    metrics_table,
    sharpe_ratio,
    sortino_ratio,
)
from cryptorl_core.backtest.plots import (
    drawdown_png,
    equity_curve_png,
    png_to_markdown,
    position_png,
)
from cryptorl_core.backtest.regime_baselines import (
    regime_oracle_positions,
    regime_probabilities,
    regime_rule_positions,
)
from cryptorl_core.backtest.significance import (
    deflated_sharpe_ratio,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
    sharpe_significance,
)
from cryptorl_core.backtest.timing import TimingQuality, timing_quality

__all__ = [
    "BacktestConfig",
    "TimingQuality",
    "baseline_positions",
    "buy_and_hold",
    "compute_metrics",
    "deflated_sharpe_ratio",
    "drawdown_png",
    "equity_curve_png",
    "expected_max_sharpe",
    "flat",
    "max_drawdown",
    "metrics_markdown",
    "metrics_table",
    "momentum",
    "png_to_markdown",
    "position_png",
    "probabilistic_sharpe_ratio",
    "regime_oracle_positions",
    "regime_probabilities",
    "regime_rule_positions",
    "segment_baseline_positions",
    "sharpe_ratio",
    "sharpe_significance",
    "sma_crossover",
    "sortino_ratio",
    "timing_quality",
]
