"""Windows of a segment frame for MAE training: every row of a window in one split.

A window is identified by its *end* row ``t``: it holds rows ``t - window + 1 .. t``.
Training windows end at train rows and lie wholly inside the train rows; eval windows
lie wholly inside the eval rows. The feature matrix stays on the device once and each
batch is gathered by index, so no ``(n_windows, window, n_features)`` copy is ever made.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from cryptorl_core.schema import SPLIT_COL, WINDOW, feature_columns


def feature_matrix(frame: pd.DataFrame, columns: Sequence[str] | None = None) -> np.ndarray:
    """The technical feature columns of a segment frame as a float32 array.

    :param frame: a segment frame (see :mod:`cryptorl_core.schema`).
    :param columns: columns to take; ``None``: :func:`~cryptorl_core.schema.feature_columns`.
    :return: ``(n_rows, n_features)`` float32, C-contiguous.
    """
    cols = list(columns) if columns is not None else feature_columns(frame)
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise KeyError(f"segment frame lacks feature columns {missing[:5]}")
    data = np.ascontiguousarray(frame[cols].to_numpy(dtype=np.float32))
    if not np.isfinite(data).all():
        raise ValueError("segment frame feature columns contain NaN or inf")
    return data


def window_ends(split: np.ndarray | pd.Series, name: str, window: int = WINDOW) -> np.ndarray:
    """End rows of every window whose ``window`` rows all carry the split label ``name``.

    :param split: the frame's split labels, one per row.
    :param name: ``"train"``, ``"eval"``, ...
    :param window: window length.
    :return: sorted int64 end indices ``t`` (so ``t >= window - 1``).
    """
    inside = np.asarray(split) == name
    # Length of the run of consecutive `name` rows ending at each row.
    run = np.zeros(len(inside), dtype=np.int64)
    count = 0
    for i, flag in enumerate(inside):
        count = count + 1 if flag else 0
        run[i] = count
    return np.flatnonzero(run >= window).astype(np.int64)


def evenly_spaced(ends: np.ndarray, limit: int | None) -> np.ndarray:
    """At most ``limit`` of ``ends``, evenly spaced so the whole period stays covered."""
    if limit is None or len(ends) <= limit:
        return ends
    return ends[np.linspace(0, len(ends) - 1, limit).round().astype(np.int64)]


def gather_windows(data: torch.Tensor, ends: torch.Tensor, window: int = WINDOW) -> torch.Tensor:
    """Windows ending at ``ends``, gathered from the row matrix ``data``.

    :param data: ``(n_rows, n_features)``.
    :param ends: int64 end rows ``(batch,)``, each ``>= window - 1``.
    :param window: window length.
    :return: ``(batch, window, n_features)``.
    """
    offsets = torch.arange(1 - window, 1, device=ends.device)
    return data[ends.unsqueeze(1) + offsets]


@dataclass
class SplitWindows:
    """The windows of one split of a segment frame, on a device.

    :param data: the frame's feature matrix ``(n_rows, n_features)`` on the device.
    :param ends: end rows of the windows (int64, on the device).
    :param window: window length.
    """

    data: torch.Tensor
    ends: torch.Tensor
    window: int = WINDOW

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, split: str, window: int = WINDOW,
                   limit: int | None = None, columns: Sequence[str] | None = None,
                   device: torch.device | str = "cpu", data: torch.Tensor | None = None) -> SplitWindows:
        """Windows of one split.

        :param frame: a segment frame.
        :param split: split label whose rows every window must lie in.
        :param window: window length.
        :param limit: keep at most this many windows, evenly spaced.
        :param columns: feature columns (default: every technical column).
        :param device: where the data lives.
        :param data: an already-built feature matrix on ``device`` to share between splits.
        """
        if data is None:
            data = torch.from_numpy(feature_matrix(frame, columns)).to(device)
        ends = evenly_spaced(window_ends(frame[SPLIT_COL].to_numpy(), split, window), limit)
        return cls(data=data, ends=torch.from_numpy(ends).to(data.device), window=window)

    def __len__(self) -> int:
        return int(self.ends.numel())

    def __getitem__(self, i: int) -> torch.Tensor:
        """Window ``i`` as ``(window, n_features)``."""
        return gather_windows(self.data, self.ends[i : i + 1], self.window)[0]

    def batches(self, batch_size: int, generator: torch.Generator | None = None,
                drop_last: bool = False) -> Iterator[torch.Tensor]:
        """Yield batches ``(batch, window, n_features)``.

        :param batch_size: windows per batch.
        :param generator: shuffle with this (CPU) generator; ``None`` keeps time order.
        :param drop_last: skip a final short batch (keeps shapes static for ``torch.compile``).
        """
        n = len(self)
        order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
        order = order.to(self.ends.device)
        stop = n - n % batch_size if drop_last and n >= batch_size else n
        for start in range(0, stop, batch_size):
            yield gather_windows(self.data, self.ends[order[start : start + batch_size]], self.window)

    def n_batches(self, batch_size: int, drop_last: bool = False) -> int:
        n = len(self)
        if drop_last and n >= batch_size:
            return n // batch_size
        return -(-n // batch_size)
