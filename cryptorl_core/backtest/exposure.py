"""Exposure-matched baseline and timing alpha: does the agent time the market, or only hold less of it?

An agent that is merely 20 % invested beats buy-and-hold in every falling quarter without
timing anything. ``exposure_matched`` holds, from the window's first fill to its end, a constant
position equal to the agent's mean position over the window, through the same env (same fee,
slippage and one-bar lag, so it pays one entry trade). Timing alpha is what the agent earns on
top of that::

    timing_alpha_return_pct = agent total return % - exposure_matched total return %  (pp)
    timing_alpha_sharpe     = agent Sharpe - exposure_matched Sharpe

The agent's mean position is the mean of the positions it held over the measured bars (every
row but the first, which is the flat start before any return). The env's position grid is
switched off for this one line only: the mean of grid positions is usually not on the grid,
and rounding it would match a different exposure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch

from cryptorl_core.backtest.runner import BacktestRun, run_targets
from cryptorl_core.env import EnvConfig

EXPOSURE_MATCHED = "exposure_matched"

#: Keys added to the agent's metrics by :func:`timing_alpha`.
TIMING_ALPHA_KEYS = ("timing_alpha_return_pct", "timing_alpha_sharpe")


def mean_position(run: BacktestRun) -> float:
    """The run's mean position over the measured bars (rows 1..T-1; row 0 is the flat start),
    as in the ``mean_position`` metric.

    :param run: a backtest run of at least two rows.
    :return: the mean signed position (fraction of NAV).
    """
    held = run.positions.to_numpy(dtype=float)[1:]
    if len(held) == 0:
        raise ValueError("a run needs at least two rows to have a held position")
    return float(held.mean())


def run_exposure_matched(
    agent: BacktestRun,
    frame: pd.DataFrame,
    *,
    env_config: EnvConfig | None = None,
    device: torch.device | str = "cpu",
) -> BacktestRun:
    """Hold the agent's mean position over the agent's window, with the same costs and lag.

    :param agent: the agent's run (its split and mean position are matched).
    :param frame: the segment frame the agent ran on.
    :param env_config: the agent's env configuration; its position grid is switched off here.
    :param device: torch device of the env.
    :return: the ``exposure_matched`` run.
    """
    exact = (env_config or EnvConfig()).with_overrides(position_step=0.0)
    targets = np.full(len(frame), mean_position(agent))
    return run_targets(targets, frame, agent.split, name=EXPOSURE_MATCHED, env_config=exact, device=device)


def timing_alpha(agent_metrics: Mapping[str, Any], matched_metrics: Mapping[str, Any]) -> dict[str, float]:
    """The agent's timing alpha over its exposure-matched line (see the module docstring).

    :param agent_metrics: the agent's :func:`~cryptorl_core.backtest.metrics.compute_metrics`.
    :param matched_metrics: the ``exposure_matched`` line's metrics.
    :return: :data:`TIMING_ALPHA_KEYS` to values.
    """
    return {
        "timing_alpha_return_pct": float(agent_metrics["total_return_pct"]) - float(matched_metrics["total_return_pct"]),
        "timing_alpha_sharpe": float(agent_metrics["sharpe"]) - float(matched_metrics["sharpe"]),
    }
