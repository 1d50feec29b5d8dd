"""Per-row size multiplier of ``EnvConfig(sizing="vol_target")`` (plan B, seed 004).

The agent sets direction and timing, a volatility-target rule the size. The rule is
:mod:`cryptorl_core.vol_target` (the ``vol_target`` baseline of every backtest report):
``min(1, target_vol / trailing realised volatility)``, the trailing volatility from the closes
up to the decision bar, the target volatility fitted on the segment's train rows. The column
is computed once, when the env is built, and the env gathers it at each env's row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

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
