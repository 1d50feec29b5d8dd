"""Row checks of a bar file and the duplicated-timestamp policy.

All checks are vectorised. Each failing check raises a
:class:`~cryptorl_core.data.errors.DataValidationError` naming the file, the column and
the first offending row (its 1-based line number in a CSV, its row number in a parquet
table, and its timestamp), with the number of rows that have the same problem.

Duplicated timestamps (e.g. two overlapping exports pasted into one file) are an error
unless a de-duplication policy is passed explicitly (:data:`DEDUP_POLICIES`):

``"keep_last"``
    Rows are put in *export order*: the file order, reversed when the file runs
    newest-first (more of its consecutive timestamps decrease than increase), so that
    rows appended by a later export come later. For each duplicated timestamp the row
    that comes last in export order is kept: the newest export wins. In an oldest-first
    file that is the row nearest the bottom; in a newest-first file the one nearest the
    top.
``"keep_first"``
    The opposite: the row that comes first in export order is kept (the oldest export wins).

Either way every other row of that timestamp is dropped, and a
:class:`DedupReport` counts the duplicated timestamps, the dropped rows and how many
timestamps had conflicting prices or volumes. Rows are never averaged or merged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cryptorl_core.data.errors import DataValidationError, row_label
from cryptorl_core.schema import OHLCV

TIME_COL = "timestamp"
PRICE_FIELDS = ("open", "high", "low", "close")
KEEP_LAST = "keep_last"
KEEP_FIRST = "keep_first"
#: Accepted values of ``dedup=``; ``None`` means duplicates are an error.
DEDUP_POLICIES = (KEEP_LAST, KEEP_FIRST)
#: Conflicting duplicates shown in an error message.
MAX_EXAMPLES = 3


@dataclass(frozen=True)
class DedupReport:
    """What a de-duplication policy did to one file.

    :param file: the file.
    :param policy: the policy applied.
    :param n_duplicated_timestamps: timestamps that appeared more than once.
    :param n_rows_dropped: rows removed.
    :param n_price_conflicts: duplicated timestamps whose rows disagree on a price.
    :param n_volume_conflicts: duplicated timestamps whose rows agree on every price
        but disagree on the volume (typically rounding in one export).
    """

    file: str
    policy: str
    n_duplicated_timestamps: int
    n_rows_dropped: int
    n_price_conflicts: int
    n_volume_conflicts: int

    def note(self) -> str:
        """One-line human-readable summary, for :attr:`MarketData.notes`."""
        return (
            f"{Path(self.file).name}: dedup='{self.policy}' dropped {self.n_rows_dropped} rows "
            f"at {self.n_duplicated_timestamps} duplicated timestamps "
            f"({self.n_price_conflicts} with conflicting prices, "
            f"{self.n_volume_conflicts} with conflicting volume only)"
        )


def validate_bars(frame: pd.DataFrame, raw_time: pd.Series, file: str | Path) -> None:
    """Check every row of a bar file; raise on the first failing check.

    Checks, in order: unparsable timestamp, timestamp not on an hour boundary, NaN /
    missing / non-numeric / infinite value, non-positive price, ``high`` below
    ``max(open, close)``, ``low`` above ``min(open, close)``, negative volume.

    :param frame: columns ``timestamp`` and ``open..volume`` in file order, indexed by
        row position in the file (see :class:`~cryptorl_core.data.readers.RawBars`).
    :param raw_time: the time column as read, for the message.
    :param file: the file, for the message.
    :raises DataValidationError: for the first failing check.
    """
    if frame.empty:
        raise DataValidationError("the file holds no data rows", file=file)
    ts = frame[TIME_COL]
    _fail_first(
        frame,
        file,
        TIME_COL,
        ts.isna(),
        lambda row: f"unparsable timestamp {raw_time.loc[row.name]!r}",
    )
    _fail_first(
        frame,
        file,
        TIME_COL,
        ts != ts.dt.floor("h"),
        lambda row: "timestamp is not on an hour boundary (bars are stamped with their open time)",
    )
    values = frame[list(OHLCV)].to_numpy(dtype="float64")
    for j, field in enumerate(OHLCV):
        _fail_first(
            frame,
            file,
            field,
            ~np.isfinite(values[:, j]),
            lambda row, f=field: f"NaN, missing, non-numeric or infinite {f} ({row[f]})",
        )
    for field in PRICE_FIELDS:
        _fail_first(
            frame,
            file,
            field,
            frame[field] <= 0,
            lambda row, f=field: f"non-positive price {f}={row[f]}",
        )
    top = np.maximum(frame["open"], frame["close"])
    bottom = np.minimum(frame["open"], frame["close"])
    _fail_first(
        frame,
        file,
        "high",
        frame["high"] < top,
        lambda row: f"high {row['high']} below max(open, close) = {max(row['open'], row['close'])}",
    )
    _fail_first(
        frame,
        file,
        "low",
        frame["low"] > bottom,
        lambda row: f"low {row['low']} above min(open, close) = {min(row['open'], row['close'])}",
    )
    _fail_first(
        frame, file, "volume", frame["volume"] < 0, lambda row: f"negative volume {row['volume']}"
    )


def resolve_duplicates(
    frame: pd.DataFrame, file: str | Path, policy: str | None
) -> tuple[pd.DataFrame, DedupReport | None]:
    """Reject or resolve duplicated timestamps.

    :param frame: validated rows in file order, indexed by row position in the file.
    :param file: the file, for messages.
    :param policy: ``None`` (error), ``"keep_last"`` or ``"keep_first"`` (module docstring).
    :return: the rows without duplicates (in export order) and a report, ``None`` when
        the file had no duplicates.
    :raises DataValidationError: on duplicates without a policy, naming the rows.
    :raises ValueError: for an unknown policy.
    """
    if policy is not None and policy not in DEDUP_POLICIES:
        raise ValueError(f"dedup={policy!r}: expected None or one of {DEDUP_POLICIES}")
    dup_mask = frame[TIME_COL].duplicated(keep=False)
    if not dup_mask.any():
        return frame, None
    dups = frame[dup_mask]
    n_price, n_volume = _count_conflicts(dups)
    n_stamps = int(dups[TIME_COL].nunique())
    if policy is None:
        _raise_duplicates(frame, dups, file, n_stamps, n_price, n_volume)
    ordered = frame.iloc[::-1] if is_newest_first(frame[TIME_COL]) else frame
    keep = "last" if policy == KEEP_LAST else "first"
    kept = ordered[~ordered[TIME_COL].duplicated(keep=keep)]
    report = DedupReport(
        file=str(file),
        policy=policy,
        n_duplicated_timestamps=n_stamps,
        n_rows_dropped=len(frame) - len(kept),
        n_price_conflicts=n_price,
        n_volume_conflicts=n_volume,
    )
    return kept, report


def is_newest_first(ts: pd.Series) -> bool:
    """Whether a file runs newest-first: more consecutive steps go back than forward."""
    step = np.diff(ts.to_numpy(dtype="datetime64[us]").astype("int64"))
    return bool((step < 0).sum() > (step > 0).sum())


def _count_conflicts(dups: pd.DataFrame) -> tuple[int, int]:
    """Duplicated timestamps whose rows differ in a price, and those differing in volume only."""
    n_unique = dups.groupby(TIME_COL)[list(OHLCV)].nunique()
    price_conflict = (n_unique[list(PRICE_FIELDS)] > 1).any(axis=1)
    volume_conflict = ~price_conflict & (n_unique["volume"] > 1)
    return int(price_conflict.sum()), int(volume_conflict.sum())


def _raise_duplicates(
    frame: pd.DataFrame,
    dups: pd.DataFrame,
    file: str | Path,
    n_stamps: int,
    n_price: int,
    n_volume: int,
) -> None:
    label = row_label(file)
    first_repeat = dups[dups[TIME_COL].duplicated(keep="first")].iloc[0]
    conflicting = _first_conflicting(dups)
    shown = conflicting if not conflicting.empty else dups  # all identical: show any
    examples = []
    for stamp, group in list(shown.groupby(TIME_COL, sort=False))[:MAX_EXAMPLES]:
        rows = "; ".join(f"{label} {line}: {_describe(row)}" for line, row in group.iterrows())
        examples.append(f"{stamp} -> {rows}")
    n_identical = n_stamps - n_price - n_volume
    raise DataValidationError(
        f"{n_stamps} timestamps appear more than once ({len(dups)} rows: {n_price} timestamps "
        f"with conflicting prices, {n_volume} with conflicting volume only, {n_identical} "
        f"identical), e.g. {first_repeat[TIME_COL]} repeats an earlier {label}. Examples: "
        + " | ".join(examples)
        + f". This looks like overlapping exports; pass dedup='{KEEP_LAST}' (the later export "
        f"wins) or dedup='{KEEP_FIRST}' to drop duplicates explicitly.",
        file=file,
        column=TIME_COL,
        row=int(first_repeat.name),
        count=n_stamps,
    )


def _first_conflicting(dups: pd.DataFrame) -> pd.DataFrame:
    """Rows of the first few duplicated timestamps whose rows differ (vectorised)."""
    n_unique = dups.groupby(TIME_COL, sort=False)[list(OHLCV)].nunique().max(axis=1)
    stamps = n_unique.index[n_unique.to_numpy() > 1][:MAX_EXAMPLES]
    return dups[dups[TIME_COL].isin(stamps)]


def _describe(row: pd.Series) -> str:
    return " ".join(f"{f}={row[f]:.12g}" for f in OHLCV)


def _fail_first(
    frame: pd.DataFrame,
    file: str | Path,
    column: str,
    mask: pd.Series | np.ndarray,
    describe: Callable[[pd.Series], str],
) -> None:
    """Raise for the first row flagged by ``mask`` (in file order), if any."""
    flags = np.asarray(mask, dtype=bool)
    if not flags.any():
        return
    first = int(np.argmax(flags))
    row = frame.iloc[first]
    count = int(flags.sum())
    stamp = row[TIME_COL]
    at = "" if pd.isna(stamp) else f" at timestamp {stamp}"
    total = f"; {count} rows have this problem" if count > 1 else ""
    raise DataValidationError(
        f"{describe(row)}{at}{total}",
        file=file,
        column=column,
        row=int(frame.index[first]),
        count=count,
    )
