"""Seed 000's combined ``multi_asset_historical.csv``: the same market as per-symbol files,
errors naming the combined file, its real column and the line, the ambiguity error and
skipped symbols."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from helpers.data import COMBINED, START, bars, hours, weekday_session, write_combined, write_hourly

from cryptorl_core.data.errors import DataValidationError, MarketFolderError
from cryptorl_core.data.folder import load_market_folder


def symbol_bars() -> dict[str, pd.DataFrame]:
    """BTC with gaps, ETH starting 5 h later, SPX a weekday session starting 3 days earlier."""
    btc_idx = hours(START, 24 * 10).delete([30, 31, 100])
    spx_idx = weekday_session(START - pd.Timedelta(days=3), 24 * 11)
    return {
        "BTC": bars(btc_idx, 30_000.0, seed=2),
        "ETH": bars(hours(START + pd.Timedelta(hours=5), 24 * 10), 1_000.0, seed=3),
        "SPX": bars(spx_idx, 3_700.0, seed=4),
    }


@pytest.mark.parametrize(
    "name", [COMBINED, "Multi_Asset_Historical.CSV", "multi_asset_historical.parquet"]
)
def test_combined_file_loads_like_per_symbol_files(tmp_path, name):
    frames = symbol_bars()
    for symbol, frame in frames.items():
        write_hourly(tmp_path / "split", symbol, frame)
    write_combined(tmp_path / "combined", frames, name=name)
    split = load_market_folder(tmp_path / "split")
    combined = load_market_folder(tmp_path / "combined")
    pd.testing.assert_frame_equal(combined.frame, split.frame)
    assert combined.symbols == ["BTC", "ETH", "SPX"]
    assert combined.gaps == split.gaps and combined.gaps["BTC"].n_missing_hours == 3
    # SPX's empty rows (outside its session) are hours without a bar, not errors.
    assert combined.frame["SPX_is_open"].sum() < len(combined.frame) / 2
    for symbol in ("NASDAQ", "DXY"):
        assert f"{symbol}: no bars in {name} and no daily file, left out" in combined.notes
    assert any(
        note.startswith(f"ETH: {len(frames['ETH'])} bars from {name}") for note in combined.notes
    )


def test_macro_symbol_may_lack_volume(tmp_path):
    frames = symbol_bars()
    write_combined(tmp_path / "combined", frames, drop=("SPX_volume",))
    frames["SPX"]["volume"] = 0.0
    for symbol, frame in frames.items():
        write_hourly(tmp_path / "split", symbol, frame)
    combined = load_market_folder(tmp_path / "combined")
    pd.testing.assert_frame_equal(combined.frame, load_market_folder(tmp_path / "split").frame)
    assert f"SPX: no SPX_volume column in {COMBINED}, volume set to 0" in combined.notes
    write_combined(tmp_path / "no_eth_volume", symbol_bars(), drop=("ETH_volume",))
    with pytest.raises(DataValidationError, match=r"column 'ETH_volume', line 1: missing column"):
        load_market_folder(tmp_path / "no_eth_volume")


@pytest.mark.parametrize(
    "value, problem",
    [(-5.0, "non-positive price close=-5.0"), ("abc", "non-numeric"), (None, "missing")],
)
def test_bad_value_names_combined_file_column_and_line(tmp_path, value, problem):
    path = write_combined(tmp_path / "bad", symbol_bars())
    table = pd.read_csv(path)
    k = 40  # 0-based data row; its line in the file is k + 2 (the header is line 1)
    assert table["ETH_close"].notna().iloc[k]
    table["ETH_close"] = table["ETH_close"].astype(object)
    table.loc[k, "ETH_close"] = value
    table.to_csv(path, index=False)
    with pytest.raises(DataValidationError) as info:
        load_market_folder(tmp_path / "bad")
    err = info.value
    assert (Path(err.file).name, err.column, err.row) == (COMBINED, "ETH_close", k + 2)
    assert f"{COMBINED}, column 'ETH_close', line {k + 2}: ETH: " in str(err)
    assert problem in str(err) and table.loc[k, "timestamp"].replace("T", " ")[:19] in str(err)


def test_bad_value_in_parquet_names_the_row(tmp_path):
    path = write_combined(tmp_path / "bad", symbol_bars(), name="multi_asset_historical.parquet")
    table = pd.read_parquet(path)
    table.iloc[7, table.columns.get_loc("BTC_high")] = 1.0  # below max(open, close)
    table.to_parquet(path)
    with pytest.raises(DataValidationError, match=r"column 'BTC_high', row 8: BTC: high 1.0 below"):
        load_market_folder(tmp_path / "bad")


def test_duplicates_name_the_time_column_and_dedup_is_noted(tmp_path):
    path = write_combined(tmp_path / "dups", symbol_bars())
    lines = path.read_text().splitlines()
    repeated = next(line for line in lines[1:] if line.split(",")[1])  # the first line with BTC
    path.write_text("\n".join([*lines, repeated]))  # the last line repeats it
    with pytest.raises(
        DataValidationError, match=rf"{COMBINED}, column 'timestamp', line {len(lines) + 1}"
    ):
        load_market_folder(tmp_path / "dups")
    md = load_market_folder(tmp_path / "dups", dedup="keep_last")
    assert f"BTC: {COMBINED}: dedup='keep_last' dropped 1 rows" in " ".join(md.notes)


def test_combined_and_per_symbol_files_are_ambiguous(tmp_path):
    frames = symbol_bars()
    write_combined(tmp_path / "both", frames)
    write_hourly(tmp_path / "both", "ETH", frames["ETH"])
    with pytest.raises(
        MarketFolderError, match=r"ambiguous .* multi_asset_historical.csv .*ETH_1h.csv"
    ):
        load_market_folder(tmp_path / "both")


def test_missing_symbols_are_skipped_with_a_note(tmp_path):
    frames = symbol_bars()
    write_combined(tmp_path / "btc_spx", {s: frames[s] for s in ("BTC", "SPX")})
    md = load_market_folder(tmp_path / "btc_spx")
    assert md.symbols == ["BTC", "SPX"] and "ETH_close" not in md.frame
    assert f"ETH: no bars in {COMBINED} and no daily file, left out" in md.notes
    only_btc = load_market_folder(tmp_path / "btc_spx", symbols=["BTC"])
    assert only_btc.symbols == ["BTC"] and only_btc.start == START
    write_combined(tmp_path / "no_btc", {"ETH": frames["ETH"]})
    with pytest.raises(MarketFolderError, match=r"no BTC bars"):
        load_market_folder(tmp_path / "no_btc")
