"""Statistics of one run of actions (or positions): histogram, entropy, modal share, trades.

Actions (continuous targets in [-1, 1] or positions already discretised) are binned on the
environment's grid: bins of width ``w`` (:data:`ACTION_BIN_WIDTH`, 0.1) centred on
``-1, -1 + w, ..., 1`` (21 bins), so a continuous action falls in the bin of the position the
environment would execute. The training callbacks log these statistics; the backtest's collapse
audit (:mod:`cryptorl_core.backtest.collapse`) judges them against its thresholds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

ArrayLike = np.ndarray | pd.Series | Sequence[float]

#: Width of the action-histogram bins (the environment's discretisation step); the default of
#: ``BacktestConfig.action_bin_width``.
ACTION_BIN_WIDTH = 0.1


@dataclass(frozen=True)
class CollapseStats:
    """Action-distribution statistics of one policy run.

    :param bin_centers: centre of each action bin.
    :param counts: number of actions in each bin.
    :param n_actions: number of actions.
    :param entropy_bits: Shannon entropy of the bin shares, in bits.
    :param entropy_frac: ``entropy_bits / log2(n_bins)`` (1 = uniform over all bins).
    :param modal_action: centre of the most frequent bin (the lowest one on ties).
    :param modal_share: share of actions in that bin.
    :param n_trades: number of steps where the binned action changed.
    """

    bin_centers: tuple[float, ...]
    counts: tuple[int, ...]
    n_actions: int
    entropy_bits: float
    entropy_frac: float
    modal_action: float
    modal_share: float
    n_trades: int

    def as_dict(self) -> dict:
        """Plain dict for metadata (histogram as ``{centre: count}`` of non-empty bins)."""
        return {
            "n_actions": self.n_actions,
            "entropy_bits": self.entropy_bits,
            "entropy_frac": self.entropy_frac,
            "modal_action": self.modal_action,
            "modal_share": self.modal_share,
            "n_trades": self.n_trades,
            "histogram": {
                f"{c:+.1f}": n for c, n in zip(self.bin_centers, self.counts, strict=True) if n
            },
        }


def action_bins(actions: ArrayLike, bin_width: float = ACTION_BIN_WIDTH) -> tuple[np.ndarray, np.ndarray]:
    """Bin index of each action on the grid ``-1, -1 + w, ..., 1``.

    :param actions: actions in [-1, 1] (values outside are clipped).
    :param bin_width: ``w``; ``1 / w`` must be an integer.
    :return: ``(indices, centres)``: the bin index of every action and the bin centres.
    """
    half = int(round(1.0 / bin_width))
    if half < 1 or not np.isclose(half * bin_width, 1.0):
        raise ValueError(f"1 / bin_width must be a positive integer, got {bin_width}")
    a = np.clip(np.asarray(actions, dtype=float), -1.0, 1.0)
    if a.ndim != 1:
        raise ValueError(f"actions must be 1-D (one run), got shape {a.shape}")
    idx = np.rint(a / bin_width).astype(int) + half
    centres = np.arange(-half, half + 1) * bin_width
    return idx, centres


def collapse_stats(actions: ArrayLike, bin_width: float | None = None) -> CollapseStats:
    """Histogram, entropy, modal share and trade count of one run's actions.

    :param actions: the actions of one run, in time order.
    :param bin_width: histogram bin width; :data:`ACTION_BIN_WIDTH` when None.
    :return: the statistics.
    """
    w = ACTION_BIN_WIDTH if bin_width is None else bin_width
    idx, centres = action_bins(actions, w)
    if len(idx) == 0:
        raise ValueError("no actions")
    counts = np.bincount(idx, minlength=len(centres))
    shares = counts / counts.sum()
    nz = shares[shares > 0]
    entropy = float(-(nz * np.log2(nz)).sum()) + 0.0  # + 0.0 turns -0.0 into 0.0
    mode = int(np.argmax(counts))
    return CollapseStats(
        bin_centers=tuple(float(c) for c in centres),
        counts=tuple(int(c) for c in counts),
        n_actions=int(len(idx)),
        entropy_bits=entropy,
        entropy_frac=entropy / float(np.log2(len(centres))),
        modal_action=float(centres[mode]),
        modal_share=float(shares[mode]),
        n_trades=int((np.diff(idx) != 0).sum()),
    )
