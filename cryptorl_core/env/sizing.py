"""Per-row size multiplier of ``EnvConfig(sizing="vol_target")`` (plan B, seed 004), and the
agent's own target before that multiplier sizes it.

The agent sets direction and timing, a volatility-target rule the size. The rule is
:mod:`cryptorl_core.vol_target` (the ``vol_target`` baseline of every backtest report):
``min(1, target_vol / trailing realised volatility)``, the trailing volatility from the closes
up to the decision bar, the target volatility fitted on the segment's train rows. The column
is computed once, when the env is built, and the env gathers it at each env's row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cryptorl_core.env.config import EnvConfig
from cryptorl_core.vol_target import segment_vol_target


def vol_target_size(frame: pd.DataFrame) -> np.ndarray:
    """The ``vol_target`` baseline's position of every row of a segment frame, in ``[0, 1]``.

    Causal: row ``t`` uses closes up to bar ``t`` (and the target volatility fitted on train
    rows), so changing later prices never changes it. 0 before the first full volatility
    window. Window and cap are :mod:`cryptorl_core.vol_target`'s defaults (those of
    ``BacktestConfig`` too), the same as the ``vol_target`` line of every backtest report.

    :param frame: segment frame (``price_close`` and ``split`` columns).
    :return: ``(n_rows,)`` float64 multipliers.
    """
    return np.asarray(segment_vol_target(frame), dtype=np.float64)


def agent_targets(actions: np.ndarray, config: EnvConfig) -> np.ndarray:
    """The agent's own target of each raw action, before a sizing overlay: ``clip(action_gain *
    action)``, or only its sign under ``sizing="vol_target"`` (where the agent sets direction).

    Why it matters: under an overlay the executed position moves with trailing volatility even
    when the agent's decision never changes, so the collapse rule must read this, not the
    executed position, to see whether the policy reads its inputs.

    :param actions: raw actions, in time order.
    :param config: the env's configuration (gain, long-only, sizing).
    :return: targets in ``[-1, 1]`` (``[0, 1]`` if long-only), not rounded to the grid.
    """
    low = 0.0 if config.long_only else -1.0
    target = np.clip(config.action_gain * np.asarray(actions, dtype=np.float64), low, 1.0)
    return np.sign(target) if config.sizing == "vol_target" else target
