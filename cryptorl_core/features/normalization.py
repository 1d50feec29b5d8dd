"""Z-score normalisation fitted on a segment's train rows only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass
class NormStats:
    """Per-column mean and std of the train rows, with the window they came from.

    :param mean: column -> train mean.
    :param std: column -> train std (floored).
    :param fit_start: first train row used (UTC bar-open time).
    :param fit_end: last train row used.
    :param n_rows: number of rows the statistics were computed on.
    """

    mean: dict[str, float]
    std: dict[str, float]
    fit_start: str
    fit_end: str
    n_rows: int

    @classmethod
    def fit(cls, raw: pd.DataFrame, columns: list[str], min_std: float) -> NormStats:
        """Fit on every row of ``raw`` (the caller passes train rows only)."""
        sub = raw[columns]
        return cls(
            mean={c: float(v) for c, v in sub.mean().items()},
            std={c: float(max(v, min_std)) for c, v in sub.std().items()},
            fit_start=str(raw.index[0]),
            fit_end=str(raw.index[-1]),
            n_rows=len(raw),
        )

    def apply(self, raw: pd.DataFrame, clip_sigma: float) -> pd.DataFrame:
        """Z-score the fitted columns (clipped to +/- ``clip_sigma``); others pass through."""
        out = raw.copy()
        cols = list(self.mean)
        mean = np.array([self.mean[c] for c in cols])
        std = np.array([self.std[c] for c in cols])
        out[cols] = ((raw[cols].to_numpy() - mean) / std).clip(-clip_sigma, clip_sigma)
        return out

    def as_dict(self) -> dict:
        return {"mean": self.mean, "std": self.std, "fit_start": self.fit_start,
                "fit_end": self.fit_end, "n_rows": self.n_rows}

    @classmethod
    def from_dict(cls, d: dict) -> NormStats:
        return cls(**d)
