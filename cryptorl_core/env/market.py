"""Prices and split layout of one walk-forward segment, as the environment needs them."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from cryptorl_core.schema import PRICE_CLOSE_COL, PRICE_OPEN_COL, SPLIT_COL, SPLITS, WINDOW


@dataclass(frozen=True)
class SegmentMarket:
    """Raw traded-asset prices of a segment frame and the rows of one split.

    Row indices are positions in the whole segment frame, so an observation's row index
    can address device-resident feature or embedding tensors built from the same frame.

    :param open: ``(n_rows,)`` float64 open price of each bar.
    :param close: ``(n_rows,)`` float64 close price of each bar.
    :param valid_rows: sorted row indices that belong to the split.
    :param split: split label (informational).
    :param timestamps: optional bar open times, for backtests that map rows to time.
    """

    open: np.ndarray
    close: np.ndarray
    valid_rows: np.ndarray
    split: str = ""
    timestamps: pd.DatetimeIndex | None = None

    def __post_init__(self) -> None:
        if self.open.shape != self.close.shape or self.open.ndim != 1:
            raise ValueError(
                f"open and close must be equal 1-D arrays, got {self.open.shape}, {self.close.shape}"
            )
        if not (np.all(np.isfinite(self.open)) and np.all(np.isfinite(self.close))):
            raise ValueError("prices must be finite")
        if np.any(self.open <= 0) or np.any(self.close <= 0):
            raise ValueError("prices must be > 0")
        rows = self.valid_rows
        if rows.ndim != 1 or len(rows) == 0:
            raise ValueError("valid_rows must be a non-empty 1-D array")
        if rows[0] < 0 or rows[-1] >= self.n_rows or np.any(np.diff(rows) <= 0):
            raise ValueError("valid_rows must be sorted, unique and inside the frame")
        if len(self.start_rows) == 0:
            raise ValueError(
                f"split {self.split!r} has no start row: it needs a row >= {WINDOW - 1} whose next bar is in the split"
            )

    @classmethod
    def from_arrays(
        cls,
        open_: np.ndarray,
        close: np.ndarray,
        valid_rows: np.ndarray,
        split: str = "",
        timestamps: pd.DatetimeIndex | None = None,
    ) -> SegmentMarket:
        """Build from raw arrays.

        :param open_: open prices, one per row.
        :param close: close prices, one per row.
        :param valid_rows: row indices of the split (any order; de-duplicated and sorted here).
        :param split: split label.
        :param timestamps: optional bar open times.
        """
        return cls(
            open=np.asarray(open_, dtype=np.float64),
            close=np.asarray(close, dtype=np.float64),
            valid_rows=np.unique(np.asarray(valid_rows, dtype=np.int64)),
            split=split,
            timestamps=timestamps,
        )

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, split: str) -> SegmentMarket:
        """Build from a segment frame (see :mod:`cryptorl_core.schema`).

        :param frame: the segment frame.
        :param split: which split's rows episodes may visit (``train``, ``eval`` or ``test``).
        """
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}, expected one of {SPLITS}")
        missing = {SPLIT_COL, PRICE_OPEN_COL, PRICE_CLOSE_COL} - set(frame.columns)
        if missing:
            raise ValueError(f"segment frame lacks columns {sorted(missing)}")
        rows = np.flatnonzero((frame[SPLIT_COL] == split).to_numpy())
        index = frame.index if isinstance(frame.index, pd.DatetimeIndex) else None
        return cls.from_arrays(
            frame[PRICE_OPEN_COL].to_numpy(), frame[PRICE_CLOSE_COL].to_numpy(), rows, split, index
        )

    @property
    def n_rows(self) -> int:
        """Rows of the whole segment frame."""
        return int(self.open.shape[0])

    @cached_property
    def in_split(self) -> np.ndarray:
        """``(n_rows,)`` bool: row belongs to the split."""
        mask = np.zeros(self.n_rows, dtype=bool)
        mask[self.valid_rows] = True
        return mask

    @cached_property
    def run_end(self) -> np.ndarray:
        """``(n_rows,)`` int64: last row of the contiguous split run holding each row (-1 outside).

        An episode at row t may step only while ``t < run_end[t]``: the step from t consumes
        bar t+1, which must still be in the split.
        """
        end = np.full(self.n_rows, -1, dtype=np.int64)
        rows = self.valid_rows
        breaks = np.flatnonzero(np.diff(rows) != 1)
        run_starts = np.concatenate(([0], breaks + 1))
        run_stops = np.concatenate((breaks, [len(rows) - 1]))
        for a, b in zip(run_starts, run_stops, strict=True):
            end[rows[a] : rows[b] + 1] = rows[b]
        return end

    @cached_property
    def start_rows(self) -> np.ndarray:
        """Rows an episode may start at: in the split, ``>= WINDOW - 1``, with a next bar in the split."""
        rows = self.valid_rows
        return rows[(rows >= WINDOW - 1) & (rows < self.run_end[rows])]

    def bar_returns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Simple returns used by the execution model, float64, one per row.

        :return: ``gap[t] = open[t+1] / close[t] - 1`` (earned by the old position under lag 1),
            ``intrabar[t] = close[t+1] / open[t+1] - 1`` (earned by the new position under lag 1),
            ``close_to_close[t] = close[t] / close[t-1] - 1`` (earned by the new position under
            lag 0). Entries that would need a row outside the frame are 0.
        """
        gap = np.zeros(self.n_rows)
        intrabar = np.zeros(self.n_rows)
        close_to_close = np.zeros(self.n_rows)
        gap[:-1] = self.open[1:] / self.close[:-1] - 1.0
        intrabar[:-1] = self.close[1:] / self.open[1:] - 1.0
        close_to_close[1:] = self.close[1:] / self.close[:-1] - 1.0
        return gap, intrabar, close_to_close
