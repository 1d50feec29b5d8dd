"""Series coverage: a series that ends early, starts late or has a long hole is named and
truncated, dropped or refused, never silently carried forward; weekends, holidays and
short outages are not gaps; the segment list follows a truncated end."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from helpers.data import (
    START,
    bars,
    hours,
    weekday_session,
    write_combined,
    write_daily,
    write_hourly,
)

from cryptorl_core.data.coverage import SeriesCoverageConfig, format_hours
from cryptorl_core.data.errors import SeriesCoverageError
from cryptorl_core.data.folder import load_market_folder
from cryptorl_core.segments import HOUR, walk_forward_segments

DAYS = 30
BTC_END = START + pd.Timedelta(hours=24 * DAYS - 1)


def coverage(policy: str, **limits) -> SeriesCoverageConfig:
    return SeriesCoverageConfig(on_short_series=policy, **limits)


def coverage_notes(notes: list[str]) -> list[str]:
    return [n for n in notes if n.startswith("coverage:")]


@pytest.fixture
def short_spx(tmp_path) -> tuple[Path, pd.Timestamp]:
    """BTC and ETH for 30 days; SPX, a weekday session, stops after 10 days."""
    folder = tmp_path / "short_spx"
    write_hourly(folder, "BTC", bars(hours(START, 24 * DAYS), 30_000.0, seed=1))
    write_hourly(folder, "ETH", bars(hours(START, 24 * DAYS), 1_000.0, seed=2))
    spx_idx = weekday_session(START - pd.Timedelta(days=3), 24 * 13)
    write_hourly(folder, "SPX", bars(spx_idx, 3_700.0, seed=3))
    return folder, spx_idx[-1]


def test_early_end_truncates_by_default_with_a_note(short_spx):
    folder, spx_last = short_spx
    md = load_market_folder(folder)
    assert md.end == spx_last  # not carried forward to BTC's end
    assert md.symbols == ["BTC", "ETH", "SPX"]
    assert md.frame["SPX_is_open"].iloc[-1] == 1.0 and not md.frame.isna().any().any()
    notes = coverage_notes(md.notes)
    gap = int((BTC_END - spx_last) / HOUR)
    assert any(
        "SPX" in n and "SPX_1h.csv" in n and "ends early" in n and f"last bar {spx_last}" in n
        and f"({gap} h)" in n
        for n in notes
    ), notes
    assert any(f"truncated to {md.start} .. {spx_last}" in n for n in notes)


def test_early_end_drop_leaves_the_symbol_out_with_a_note(short_spx):
    folder, spx_last = short_spx
    md = load_market_folder(folder, coverage=coverage("drop"))
    assert md.symbols == ["BTC", "ETH"] and "SPX_is_open" not in md.frame
    assert md.end == BTC_END and "SPX" not in md.gaps
    [note] = coverage_notes(md.notes)
    assert "SPX" in note and f"last bar {spx_last}" in note and "dropped" in note


def test_early_end_fail_names_file_symbol_last_bar_and_gap(short_spx):
    folder, spx_last = short_spx
    gap = int((BTC_END - spx_last) / HOUR)
    with pytest.raises(SeriesCoverageError) as info:
        load_market_folder(folder, coverage=coverage("fail"))
    message = str(info.value)
    assert str(folder / "SPX_1h.csv") in message
    assert f"SPX ({folder / 'SPX_1h.csv'}) ends early: last bar {spx_last}" in message
    assert format_hours(gap) in message and f"({gap} h)" in message and "limit 168 h" in message
    [issue] = info.value.issues
    assert (issue.symbol, issue.kind, issue.last_bar, issue.gap_hours) == (
        "SPX", "early_end", spx_last, gap
    )


def test_limits_are_configurable(short_spx, tmp_path):
    folder, _ = short_spx
    stretched = load_market_folder(folder, coverage=coverage("fail", max_gap_macro_hours=24 * 60))
    assert stretched.end == BTC_END and not coverage_notes(stretched.notes)
    # A 60 h crypto outage is a gap at the 48 h default, not at 72 h.
    eth = tmp_path / "eth_outage"
    write_hourly(eth, "BTC", bars(hours(START, 24 * 10), 30_000.0, seed=4))
    write_hourly(eth, "ETH", bars(hours(START, 24 * 10).delete(range(100, 160)), 1_000.0, 5))
    with pytest.raises(SeriesCoverageError, match=r"ETH .* has a hole: .*no bar for 2 days 12 h"):
        load_market_folder(eth, coverage=coverage("fail"))
    assert load_market_folder(eth, coverage=coverage("fail", max_gap_crypto_hours=72)).end == (
        START + pd.Timedelta(hours=24 * 10 - 1)
    )
    with pytest.raises(ValueError, match="on_short_series"):
        SeriesCoverageConfig(on_short_series="stretch")


@pytest.mark.parametrize("hole_days, keeps", [((8, 18), "after"), ((24, 34), "before")])
def test_inner_hole_keeps_the_longer_side(tmp_path, hole_days, keeps):
    """A 10-day SPX hole splits 40 days of data; truncate keeps the longer side."""
    folder = tmp_path / "hole"
    write_hourly(folder, "BTC", bars(hours(START, 24 * 40), 30_000.0, seed=6))
    spx_idx = weekday_session(START - pd.Timedelta(days=3), 24 * 44)
    lo, hi = (START + pd.Timedelta(days=d) for d in hole_days)
    spx_idx = spx_idx[(spx_idx < lo) | (spx_idx >= hi)]
    write_hourly(folder, "SPX", bars(spx_idx, 3_700.0, seed=7))
    before, after = spx_idx[spx_idx < lo][-1], spx_idx[spx_idx >= hi][0]
    md = load_market_folder(folder)
    if keeps == "after":
        assert md.start == after and md.end == START + pd.Timedelta(hours=24 * 40 - 1)
    else:
        assert md.start == START and md.end == before
    gap = int((after - before) / HOUR) - 1
    assert any(
        f"SPX ({folder / 'SPX_1h.csv'}) has a hole: last bar {before}, next bar {after}, "
        f"no bar for {format_hours(gap)}" in n
        for n in md.notes
    ), md.notes
    assert not md.frame.isna().any().any()
    with pytest.raises(SeriesCoverageError, match=re.escape(f"last bar {before}, next bar {after}")):
        load_market_folder(folder, coverage=coverage("fail"))


def test_weekends_holidays_and_short_outages_are_not_gaps(tmp_path):
    """SPX closed at night, every weekend and a long Easter weekend, ending on a Friday
    while BTC runs to Sunday night; daily QQQ with a holiday; a 30 h BTC outage."""
    folder = tmp_path / "normal"
    btc_idx = hours(START, 24 * 35).delete(range(200, 230))  # to a Sunday, 23:00
    write_hourly(folder, "BTC", bars(btc_idx, 30_000.0, seed=8))
    spx_idx = weekday_session(START - pd.Timedelta(days=3), 24 * 36)  # to a Friday
    good_friday, easter_monday = START + pd.Timedelta(days=11), START + pd.Timedelta(days=14)
    spx_idx = spx_idx[spx_idx.normalize() != good_friday]
    spx_idx = spx_idx[spx_idx.normalize() != easter_monday]
    assert spx_idx[-1].dayofweek == 4
    write_hourly(folder, "SPX", bars(spx_idx, 3_700.0, seed=9))
    sessions = pd.bdate_range(START - pd.Timedelta(days=5), btc_idx[-1].normalize(), tz="UTC")
    sessions = sessions[(sessions != good_friday) & (sessions != easter_monday)]
    write_daily(folder, "QQQ", bars(pd.DatetimeIndex(sessions), 300.0, seed=10))
    md = load_market_folder(folder, coverage=coverage("fail"))
    assert md.start == START and md.end == btc_idx[-1] and md.end.dayofweek == 6
    assert md.symbols == ["BTC", "SPX", "NASDAQ"] and not coverage_notes(md.notes)


def test_daily_series_ending_early_is_truncated_at_its_visible_hour(tmp_path):
    folder = tmp_path / "daily"
    write_hourly(folder, "BTC", bars(hours(START, 24 * DAYS), 30_000.0, seed=11))
    sessions = pd.bdate_range(START - pd.Timedelta(days=5), START + pd.Timedelta(days=10), tz="UTC")
    write_daily(folder, "DXY", bars(pd.DatetimeIndex(sessions), 100.0, seed=12))
    md = load_market_folder(folder)
    last_visible = sessions[-1] + pd.Timedelta(hours=21)  # 16:00 New York in January
    assert md.end == last_visible and md.frame["DXY_is_open"].iloc[-1] == 1.0
    assert any(
        f"DXY ({folder / 'daily' / 'DXY_1d.csv'}) ends early: last bar (visible from) "
        f"{last_visible}" in n
        for n in md.notes
    ), md.notes


def test_combined_file_short_symbol_is_named_with_the_combined_file(tmp_path):
    btc = bars(hours(START, 24 * DAYS), 30_000.0, seed=13)
    spx = bars(weekday_session(START, 24 * 10), 3_700.0, seed=14)
    path = write_combined(tmp_path / "combined", {"BTC": btc, "SPX": spx})
    md = load_market_folder(tmp_path / "combined", coverage=coverage("drop"))
    assert md.symbols == ["BTC"]
    assert any(f"SPX ({path}) ends early: last bar {spx.index[-1]}" in n for n in md.notes)


def test_market_source_resource_sets_the_policy(short_spx):
    from cryptorl_dagster.resources.market import MarketSource

    folder, spx_last = short_spx
    assert MarketSource(data_dir=str(folder)).load().end == spx_last
    dropped = MarketSource(data_dir=str(folder), on_short_series="drop").load()
    assert dropped.symbols == ["BTC", "ETH"]
    with pytest.raises(SeriesCoverageError, match="ends early"):
        MarketSource(data_dir=str(folder), on_short_series="fail").load()
    with pytest.raises(ValueError, match="on_short_series"):
        MarketSource(data_dir=str(folder), on_short_series="stretch").load()


# ------------------------------------------------------------------------- segments


LONG_END = pd.Timestamp("2023-06-30 23:00", tz="UTC")
SPX_STOP = pd.Timestamp("2023-02-15", tz="UTC")


@pytest.fixture(scope="module")
def long_short_spx(tmp_path_factory) -> tuple[Path, pd.Timestamp]:
    """BTC hourly from START to 2023-06-30; SPX stops on 2023-02-14."""
    folder = tmp_path_factory.mktemp("long") / "market"
    btc_idx = pd.date_range(START, LONG_END, freq="h", name="timestamp")
    write_hourly(folder, "BTC", bars(btc_idx, 30_000.0, seed=15))
    spx_idx = weekday_session(START - pd.Timedelta(days=3), 24 * 1000)
    spx_idx = spx_idx[spx_idx < SPX_STOP]
    write_hourly(folder, "SPX", bars(spx_idx, 3_700.0, seed=16))
    return folder, spx_idx[-1]


def test_segments_end_at_the_truncated_end(long_short_spx):
    folder, spx_last = long_short_spx
    md = load_market_folder(folder)
    assert md.end == spx_last
    segs = walk_forward_segments(md.start, md.end)
    assert [s.key for s in segs] == ["2022-Q3", "2022-Q4"]  # 2023-Q1 is past SPX's end
    assert segs[-1].test_end <= md.end + HOUR
    stretched = load_market_folder(folder, coverage=coverage("truncate", max_gap_macro_hours=24 * 365))
    assert walk_forward_segments(stretched.start, stretched.end)[-1].key == "2023-Q2"


def test_partitions_follow_the_truncated_end(long_short_spx, monkeypatch):
    from cryptorl_dagster import partitions
    from cryptorl_dagster.resources.market import load_market

    folder, _ = long_short_spx
    monkeypatch.setenv("CRYPTORL_DATA_DIR", str(folder))
    try:
        partitions.segments.cache_clear()
        assert [s.key for s in partitions.segments()] == ["2022-Q3", "2022-Q4"]
        monkeypatch.setenv("CRYPTORL_ON_SHORT_SERIES", "drop")  # SPX dropped: BTC's full span
        partitions.segments.cache_clear()
        assert partitions.segments()[-1].key == "2023-Q2"
    finally:
        monkeypatch.undo()
        partitions.segments.cache_clear()
        load_market.cache_clear()
