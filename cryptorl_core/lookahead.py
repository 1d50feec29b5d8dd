"""Look-ahead detection by truncation, in the spirit of freqtrade's lookahead-analysis.

For cut points ``t`` the feature function is recomputed on ``data.iloc[:t+1]`` and row
``t`` is compared with the same row of the full-data result. A causal function gives
identical rows; a column that differs used data after ``t`` and is reported biased.
Unlike freqtrade it checks every column at many cut points, not only rows that fired.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass
class LookaheadReport:
    """Result of :func:`find_lookahead`.

    :param ok: True when no column differed at any cut point.
    :param biased_columns: columns whose value at some cut differed from the full run.
    :param cut_points: the row positions that were checked.
    :param first_bad_cut: column -> first timestamp at which it differed.
    :param max_abs_diff: column -> largest absolute difference seen.
    """

    ok: bool
    biased_columns: list[str]
    cut_points: list[int]
    first_bad_cut: dict[str, str] = field(default_factory=dict)
    max_abs_diff: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        if self.ok:
            return f"no look-ahead in any column at {len(self.cut_points)} cut points"
        return f"look-ahead in {len(self.biased_columns)} column(s): {', '.join(self.biased_columns[:10])}"


def cut_positions(n_rows: int, n_cuts: int, start: int) -> list[int]:
    """``n_cuts`` row positions spread evenly over ``[start, n_rows - 2]``.

    The last row is excluded: truncating there changes nothing.
    """
    hi = n_rows - 2
    if hi < start:
        raise ValueError(f"data too short for look-ahead analysis: {n_rows} rows, start {start}")
    return sorted({int(round(x)) for x in np.linspace(start, hi, n_cuts)})


def find_lookahead(
    compute: Callable[[pd.DataFrame], pd.DataFrame],
    data: pd.DataFrame,
    n_cuts: int = 20,
    start: int = 0,
    atol: float = 1e-9,
    rtol: float = 1e-7,
) -> LookaheadReport:
    """Test ``compute`` for look-ahead bias by truncating its input.

    :param compute: maps an input frame to an output frame on (a subset of) its index.
    :param data: the full input.
    :param n_cuts: number of cut points.
    :param start: first row position eligible as a cut (skip warm-up rows).
    :param atol: absolute tolerance of the comparison.
    :param rtol: relative tolerance of the comparison.
    :return: the report; NaN equals NaN.
    """
    full = compute(data)
    cuts = cut_positions(len(data), n_cuts, start)
    biased: dict[str, str] = {}
    max_diff: dict[str, float] = {}
    for t in cuts:
        ts = data.index[t]
        if ts not in full.index:
            continue
        part = compute(data.iloc[: t + 1])
        a = full.loc[ts]
        b = part.loc[ts].reindex(a.index)
        av, bv = a.to_numpy(dtype=float), b.to_numpy(dtype=float)
        same = np.isclose(av, bv, atol=atol, rtol=rtol, equal_nan=True)
        for col, a_i, b_i in zip(a.index[~same], av[~same], bv[~same], strict=True):
            biased.setdefault(col, str(ts))
            diff = abs(a_i - b_i) if np.isfinite(a_i) and np.isfinite(b_i) else float("inf")
            max_diff[col] = max(max_diff.get(col, 0.0), float(diff))
    cols = [c for c in full.columns if c in biased]
    return LookaheadReport(ok=not cols, biased_columns=cols, cut_points=cuts,
                           first_bad_cut=biased, max_abs_diff=max_diff)
