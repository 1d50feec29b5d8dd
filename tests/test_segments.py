"""Walk-forward segments: window lengths, purge gaps, readable keys, tiling."""

import pandas as pd
import pytest

from cryptorl_core.schema import EVAL, PURGED, TEST, TRAIN, WINDOW
from cryptorl_core.segments import (
    HOUR,
    WindowConfig,
    nested_segment,
    segment_by_key,
    segment_slice,
    walk_forward_segments,
)

UTC = "UTC"


def test_segments_cover_synthetic_history_with_readable_keys():
    segs = walk_forward_segments(pd.Timestamp("2019-01-01", tz=UTC), pd.Timestamp("2025-12-31 23:00", tz=UTC))
    assert segs[0].key == "2020-Q2" and segs[-1].key == "2025-Q4"
    assert len(segs) == 23
    assert len({s.key for s in segs}) == len(segs)


def test_window_lengths_and_purges():
    cfg = WindowConfig()
    for seg in walk_forward_segments(pd.Timestamp("2019-01-01", tz=UTC), pd.Timestamp("2025-12-31 23:00", tz=UTC)):
        assert seg.hours("train") == 8640
        assert seg.hours("eval") == cfg.eval_hours
        assert 2160 <= seg.hours("test") <= 2208  # one calendar quarter
        assert (seg.eval_start - seg.train_end) / HOUR >= WINDOW
        assert (seg.test_start - seg.eval_end) / HOUR >= WINDOW
        assert seg.test_start.day == 1 and seg.test_start.month in (1, 4, 7, 10)


def test_test_windows_tile_without_holes():
    start, end = pd.Timestamp("2018-01-01", tz=UTC), pd.Timestamp("2022-12-31 23:00", tz=UTC)
    segs = walk_forward_segments(start, end)
    # Expected from the config: the first test quarter starts once warm-up, train, eval and
    # both purges fit after the first bar; the last one ends by the last bar's close.
    cfg = WindowConfig()
    lead = (cfg.warmup_hours + cfg.train_hours + 2 * cfg.purge_hours + cfg.eval_hours) * HOUR
    quarter_starts = pd.date_range((start + lead).normalize(), end + HOUR, freq="QS")
    quarter_starts = quarter_starts[quarter_starts >= start + lead]
    assert len(segs) == len(quarter_starts) - 1 == 14
    assert (segs[0].key, segs[-1].key) == ("2019-Q3", "2022-Q4")
    assert [s.test_start for s in segs] == list(quarter_starts[:-1])
    for a, b in zip(segs, segs[1:], strict=False):
        assert a.test_end == b.test_start
    assert segs[-1].test_end == end + HOUR
    assert sum(s.hours("test") for s in segs) == (segs[-1].test_end - segs[0].test_start) / HOUR


def test_segments_need_warmup_and_full_test_window():
    start = pd.Timestamp("2020-01-01", tz=UTC)
    segs = walk_forward_segments(start, pd.Timestamp("2021-12-31 23:00", tz=UTC))
    cfg = WindowConfig()
    assert all(s.train_start >= start + cfg.warmup_hours * HOUR for s in segs)
    # The last bar opens 2021-12-31 23:00, so 2021-Q4 is complete and is the last segment.
    assert segs[-1].key == "2021-Q4"
    assert walk_forward_segments(start, pd.Timestamp("2020-06-30", tz=UTC)) == []


def test_split_labels_and_lookup():
    segs = walk_forward_segments(pd.Timestamp("2019-01-01", tz=UTC), pd.Timestamp("2025-12-31 23:00", tz=UTC))
    seg = segment_by_key(segs, "2023-Q1")
    idx = pd.date_range(seg.train_start, seg.test_end, freq="h", inclusive="left")
    labels = pd.Series(seg.split_labels(idx)).value_counts()
    assert labels[TRAIN] == 8640 and labels[EVAL] == 720 and labels[TEST] == seg.hours("test")
    assert labels[PURGED] == 2 * WINDOW
    with pytest.raises(KeyError, match="2030-Q1"):
        segment_by_key(segs, "2030-Q1")


def test_purge_shorter_than_window_is_rejected():
    with pytest.raises(ValueError, match="purge"):
        WindowConfig(purge_hours=10)


def test_segment_slice_spans_warmup_to_test_end_and_names_a_short_frame():
    cfg = WindowConfig()
    start, end = pd.Timestamp("2019-01-01", tz="UTC"), pd.Timestamp("2021-12-31 23:00", tz="UTC")
    seg = walk_forward_segments(start, end, cfg)[0]
    index = pd.date_range(start, end, freq="h")
    frame = pd.DataFrame({"x": range(len(index))}, index=index)
    sliced = segment_slice(frame, seg, cfg.warmup_hours)
    assert sliced.index[0] == seg.train_start - cfg.warmup_hours * HOUR and sliced.index[-1] == seg.test_end - HOUR
    with pytest.raises(ValueError, match=f"segment {seg.key}: market data from demo covers"):
        segment_slice(frame.drop(frame.index[cfg.warmup_hours + 5]), seg, cfg.warmup_hours, "demo")


@pytest.mark.parametrize("eval_hours", [720, 1440])
def test_a_nested_segment_tests_on_the_outer_eval_month_and_ends_before_the_test_quarter(eval_hours: int):
    outer = walk_forward_segments(pd.Timestamp("2019-01-01", tz=UTC), pd.Timestamp("2025-12-31 23:00", tz=UTC))[5]
    cfg = WindowConfig(eval_hours=eval_hours)
    inner = nested_segment(outer, cfg)
    assert inner.key == outer.key
    assert (inner.test_start, inner.test_end) == (outer.eval_start, outer.eval_end)
    assert inner.hours("train") == 8640 and inner.hours("eval") == eval_hours
    assert (inner.eval_start - inner.train_end) / HOUR == (inner.test_start - inner.eval_end) / HOUR == WINDOW
    # Train and select wholly before the held-out month; the outer test quarter is past the end.
    assert inner.eval_end < outer.eval_start and inner.end == outer.eval_end < outer.test_start
