"""Regime baselines: a rule on the HMM's causal regime probabilities, and the true-regime oracle.

``regime_rule`` reads the same forward-filtered regime probabilities the agent observes (the
``hmm_p0..hmm_p3`` context columns). The regime stage relabels its states in a stable order
(:func:`cryptorl_core.regime.model.stable_order`): the highest-volatility state last (stress),
the others by mean return, descending, so state 0 is *up*, 1 *flat*, 2 *down*, 3 *stress*.
The decision at bar ``t`` is::

    regime_rule[t]           = clip(p_up[t] - p_down[t] - p_stress[t], -1, 1)
    regime_rule_long_only[t] = clip(p_up[t] - p_down[t] - p_stress[t],  0, 1)

(more generally ``sum_k w_k p_k[t]`` with ``BacktestConfig.regime_rule_weights``). The
probabilities at row ``t`` are filtered from rows ``<= t`` only, and the rule reads row ``t``
alone, so it is as causal as the context. Since the probabilities sum to 1 the default target
already lies in ``[-1, 1]``.

``regime_oracle`` maps the synthetic market's *true* regime of bar ``t`` (``true_regime``:
0 bull, 1 bear, 2 range, 3 crash, a different order from the HMM's) to a position (bull +1,
bear -1, range 0, crash -1 by default). Filled at bar ``t+1`` by the environment, the position
held over a bar is the previous bar's true regime. It is an upper bound shown in reports, never
an input: only the report's baseline runner reads ``true_regime``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from cryptorl_core.backtest.config import BacktestConfig
from cryptorl_core.regime.context import RegimeContextLike, context_array
from cryptorl_core.schema import HMM_PROB_COLUMNS, REGIME_NAMES

#: HMM states in the regime stage's stable order.
UP, FLAT, DOWN, STRESS = range(len(HMM_PROB_COLUMNS))
#: True synthetic regimes (``schema.REGIME_NAMES``).
BULL, BEAR, RANGE, CRASH = range(len(REGIME_NAMES))


def regime_probabilities(context: RegimeContextLike, frame: pd.DataFrame | None = None) -> np.ndarray:
    """The four filtered state probabilities of every row, ``(n_rows, 4)`` float64
    (:func:`~cryptorl_core.regime.context.context_array` of ``hmm_p0..hmm_p3``).

    :param context: a frame holding ``hmm_p0..hmm_p3`` (e.g. ``RegimeModel.context(frame)``),
        an array whose first four columns are those probabilities, or a regime model (then
        ``frame`` is required).
    :param frame: the segment frame the context must align with; not checked when None.
    :return: the probabilities.
    """
    return context_array(context, HMM_PROB_COLUMNS, frame)


def regime_rule_positions(
    context: RegimeContextLike,
    *,
    weights: Sequence[float] | None = None,
    long_only: bool = False,
    frame: pd.DataFrame | None = None,
) -> np.ndarray:
    """Target position ``clip(p_up - p_down - p_stress, -1, 1)`` at every row (see the module).

    Usable on any window: feed the result to
    :func:`~cryptorl_core.backtest.runner.run_targets` with ``split="eval"`` for the rule's
    eval-window figures under the training env's lag and costs.

    :param context: the regime context of every segment-frame row (see :func:`regime_probabilities`).
    :param weights: weights of (p_up, p_flat, p_down, p_stress);
        ``BacktestConfig().regime_rule_weights`` (1, 0, -1, -1) when None.
    :param long_only: clip to ``[0, 1]`` instead of ``[-1, 1]``.
    :param frame: the segment frame (required when ``context`` is a regime model).
    :return: one target per row.
    """
    w = np.asarray(BacktestConfig().regime_rule_weights if weights is None else weights, dtype=np.float64)
    if w.shape != (len(HMM_PROB_COLUMNS),):
        raise ValueError(f"need {len(HMM_PROB_COLUMNS)} regime weights, got {w.shape}")
    score = regime_probabilities(context, frame) @ w
    return np.clip(score, 0.0 if long_only else -1.0, 1.0)


def regime_oracle_positions(true_regime: np.ndarray | pd.Series, mapping: Sequence[float] | None = None) -> np.ndarray:
    """Target position of each bar's true regime (the decision at bar ``t`` is its regime).

    :param true_regime: true regime codes (0 bull, 1 bear, 2 range, 3 crash).
    :param mapping: position per regime code; ``BacktestConfig().oracle_regime_positions``
        (+1, -1, 0, -1) when None.
    :return: one target per bar.
    """
    table = np.asarray(BacktestConfig().oracle_regime_positions if mapping is None else mapping, dtype=np.float64)
    if table.shape != (len(REGIME_NAMES),):
        raise ValueError(f"need one position per regime {REGIME_NAMES}, got {table.shape}")
    codes = np.asarray(true_regime)
    if codes.ndim != 1 or not np.issubdtype(codes.dtype, np.integer):
        raise ValueError(f"true_regime must be 1-D integer codes, got {codes.dtype} {codes.shape}")
    if len(codes) and (codes.min() < 0 or codes.max() >= len(table)):
        raise ValueError(f"true_regime codes must lie in 0..{len(table) - 1}")
    return table[codes]
