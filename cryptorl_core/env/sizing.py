"""Per-row size multiplier of ``EnvConfig(sizing="vol_target")`` (plan B, seed 004).

The agent sets direction and timing, a volatility-target rule the size. The rule is the
``vol_target`` baseline of :mod:`cryptorl_core.backtest.baselines` (it exists there only):
``min(1, target_vol / trailing realised volatility)``, the trailing volatility from the closes
up to the decision bar, the target volatility fitted on the segment's train rows. The column
is computed once, when the env is built, and the env gathers it at each env's row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def vol_target_size(frame: pd.DataFrame) -> np.ndarray:
    """The ``vol_target`` baseline's position of every row of a segment frame, in ``[0, 1]``.

    Causal: row ``t`` uses closes up to bar ``t`` (and the target volatility fitted on train
    rows), so changing later prices never changes it. 0 before the first full volatility
    window. Window and cap are :class:`~cryptorl_core.backtest.config.BacktestConfig`'s
    defaults, the same as the ``vol_target`` line of every backtest report.

    :param frame: segment frame (``price_close`` and ``split`` columns).
    :return: ``(n_rows,)`` float64 multipliers.
    """
    # Imported here: the backtest package runs its strategies through this env.
    from cryptorl_core.backtest.baselines import segment_vol_target

    return np.asarray(segment_vol_target(frame), dtype=np.float64)
