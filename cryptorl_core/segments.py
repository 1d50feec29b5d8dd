"""Walk-forward segments derived from data coverage.

Each segment is one test quarter (``2021-Q1``). Going back in time from the quarter's
first hour::

    | train (train_hours) | purge | eval (eval_hours) | purge | test (the calendar quarter) |

The purge gaps are at least one observation window (64 h) long, so no sample's window
straddles two sets. Consecutive segments step by one quarter, so the test windows tile
the out-of-sample period without holes and can be stitched into one equity curve.
A quarter has 2,160 to 2,208 hours; "3 months" in the design means this calendar quarter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cryptorl_core.config_base import ConfigBase
from cryptorl_core.schema import EVAL, PURGED, TEST, TRAIN, WINDOW

HOUR = pd.Timedelta(hours=1)


@dataclass(frozen=True)
class WindowConfig(ConfigBase):
    """Walk-forward window lengths, in hours.

    :param train_hours: training window (12 months of 720 h).
    :param eval_hours: evaluation window for early stopping and model selection.
    :param purge_hours: gap at each boundary; at least the observation window.
    :param warmup_hours: history required before the first train row, so that rolling
        features (FFD weights, 168 h statistics) are defined from the first train row on.
    :param test_quarters: test window length in calendar quarters.

    The same in every profile (``quick`` and ``full`` are the defaults).
    """

    train_hours: int = 8640
    eval_hours: int = 720
    purge_hours: int = WINDOW
    warmup_hours: int = 1440
    test_quarters: int = 1

    def __post_init__(self) -> None:
        if self.purge_hours < WINDOW:
            raise ValueError(f"purge_hours={self.purge_hours} must be >= the {WINDOW}-hour window")


@dataclass(frozen=True)
class Segment:
    """One walk-forward segment. All ends are exclusive, all times UTC bar-open times.

    :param key: the partition key, the test quarter (``"2021-Q1"``).
    """

    key: str
    train_start: pd.Timestamp
    train_end: pd.Timestamp
    eval_start: pd.Timestamp
    eval_end: pd.Timestamp
    test_start: pd.Timestamp
    test_end: pd.Timestamp

    @property
    def start(self) -> pd.Timestamp:
        return self.train_start

    @property
    def end(self) -> pd.Timestamp:
        return self.test_end

    def hours(self, name: str) -> int:
        """Length of ``train``, ``eval`` or ``test`` in hours."""
        start, end = getattr(self, f"{name}_start"), getattr(self, f"{name}_end")
        return int((end - start) / HOUR)

    def split_labels(self, index: pd.DatetimeIndex) -> np.ndarray:
        """Label each timestamp of ``index`` train / eval / test / purged.

        Timestamps outside the segment are labelled purged.
        """
        labels = np.full(len(index), PURGED, dtype=object)
        for name, start, end in (
            (TRAIN, self.train_start, self.train_end),
            (EVAL, self.eval_start, self.eval_end),
            (TEST, self.test_start, self.test_end),
        ):
            labels[(index >= start) & (index < end)] = name
        return labels

    def as_dict(self) -> dict[str, str]:
        """Readable boundaries, for metadata."""
        out = {"key": self.key}
        for name in ("train", "eval", "test"):
            out[f"{name}_start"] = str(getattr(self, f"{name}_start"))
            out[f"{name}_end"] = str(getattr(self, f"{name}_end"))
            out[f"{name}_hours"] = str(self.hours(name))
        return out


def quarter_key(ts: pd.Timestamp) -> str:
    """``2021-01-01`` -> ``"2021-Q1"``."""
    return f"{ts.year}-Q{(ts.month - 1) // 3 + 1}"


def _quarter_start(ts: pd.Timestamp) -> pd.Timestamp:
    """First hour (UTC) of the calendar quarter containing ``ts``."""
    ts = pd.Timestamp(ts)
    return pd.Timestamp(year=ts.year, month=3 * ((ts.month - 1) // 3) + 1, day=1, tz="UTC")


def segment_for_quarter(quarter_start: pd.Timestamp, config: WindowConfig) -> Segment:
    """Build the segment whose test window starts at ``quarter_start``."""
    test_end = quarter_start + pd.DateOffset(months=3 * config.test_quarters)
    return _segment_before(quarter_key(quarter_start), quarter_start, pd.Timestamp(test_end), config)


def nested_segment(segment: Segment, config: WindowConfig) -> Segment:
    """``segment`` one window back, for experiments: its test window is ``segment``'s eval
    window, and its own eval and train windows (``config``'s lengths and purges) end before that.

    A run on it selects on the nested eval window, so the outer eval month is held out from
    every choice of that run; the outer test quarter lies after the nested segment's end and is
    never read.
    """
    return _segment_before(segment.key, segment.eval_start, segment.eval_end, config)


def _segment_before(key: str, test_start: pd.Timestamp, test_end: pd.Timestamp, config: WindowConfig) -> Segment:
    """The segment testing on ``[test_start, test_end)``, with eval and train laid out before it."""
    eval_end = test_start - config.purge_hours * HOUR
    eval_start = eval_end - config.eval_hours * HOUR
    train_end = eval_start - config.purge_hours * HOUR
    train_start = train_end - config.train_hours * HOUR
    return Segment(
        key=key,
        train_start=train_start,
        train_end=train_end,
        eval_start=eval_start,
        eval_end=eval_end,
        test_start=test_start,
        test_end=test_end,
    )


def walk_forward_segments(
    data_start: pd.Timestamp, data_end: pd.Timestamp, config: WindowConfig | None = None
) -> list[Segment]:
    """Every segment whose windows (plus warm-up) fit inside the data coverage.

    :param data_start: open time of the first bar.
    :param data_end: open time of the last bar (inclusive).
    :param config: window lengths.
    :return: segments in time order; empty when the data is too short.
    """
    config = config or WindowConfig()
    earliest_train = pd.Timestamp(data_start) + config.warmup_hours * HOUR
    last_bar_end = pd.Timestamp(data_end) + HOUR
    quarter = _quarter_start(earliest_train)
    segments: list[Segment] = []
    while True:
        seg = segment_for_quarter(quarter, config)
        if seg.test_end > last_bar_end:
            break
        if seg.train_start >= earliest_train:
            segments.append(seg)
        quarter = quarter + pd.DateOffset(months=3)
    return segments


def segment_by_key(segments: list[Segment], key: str) -> Segment:
    """Look a segment up by its partition key, with a clear error."""
    for seg in segments:
        if seg.key == key:
            return seg
    known = ", ".join(s.key for s in segments) or "none"
    raise KeyError(f"unknown walk-forward segment {key!r}; known segments: {known}")


def segment_slice(frame: pd.DataFrame, segment: Segment, warmup_hours: int,
                  source: str = "the market data") -> pd.DataFrame:
    """Rows of an hourly market frame from the warm-up before train start to the end of the
    test window: what one segment's features need.

    :param frame: the whole aligned hourly market frame.
    :param segment: the segment.
    :param warmup_hours: feature warm-up before the first train row.
    :param source: where the frame came from, for the error message.
    :raises ValueError: the frame does not cover every hour of the slice.
    """
    start = segment.train_start - warmup_hours * HOUR
    sliced = frame.loc[(frame.index >= start) & (frame.index < segment.test_end)]
    expected = int((segment.test_end - start) / HOUR)
    if len(sliced) != expected:
        raise ValueError(
            f"segment {segment.key}: market data from {source} covers {len(sliced)} of the "
            f"{expected} hours from {start} to {segment.test_end}"
        )
    return sliced
