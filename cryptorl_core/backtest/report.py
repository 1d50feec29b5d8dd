"""Backtest report of one walk-forward segment: the agent against the baselines.

Every strategy runs through the same sequential environment over the same window with the same
lag and costs (:mod:`cryptorl_core.backtest.runner`): the agent; the price rules buy-and-hold,
flat, SMA crossover, momentum and ``vol_target`` (:mod:`cryptorl_core.backtest.baselines`);
with the HMM context, ``regime_rule`` and ``regime_rule_long_only``; on synthetic data, the
``regime_oracle`` upper bound (:mod:`cryptorl_core.backtest.regime_baselines`); and
``exposure_matched``, the agent's mean position held throughout, whose difference to the agent
is the agent's timing alpha (:mod:`cryptorl_core.backtest.exposure`). The report gathers their
metrics into one table, the timing quality of their trades, the collapse statistics of the
agent's actions and the charts, seed 004's verdict on the agent's BUY timing
(:mod:`cryptorl_core.backtest.verdict`) and, when ``BacktestConfig.stochastic_episodes > 0``, the
mean and std of the agent's main metrics over that many seeded stochastic episodes
(:mod:`cryptorl_core.backtest.stochastic`).

:meth:`BacktestReport.save` writes a folder that the walk-forward summary reads back::

    metrics.json        {"key", "split", "start", "end", "metrics": {strategy: {...}},
                         "collapse": {...}, "collapsed": bool, "collapse_reasons": [...],
                         "timing_verdict": str, "stochastic": {...} (only when run)}
    steps.parquet       the agent's per-bar record (runner.STEP_COLUMNS)
    strategies.parquet  nav_<strategy> and position_<strategy> of every strategy, per bar
    report.md           the agent's seed-004 verdict, the compact per-strategy table, the
                        stochastic evaluation (when run), then the full metrics table
    equity.png, position.png, drawdown.png
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from cryptorl_core.backtest.config import BacktestConfig
from cryptorl_core.backtest.exposure import EXPOSURE_MATCHED, run_exposure_matched, timing_alpha
from cryptorl_core.backtest.metrics import (
    metrics_markdown,
    metrics_table,
    strategy_markdown,
    strategy_table,
)
from cryptorl_core.backtest.plots import drawdown_png, equity_curve_png, position_png
from cryptorl_core.backtest.regime_baselines import RegimeContextLike
from cryptorl_core.backtest.runner import (
    ActionFn,
    BacktestRun,
    PredictsActions,
    run_backtest,
    run_baselines,
)
from cryptorl_core.backtest.stochastic import StochasticEvaluation, evaluate_stochastic
from cryptorl_core.backtest.verdict import verdict_line
from cryptorl_core.env import EnvConfig
from cryptorl_core.policy_stats import CollapseStats, collapse_stats
from cryptorl_core.schema import TEST

AGENT = "agent"
METRICS_FILE = "metrics.json"
STEPS_FILE = "steps.parquet"
STRATEGIES_FILE = "strategies.parquet"
TABLE_FILE = "report.md"
PLOT_FILES = {"equity": "equity.png", "position": "position.png", "drawdown": "drawdown.png"}

#: Metric keys of the timing-quality table.
TIMING_KEYS = ("timing_horizon_h", "n_buys", "buy_good_pct", "n_sells", "sell_good_pct", "timing_verdict")


def jsonable(value: Any) -> Any:
    """Nested dicts/lists with numpy scalars made plain and non-finite floats made ``None``.

    :param value: a metrics dict or any nesting of dicts, lists and scalars.
    :return: a value ``json.dumps`` accepts with ``allow_nan=False``.
    """
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


@dataclass
class BacktestReport:
    """The agent and the baselines over one window.

    :param key: segment key (``2025-Q4``), or any label.
    :param runs: strategy name to run; ``"agent"`` first.
    :param config: analytics configuration (timing horizon, collapse thresholds, plots).
    :param audit: optional extra policy-collapse audit (:func:`~cryptorl_core.backtest.audit.audit_policy`).
    :param stochastic: optional multi-episode stochastic evaluation of the agent
        (:func:`~cryptorl_core.backtest.stochastic.evaluate_stochastic`).
    """

    key: str
    runs: dict[str, BacktestRun]
    config: BacktestConfig = field(default_factory=BacktestConfig)
    audit: dict[str, Any] | None = None
    stochastic: StochasticEvaluation | None = None

    def __post_init__(self) -> None:
        if AGENT not in self.runs:
            raise ValueError(f"a report needs an {AGENT!r} run, got {list(self.runs)}")
        self._metrics: dict[str, dict[str, float | str]] | None = None

    @property
    def agent(self) -> BacktestRun:
        return self.runs[AGENT]

    @property
    def metrics(self) -> dict[str, dict[str, float | str]]:
        """Strategy name to :func:`~cryptorl_core.backtest.metrics.compute_metrics` (computed once);
        with an ``exposure_matched`` run the agent's also holds its timing alpha."""
        if self._metrics is None:
            metrics = {name: run.metrics(self.config) for name, run in self.runs.items()}
            if EXPOSURE_MATCHED in metrics:
                metrics[AGENT].update(timing_alpha(metrics[AGENT], metrics[EXPOSURE_MATCHED]))
            self._metrics = metrics
        return self._metrics

    @cached_property
    def collapse(self) -> CollapseStats:
        """Action histogram, entropy, modal share and trades of the agent's executed targets
        (computed once, like :attr:`metrics`)."""
        return collapse_stats(self.agent.actions, self.config.action_bin_width)

    @cached_property
    def decision_collapse(self) -> CollapseStats | None:
        """Statistics of the agent's own target before a sizing overlay (``sizing`` other than
        ``agent``) sized it, computed once; None without an overlay.

        The executed targets may change by the overlay's doing alone (a ``vol_scaled`` agent
        holding +1 still trades as trailing volatility moves); this shows how many changes the
        agent decided, and it is what :meth:`collapse_verdict` reads."""
        own = self.agent.own_targets
        return None if own is None else collapse_stats(own, self.config.action_bin_width)

    def collapse_verdict(self) -> tuple[bool, list[str]]:
        """``(collapsed, reasons)`` under the configured thresholds, on the agent's own target
        under a sizing overlay (:attr:`decision_collapse`), else on the executed targets: the
        overlay's trades are not the policy's, and training's selection reads the same."""
        return self.config.collapse.verdict(self.decision_collapse or self.collapse)

    def table(self) -> pd.DataFrame:
        """One row per metric, one column per strategy (raw values)."""
        return metrics_table(self.metrics)

    def markdown(self) -> str:
        """The table as markdown, rounded for display."""
        return metrics_markdown(self.table())

    def compact_markdown(self) -> str:
        """The compact one-row-per-strategy table (return, Sharpe, ..., timing alpha) as markdown."""
        return strategy_markdown(strategy_table(self.metrics))

    def verdict(self) -> str:
        """Seed 004's verdict on the agent's BUY timing (``success``, ``partial``, ``failure``, ``no buys``)."""
        return str(self.metrics[AGENT]["timing_verdict"])

    def verdict_line(self) -> str:
        """The agent's verdict with its evidence and thresholds, as one sentence."""
        return verdict_line(self.metrics[AGENT], self.config)

    def stochastic_markdown(self) -> str:
        """The stochastic evaluation (mean ± std beside the deterministic run); empty when not run."""
        return self.stochastic.markdown(self.metrics[AGENT]) if self.stochastic is not None else ""

    def timing_table(self) -> pd.DataFrame:
        """BUY-good / SELL-good shares of every strategy (one row per strategy)."""
        return pd.DataFrame({k: {n: m[k] for n, m in self.metrics.items()} for k in TIMING_KEYS})

    def plots(self) -> dict[str, bytes]:
        """Equity of every strategy, the agent's position on the price, drawdowns (PNG bytes)."""
        navs = {name: run.nav for name, run in self.runs.items()}
        a = self.agent.steps
        title = f"{self.key} {self.agent.split}"
        return {
            "equity": equity_curve_png(navs, title=f"{title}: equity (growth of 1)", config=self.config),
            "position": position_png(a["price_close"], a["position"], title=f"{title}: agent position",
                                     config=self.config),
            "drawdown": drawdown_png(navs, title=f"{title}: drawdown (%)", config=self.config),
        }

    def strategies_frame(self) -> pd.DataFrame:
        """``nav_<name>`` and ``position_<name>`` of every strategy, plus the prices, per bar."""
        cols = {"price_open": self.agent.steps["price_open"], "price_close": self.agent.steps["price_close"]}
        for name, run in self.runs.items():
            cols[f"nav_{name}"] = run.nav
            cols[f"position_{name}"] = run.positions
        return pd.DataFrame(cols)

    def summary(self) -> dict[str, Any]:
        """The contents of ``metrics.json`` (plain JSON types, NaN as null)."""
        collapsed, reasons = self.collapse_verdict()
        own = self.decision_collapse
        idx = self.agent.steps.index
        extra = {"stochastic": self.stochastic.as_dict()} if self.stochastic is not None else {}
        return jsonable({
            "key": self.key,
            "split": self.agent.split,
            "start": str(idx[0]),
            "end": str(idx[-1]),
            "w_cost": self.agent.w_cost,
            "env_config": self.agent.env_config,
            "metrics": self.metrics,
            "collapse": self.collapse.as_dict(),
            "collapsed": collapsed,
            "collapse_reasons": reasons,
            "decision_collapse": None if own is None else own.as_dict(),
            "audit": self.audit,
            "timing_verdict": self.verdict(),
            **extra,
        })

    def record(self, directory: str | Path) -> BacktestRecord:
        """The downstream record of this report, saved in ``directory``."""
        summary = self.summary()
        return BacktestRecord(key=self.key, directory=str(directory), metrics=summary["metrics"],
                              collapsed=summary["collapsed"], collapse_reasons=summary["collapse_reasons"])

    def report_markdown(self) -> str:
        """The contents of ``report.md``: title, verdict, compact table, stochastic evaluation, full table."""
        parts = [f"# Backtest {self.key} ({self.agent.split})",
                 f"Seed-004 verdict (agent BUY timing): {self.verdict_line()}", self.compact_markdown()]
        if (own := self.decision_collapse) is not None:
            executed = self.collapse
            parts.append(f"Sizing overlay `{self.agent.env_config['sizing']}`: {executed.n_trades} executed trades, "
                         f"{own.n_trades} of the agent's own target (held {own.modal_action:+.1f} "
                         f"{own.modal_share:.1%} of the bars, against {executed.modal_share:.1%} executed); "
                         "the collapse verdict reads the agent's own.")
        if self.stochastic is not None:
            parts.append(f"## Stochastic evaluation\n\n{self.stochastic_markdown()}")
        return "\n\n".join([*parts, self.markdown()]) + "\n"

    def save(self, directory: str | Path, plots: Mapping[str, bytes] | None = None) -> dict[str, Path]:
        """Write the report folder (see the module docstring).

        :param directory: target folder (created).
        :param plots: PNGs from :meth:`plots`, to avoid rendering twice; rendered when None.
        :return: file role to path.
        """
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        paths = {
            "metrics": out / METRICS_FILE,
            "steps": out / STEPS_FILE,
            "strategies": out / STRATEGIES_FILE,
            "table": out / TABLE_FILE,
        }
        paths["metrics"].write_text(json.dumps(self.summary(), indent=2, allow_nan=False))
        self.agent.steps.to_parquet(paths["steps"])
        self.strategies_frame().to_parquet(paths["strategies"])
        paths["table"].write_text(self.report_markdown())
        for name, png in (plots if plots is not None else self.plots()).items():
            paths[name] = out / PLOT_FILES[name]
            paths[name].write_bytes(png)
        return paths


@dataclass(frozen=True)
class BacktestRecord:
    """What the ``backtest_report`` stage hands downstream: plain data, picklable anywhere.

    :param key: segment key.
    :param directory: the published report folder (see the module docstring).
    :param metrics: strategy name to its metrics (NaN kept as None).
    :param collapsed: the agent failed a collapse criterion.
    :param collapse_reasons: the failed criteria.
    """

    key: str
    directory: str
    metrics: dict[str, dict[str, Any]]
    collapsed: bool
    collapse_reasons: list[str]

    @property
    def table(self) -> pd.DataFrame:
        """The metrics table (one column per strategy)."""
        return metrics_table(self.metrics)

    def markdown(self) -> str:
        """The metrics table as markdown."""
        return metrics_markdown(self.table.map(lambda v: np.nan if v is None else v))

    def compact_markdown(self) -> str:
        """The compact one-row-per-strategy table as markdown."""
        return strategy_markdown(strategy_table(self.metrics))


def build_report(
    policy: PredictsActions | ActionFn,
    frame: pd.DataFrame,
    split: str = TEST,
    *,
    key: str = "",
    env_config: EnvConfig | None = None,
    config: BacktestConfig | None = None,
    device: torch.device | str = "cpu",
    regime_context: RegimeContextLike | None = None,
) -> BacktestReport:
    """Run the agent (deterministic), every baseline and the agent's exposure-matched line over
    ``split`` and gather the report; with ``config.stochastic_episodes > 0``, also the agent's
    seeded stochastic episodes (:func:`~cryptorl_core.backtest.stochastic.evaluate_stochastic`).

    :param policy: SB3 model or ``obs -> action`` callable.
    :param frame: segment frame (with ``true_regime`` on synthetic data: adds the oracle line).
    :param split: window to test on.
    :param key: segment key for titles and files.
    :param env_config: the training env configuration (same lag and costs for everyone).
    :param config: analytics configuration.
    :param device: torch device of the envs.
    :param regime_context: HMM context of every frame row, or the regime model; adds
        ``regime_rule`` and ``regime_rule_long_only`` when given.
    :return: the report; strategies in the order agent, price rules, regime rules, oracle,
        ``exposure_matched``.
    """
    cfg = config or BacktestConfig()
    agent = run_backtest(policy, frame, split, name=AGENT, env_config=env_config,
                         w_cost=cfg.eval_w_cost, device=device)
    runs = {AGENT: agent}
    runs.update(run_baselines(frame, split, config=cfg, env_config=env_config, device=device,
                              regime_context=regime_context))
    runs[EXPOSURE_MATCHED] = run_exposure_matched(agent, frame, env_config=env_config, device=device)
    stochastic = None
    if cfg.stochastic_episodes > 0:
        stochastic = evaluate_stochastic(policy, frame, split, episodes=cfg.stochastic_episodes,
                                         seed=cfg.stochastic_seed, env_config=env_config,
                                         w_cost=cfg.eval_w_cost, config=cfg, device=device)
    return BacktestReport(key=key, runs=runs, config=cfg, stochastic=stochastic)


def read_report_summary(directory: str | Path) -> dict[str, Any]:
    """``metrics.json`` of a saved report folder."""
    return json.loads((Path(directory) / METRICS_FILE).read_text())


def read_strategies(directory: str | Path) -> pd.DataFrame:
    """``strategies.parquet`` of a saved report folder (NAV and position of every strategy)."""
    return pd.read_parquet(Path(directory) / STRATEGIES_FILE)
