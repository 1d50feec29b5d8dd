"""Gap filling, alignment, daily-bar visibility and whole-folder loading."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers.data import START, bars, hours, weekday_session, write_daily, write_hourly

from cryptorl_core.data.daily import visible_from
from cryptorl_core.data.errors import DataValidationError, MarketFolderError
from cryptorl_core.data.folder import load_market_folder
from cryptorl_core.data.gaps import fill_gaps, find_gaps
from cryptorl_core.schema import OHLCV

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


# -------------------------------------------------------------------------- gaps


def test_gap_report_counts_missing_hours():
    idx = hours(START, 12).delete([3, 4, 7])
    report = find_gaps(idx, "BTC")
    assert (report.n_missing_hours, report.n_gaps, report.longest_gap_hours) == (3, 2, 2)
    assert report.longest_gap_start == START + pd.Timedelta(hours=3)
    assert find_gaps(hours(START, 5), "ETH").n_missing_hours == 0


def test_gap_fill_is_a_flat_bar_at_the_previous_close():
    raw = bars(hours(START, 12), 100.0, seed=0).drop(hours(START, 12)[[3, 4, 7]])
    filled, present = fill_gaps(raw)
    assert len(filled) == 12 and filled.notna().all().all()
    assert present.sum() == 9 and not present.iloc[3] and not present.iloc[7]
    for missing, previous in [(3, 2), (4, 2), (7, 6)]:
        row = filled.iloc[missing]
        assert (row[["open", "high", "low", "close"]] == filled["close"].iloc[previous]).all()
        assert row["volume"] == 0.0
    pd.testing.assert_frame_equal(filled[present.to_numpy()], raw, check_freq=False)


def test_gap_fill_uses_only_past_values():
    idx = hours(START, 48)
    raw = bars(idx, 100.0, seed=1).drop(idx[[5, 6, 20, 21, 22, 40]])
    full, _ = fill_gaps(raw)
    for cut in (idx[6], idx[21], idx[30], idx[45]):
        truncated, _ = fill_gaps(raw[raw.index <= cut], end=cut)
        pd.testing.assert_frame_equal(truncated, full[full.index <= cut], check_freq=False)


# --------------------------------------------------------------------- alignment


@pytest.fixture
def market_folder(tmp_path) -> Path:
    """BTC (with gaps) from START, ETH from START+5h, SPX a weekday session from START-3d."""
    folder = tmp_path / "market"
    btc_idx = hours(START, 24 * 10).delete([30, 31, 100])
    write_hourly(folder, "BTC", bars(btc_idx, 30_000.0, seed=2))
    write_hourly(folder, "ETH", bars(hours(START + pd.Timedelta(hours=5), 24 * 10), 1_000.0, 3))
    spx_idx = weekday_session(START - pd.Timedelta(days=3), 24 * 11)
    write_hourly(folder, "SPX", bars(spx_idx, 3_700.0, seed=4))
    return folder


def test_aligned_range_and_columns(market_folder):
    md = load_market_folder(market_folder)
    frame = md.frame
    assert md.start == START + pd.Timedelta(hours=5)  # ETH's first bar, the latest crypto start
    assert md.end == START + pd.Timedelta(hours=24 * 10 - 1)  # BTC's last bar
    assert frame.index.name == "timestamp" and str(frame.index.tz) == "UTC"
    assert (np.diff(frame.index.asi8) == np.diff(frame.index.asi8)[0]).all()
    assert len(frame) == 24 * 10 - 5
    assert md.symbols == ["BTC", "ETH", "SPX"]
    assert "SPX_is_open" in frame and "BTC_is_open" not in frame
    assert not frame.isna().any().any()
    assert md.gaps["BTC"].n_missing_hours == 3 and md.gaps["BTC"].n_gaps == 2


def test_macro_forward_fill_and_is_open_flags(market_folder):
    frame = load_market_folder(market_folder).frame
    spx = pd.read_csv(market_folder / "SPX_1h.csv", index_col=0)
    spx.index = pd.to_datetime(spx.index, utc=True)
    printed = frame.index.isin(spx.index)
    np.testing.assert_array_equal(frame["SPX_is_open"].to_numpy(), printed.astype(float))
    # Printed hours carry the file's bar; closed hours a flat bar at the last printed close.
    np.testing.assert_allclose(
        frame.loc[printed, "SPX_close"], spx.loc[frame.index[printed], "close"]
    )
    last_close = spx["close"].reindex(spx.index.union(frame.index)).ffill().reindex(frame.index)
    closed = ~printed
    for field in ("open", "high", "low", "close"):
        np.testing.assert_allclose(frame.loc[closed, f"SPX_{field}"], last_close[closed])
    assert (frame.loc[closed, "SPX_volume"] == 0).all()


def test_macro_is_never_back_filled(tmp_path):
    folder = tmp_path / "m"
    write_hourly(folder, "BTC", bars(hours(START, 24 * 4), 30_000.0, seed=5))
    late_spx = weekday_session(START + pd.Timedelta(days=1), 24 * 3)
    write_hourly(folder, "SPX", bars(late_spx, 3_700.0, seed=6))
    md = load_market_folder(folder)
    assert md.start == late_spx[0]  # starts when the macro symbol has a value
    assert md.frame["SPX_is_open"].iloc[0] == 1.0
    assert any("never back-filled" in note for note in md.notes)


def test_alignment_is_invariant_to_future_data(market_folder, tmp_path):
    """Every row up to a cut equals the row built from files truncated at the cut."""
    full = load_market_folder(market_folder).frame
    cut = START + pd.Timedelta(hours=24 * 6 + 17)
    truncated_folder = tmp_path / "truncated"
    for symbol in ("BTC", "ETH", "SPX"):
        raw = pd.read_csv(market_folder / f"{symbol}_1h.csv", index_col=0)
        raw.index = pd.to_datetime(raw.index, utc=True)
        write_hourly(truncated_folder, symbol, raw[raw.index <= cut])
    truncated = load_market_folder(truncated_folder).frame
    assert truncated.index[-1] == cut
    pd.testing.assert_frame_equal(truncated, full.loc[:cut], check_freq=False)


# ------------------------------------------------------------------ daily bars


@pytest.mark.parametrize(
    "session_date, close_utc_hour",
    [("2021-07-15", 20), ("2021-01-15", 21)],  # EDT (UTC-4) and EST (UTC-5)
)
def test_daily_bar_visible_from_new_york_close(tmp_path, session_date, close_utc_hour):
    day = pd.Timestamp(session_date, tz="UTC")
    assert visible_from(pd.DatetimeIndex([day]))[0] == day + pd.Timedelta(hours=close_utc_hour)
    folder = tmp_path / "daily_market"
    write_hourly(folder, "BTC", bars(hours(day - pd.Timedelta(days=5), 24 * 8), 30_000.0, 7))
    dates = pd.bdate_range(day - pd.Timedelta(days=6), day + pd.Timedelta(days=2), tz="UTC")
    qqq = bars(pd.DatetimeIndex(dates), 300.0, seed=8)
    write_daily(folder, "QQQ", qqq)
    md = load_market_folder(folder)
    frame = md.frame
    at_1500_ny = day + pd.Timedelta(hours=close_utc_hour - 1)
    at_1600_ny = day + pd.Timedelta(hours=close_utc_hour)
    previous_close = qqq["close"].iloc[qqq.index.get_loc(day) - 1]
    assert frame.loc[at_1500_ny, "NASDAQ_close"] == pytest.approx(previous_close)
    assert frame.loc[at_1500_ny, "NASDAQ_is_open"] == 0.0
    for field in OHLCV:
        assert frame.loc[at_1600_ny, f"NASDAQ_{field}"] == pytest.approx(qqq.loc[day, field])
    assert frame.loc[at_1600_ny, "NASDAQ_is_open"] == 1.0
    assert frame.loc[at_1600_ny + pd.Timedelta(hours=1), "NASDAQ_is_open"] == 0.0
    # No hour before a bar's close may show it: every visible close is an earlier session's.
    visible_since = visible_from(qqq.index)
    assert (
        frame["NASDAQ_is_open"].sum()
        == ((visible_since >= md.start) & (visible_since <= md.end)).sum()
    )
    assert "DXY_close" not in frame and any("QQQ_1d.csv" in n for n in md.notes)


def test_hourly_file_wins_over_daily(tmp_path):
    folder = tmp_path / "both"
    write_hourly(folder, "BTC", bars(hours(START, 24 * 5), 30_000.0, seed=9))
    spx_idx = weekday_session(START - pd.Timedelta(days=1), 24 * 6)
    write_hourly(folder, "NASDAQ", bars(spx_idx, 12_000.0, seed=10))
    write_daily(
        folder, "QQQ", bars(pd.DatetimeIndex(pd.bdate_range(START, periods=4, tz="UTC")), 300.0, 11)
    )
    md = load_market_folder(folder)
    assert md.frame["NASDAQ_close"].max() > 1_000  # the hourly NASDAQ, not QQQ
    assert any("daily/QQQ_1d.csv ignored" in note for note in md.notes)


# -------------------------------------------------------------- folder variants


@pytest.mark.parametrize(
    "symbols, present",
    [(("BTC",), ["BTC"]), (("BTC", "ETH"), ["BTC", "ETH"]), (("BTC", "DXY"), ["BTC", "DXY"])],
)
def test_folders_with_some_symbols_load(tmp_path, symbols, present):
    folder = tmp_path / "partial"
    for i, symbol in enumerate(symbols):
        idx = hours(START, 24 * 3) if symbol != "DXY" else weekday_session(START, 24 * 3)
        write_hourly(folder, symbol, bars(idx, 100.0 * (i + 1), seed=20 + i))
    md = load_market_folder(folder)
    assert md.symbols == present
    for symbol in {"ETH", "SPX", "NASDAQ", "DXY"} - set(symbols):
        assert f"{symbol}_close" not in md.frame
        assert f"{symbol}: no file found, left out" in md.notes
    assert ("DXY_is_open" in md.frame) == ("DXY" in symbols)


def test_symbols_argument_restricts_loading(market_folder):
    md = load_market_folder(market_folder, symbols=["BTC", "SPX"])
    assert md.symbols == ["BTC", "SPX"] and md.start == START
    with pytest.raises(ValueError, match="must include BTC"):
        load_market_folder(market_folder, symbols=["ETH"])
    with pytest.raises(ValueError, match="unknown symbols"):
        load_market_folder(market_folder, symbols=["BTC", "DOGE"])


def test_parquet_files_load(tmp_path):
    folder = tmp_path / "pq"
    folder.mkdir()
    frame = bars(hours(START, 24), 30_000.0, seed=12)
    frame.to_parquet(folder / "BTC_1h.parquet")
    md = load_market_folder(folder)
    np.testing.assert_allclose(md.frame["BTC_close"], frame["close"])


def test_folder_errors(tmp_path):
    with pytest.raises(MarketFolderError, match="folder not found"):
        load_market_folder(tmp_path / "nowhere")
    folder = tmp_path / "no_btc"
    write_hourly(folder, "ETH", bars(hours(START, 5), 1_000.0, seed=13))
    with pytest.raises(MarketFolderError, match="no BTC_1h.csv or BTC_1h.parquet"):
        load_market_folder(folder)
    write_hourly(folder, "BTC", bars(hours(START, 5), 30_000.0, seed=14))
    bars(hours(START, 5), 30_000.0, seed=14).to_parquet(folder / "BTC_1h.parquet")
    with pytest.raises(MarketFolderError, match="two files for BTC"):
        load_market_folder(folder)


def test_folder_dedup_is_opt_in_and_noted(tmp_path):
    folder = tmp_path / "dups"
    write_hourly(folder, "BTC", bars(hours(START, 10), 30_000.0, seed=15))
    path = folder / "BTC_1h.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines, lines[3]]))  # line 12 repeats line 4
    with pytest.raises(DataValidationError, match=r"BTC_1h.csv, column 'timestamp', line 12"):
        load_market_folder(folder)
    md = load_market_folder(folder, dedup="keep_last")
    assert len(md.frame) == 10
    assert any("dedup='keep_last' dropped 1 rows" in note for note in md.notes)


# ---------------------------------------------------------- real data (optional)


def test_shared_real_data_loads(tmp_path):
    if not (SHARED_DATA / "BTC_1h.csv").is_file():
        pytest.skip(f"real market data not available at {SHARED_DATA}")
    began = time.perf_counter()
    md = load_market_folder(SHARED_DATA)
    assert time.perf_counter() - began < 10.0
    assert md.symbols == ["BTC", "ETH", "SPX", "NASDAQ", "DXY"]
    assert not md.frame.isna().any().any()
    assert md.start == pd.Timestamp("2018-01-01", tz="UTC")
    assert md.end == pd.Timestamp("2022-12-31 23:00", tz="UTC")
    assert md.gaps["BTC"].longest_gap_start == pd.Timestamp("2018-02-08 01:00", tz="UTC")
    raw = SHARED_DATA / "cryptodatadownload-raw"
    if not raw.is_dir():
        return
    cdd = tmp_path / "cdd"
    cdd.mkdir()
    (cdd / "BTC_1h.csv").symlink_to(raw / "Binance_BTCUSDT_1h.csv")
    with pytest.raises(DataValidationError, match="2649 timestamps appear more than once") as info:
        load_market_folder(cdd)
    assert info.value.row is not None and "line" in str(info.value)
    md = load_market_folder(cdd, dedup="keep_last")
    assert md.frame.index.is_unique and md.symbols == ["BTC"]
    assert any("dropped 2649 rows" in note for note in md.notes)
