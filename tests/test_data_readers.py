"""Readers, validation and duplicate handling of single market data files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cryptorl_core.data.errors import DataValidationError, UnknownFormatError
from cryptorl_core.data.readers import parse_timestamps, read_bars, read_ohlcv

START = pd.Timestamp("2021-03-01 00:00", tz="UTC")
N_BARS = 6
HEADER = "timestamp,open,high,low,close,volume"


def reference() -> pd.DataFrame:
    """Six valid hourly bars, oldest first."""
    index = pd.date_range(START, periods=N_BARS, freq="h", name="timestamp")
    close = 100.0 + np.arange(N_BARS) * 1.5
    return pd.DataFrame(
        {
            "open": close - 0.5,
            "high": close + 1.25,
            "low": close - 2.0,
            "close": close,
            "volume": 10.0 + np.arange(N_BARS),
        },
        index=index,
    )


def epoch_seconds(ts: pd.Timestamp) -> int:
    return int(ts.timestamp())


def values(row: pd.Series) -> str:
    return f"{row.open},{row.high},{row.low},{row.close},{row.volume}"


def write(tmp_path: Path, text: str, name: str = "BTC_1h.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def generic_lines(stamp=lambda ts: ts.isoformat()) -> list[str]:
    return [HEADER] + [f"{stamp(ts)},{values(row)}" for ts, row in reference().iterrows()]


# ----------------------------------------------------------------------- formats


def _iso(tmp_path):
    return write(tmp_path, "\n".join(generic_lines(lambda ts: ts.strftime("%Y-%m-%dT%H:%M:%SZ"))))


def _epoch_s(tmp_path):
    return write(tmp_path, "\n".join(generic_lines(epoch_seconds)))


def _epoch_ms(tmp_path):
    return write(tmp_path, "\n".join(generic_lines(lambda ts: epoch_seconds(ts) * 1000)))


def _mixed_units(tmp_path):
    # Seconds (as floats), milliseconds, naive ISO text and CDD's 12-hour text in one column.
    stamps = [
        lambda ts: f"{epoch_seconds(ts)}.0",
        lambda ts: epoch_seconds(ts) * 1000,
        lambda ts: ts.strftime("%Y-%m-%d %H:%M:%S"),
        lambda ts: ts.strftime("%Y-%m-%d %I-%p"),
    ]
    lines = [HEADER] + [
        f"{stamps[i % len(stamps)](ts)},{values(row)}"
        for i, (ts, row) in enumerate(reference().iterrows())
    ]
    return write(tmp_path, "\n".join(lines))


def _newest_first(tmp_path):
    lines = generic_lines()
    return write(tmp_path, "\n".join([lines[0], *reversed(lines[1:])]))


def _shuffled_columns(tmp_path):
    lines = ["Volume,CLOSE,Open_Time,Low,Open,High"] + [
        f"{row.volume},{row.close},{ts.isoformat()},{row.low},{row.open},{row.high}"
        for ts, row in reference().iterrows()
    ]
    return write(tmp_path, "\n".join(lines))


def _cdd_banner(tmp_path):
    lines = [
        "https://www.CryptoDataDownload.com",
        "Unix Timestamp,Date,Symbol,Open,High,Low,Close,Volume BTC,Volume USDT,tradecount",
    ]
    for i, (ts, row) in enumerate(reversed(list(reference().iterrows()))):
        stamp = epoch_seconds(ts) * 1000 if i % 2 else f"{epoch_seconds(ts)}.0"
        date = ts.strftime("%Y-%m-%d %I-%p") if i % 2 else ts.strftime("%Y-%m-%d %H:%M:%S")
        quote = row.volume * row.close  # must not be taken as the volume
        lines.append(
            f"{stamp},{date},BTC/USDT,{row.open},{row.high},{row.low},{row.close},"
            f"{row.volume},{quote},{'NULL' if i % 2 else 42}"
        )
    return write(tmp_path, "\n".join(lines))


def _binance_kline(tmp_path):
    lines = []
    for ts, row in reference().iterrows():
        open_ms = epoch_seconds(ts) * 1000
        lines.append(
            f"{open_ms},{values(row)},{open_ms + 3_599_999},{row.volume * row.close},"
            f"17,{row.volume / 2},{row.volume * row.close / 2},0"
        )
    return write(tmp_path, "\n".join(lines))


def _parquet_column(tmp_path):
    path = tmp_path / "BTC_1h.parquet"
    reference().reset_index()[["close", "timestamp", "volume", "open", "high", "low"]].to_parquet(
        path
    )
    return path


def _parquet_index_epoch(tmp_path):
    path = tmp_path / "BTC_1h.parquet"
    frame = reference()
    frame.index = pd.Index([epoch_seconds(ts) * 1000 for ts in frame.index], name="Timestamp")
    frame.to_parquet(path)
    return path


FORMATS = {
    "generic_iso": _iso,
    "epoch_seconds": _epoch_s,
    "epoch_millis": _epoch_ms,
    "mixed_units": _mixed_units,
    "newest_first": _newest_first,
    "shuffled_columns": _shuffled_columns,
    "cdd_banner": _cdd_banner,
    "binance_kline": _binance_kline,
    "parquet_column": _parquet_column,
    "parquet_index_epoch": _parquet_index_epoch,
}


@pytest.mark.parametrize("name", list(FORMATS))
def test_every_format_parses_to_the_same_frame(tmp_path, name):
    frame = read_ohlcv(FORMATS[name](tmp_path))
    expected = reference()
    assert str(frame.index.tz) == "UTC"
    assert frame.index.name == "timestamp"
    assert list(frame.columns) == ["open", "high", "low", "close", "volume"]
    assert (frame.dtypes == "float64").all()
    pd.testing.assert_index_equal(frame.index, expected.index, exact=False)
    np.testing.assert_allclose(frame.to_numpy(), expected.to_numpy(), rtol=1e-12)


def test_detected_formats_are_reported(tmp_path):
    assert read_bars(_cdd_banner(tmp_path)).fmt == "cryptodatadownload"
    assert read_bars(_binance_kline(tmp_path)).fmt == "binance_kline"
    assert read_bars(_iso(tmp_path)).fmt == "generic_csv"


def test_parse_timestamps_chooses_unit_per_row():
    stamp = pd.Timestamp("2020-08-01 23:00", tz="UTC")
    s = epoch_seconds(stamp)
    raw = pd.Series([s, s * 1000, s * 1_000_000, s * 1_000_000_000, "2020-08-01 11-PM", "x"])
    parsed = parse_timestamps(raw.astype(object))
    assert (parsed.iloc[:5] == stamp).all()
    assert pd.isna(parsed.iloc[5])


# -------------------------------------------------------------------- validation


def _drop_low(lines):
    return [",".join(p for i, p in enumerate(line.split(",")) if i != 3) for line in lines]


def _set(line_no: int, field: str, value: str):
    """Mutation that sets one field of one (1-based) line of a generic file."""
    position = HEADER.split(",").index(field)

    def mutate(lines):
        parts = lines[line_no - 1].split(",")
        parts[position] = value
        lines[line_no - 1] = ",".join(parts)
        return lines

    return mutate


def _duplicate_line(lines):
    return [*lines[:4], lines[2], *lines[4:]]  # line 5 repeats line 3


INVALID = {
    # case: (mutation, column, line, words in the message)
    "missing_column": (_drop_low, "low", 1, "missing column 'low'"),
    "unparsable_timestamp": (_set(4, "timestamp", "yesterday"), "timestamp", 4, "unparsable"),
    "off_hour_timestamp": (
        _set(3, "timestamp", "2021-03-01T01:30:00Z"),
        "timestamp",
        3,
        "hour boundary",
    ),
    "duplicate_timestamp": (_duplicate_line, "timestamp", 5, "more than once"),
    "nan_value": (_set(3, "close", ""), "close", 3, "NaN"),
    "text_value": (_set(6, "open", "n/a"), "open", 6, "non-numeric"),
    "infinite_value": (_set(2, "volume", "inf"), "volume", 2, "infinite"),
    "non_positive_price": (_set(5, "low", "0"), "low", 5, "non-positive"),
    "high_below_max_open_close": (_set(4, "high", "101"), "high", 4, "below max(open, close)"),
    "low_above_min_open_close": (_set(7, "low", "108"), "low", 7, "above min(open, close)"),
    "negative_volume": (_set(3, "volume", "-1"), "volume", 3, "negative volume"),
}


@pytest.mark.parametrize("case", list(INVALID))
def test_invalid_rows_raise_naming_file_column_and_line(tmp_path, case):
    mutate, column, line, words = INVALID[case]
    path = write(tmp_path, "\n".join(mutate(generic_lines())))
    with pytest.raises(DataValidationError) as info:
        read_bars(path)
    err = info.value
    assert isinstance(err, ValueError)
    assert (err.file, err.column, err.row) == (str(path), column, line)
    message = str(err)
    assert str(path) in message and f"column '{column}'" in message
    assert f"line {line}" in message and words in message


def test_first_offending_row_and_count_are_reported(tmp_path):
    lines = _set(3, "volume", "-1")(_set(6, "volume", "-2")(generic_lines()))
    with pytest.raises(DataValidationError) as info:
        read_bars(write(tmp_path, "\n".join(lines)))
    assert info.value.row == 3 and info.value.count == 2
    assert "2 rows" in str(info.value)


def test_line_numbers_count_banner_and_blank_lines(tmp_path):
    lines = ["https://www.CryptoDataDownload.com", *generic_lines()]
    lines.insert(3, "")  # a blank line 4 shifts the data after it
    lines = _set(6, "close", "-5")(lines)
    with pytest.raises(DataValidationError) as info:
        read_bars(write(tmp_path, "\n".join(lines)))
    assert info.value.row == 6 and info.value.column == "close"


def test_parquet_errors_name_the_table_row(tmp_path):
    frame = reference().reset_index()
    frame.loc[2, "volume"] = np.nan
    path = tmp_path / "ETH_1h.parquet"
    frame.to_parquet(path)
    with pytest.raises(DataValidationError, match=r"column 'volume', row 3") as info:
        read_bars(path)
    assert info.value.row == 3


@pytest.mark.parametrize(
    "name, text",
    [
        ("BTC_1h.txt", "\n".join(generic_lines())),
        ("BTC_1h.csv", "a,b\n1,2\n"),
        ("BTC_1h.csv", "foo,bar,baz,qux,quux,corge\n1,2,3,4,5,6\n"),
    ],
)
def test_unknown_format_is_a_clear_error(tmp_path, name, text):
    with pytest.raises(UnknownFormatError, match=name):
        read_bars(write(tmp_path, text, name))


# -------------------------------------------------------------------- duplicates


def _overlapping_exports(newest_first: bool) -> list[str]:
    """Two exports of the same hours 2..3; the later export has slightly different values."""
    ref = reference()
    older = [f"{ts.isoformat()},{values(row)}" for ts, row in ref.iloc[:4].iterrows()]
    newer_rows = ref.iloc[2:].copy()
    newer_rows.loc[newer_rows.index[0], "close"] += 0.01  # a conflicting price
    newer_rows.loc[newer_rows.index[1], "volume"] += 0.5  # a conflicting volume only
    newer = [f"{ts.isoformat()},{values(row)}" for ts, row in newer_rows.iterrows()]
    body = older + newer
    return [HEADER, *(reversed(body) if newest_first else body)]


def test_duplicates_are_an_error_naming_both_lines(tmp_path):
    path = write(tmp_path, "\n".join(_overlapping_exports(newest_first=False)))
    with pytest.raises(DataValidationError) as info:
        read_bars(path)
    message = str(info.value)
    assert info.value.column == "timestamp" and info.value.row == 6
    assert "2 timestamps appear more than once" in message
    assert "1 timestamps with conflicting prices" in message
    assert "line 4:" in message and "line 6:" in message  # the two rows of 02:00
    assert "close=103.01" in message and "close=103 " in message
    assert "dedup=" in message


@pytest.mark.parametrize("newest_first", [False, True])
def test_keep_last_prefers_the_later_export(tmp_path, newest_first):
    path = write(tmp_path, "\n".join(_overlapping_exports(newest_first)))
    bar_file = read_bars(path, dedup="keep_last")
    frame = bar_file.frame
    assert len(frame) == N_BARS and frame.index.is_monotonic_increasing
    assert frame["close"].iloc[2] == pytest.approx(103.01)  # the later export's value
    assert frame["volume"].iloc[3] == pytest.approx(13.5)
    report = bar_file.dedup
    assert (report.n_duplicated_timestamps, report.n_rows_dropped) == (2, 2)
    assert (report.n_price_conflicts, report.n_volume_conflicts) == (1, 1)
    assert "dropped 2 rows" in report.note()


@pytest.mark.parametrize("newest_first", [False, True])
def test_keep_first_prefers_the_earlier_export(tmp_path, newest_first):
    path = write(tmp_path, "\n".join(_overlapping_exports(newest_first)))
    frame = read_ohlcv(path, dedup="keep_first")
    pd.testing.assert_frame_equal(frame, reference(), check_index_type=False, check_freq=False)


def test_identical_duplicates_still_error_without_policy(tmp_path):
    path = write(tmp_path, "\n".join(_duplicate_line(generic_lines())))
    with pytest.raises(DataValidationError, match="1 identical"):
        read_bars(path)
    assert read_bars(path, dedup="keep_last").dedup.n_rows_dropped == 1


def test_unknown_dedup_policy_is_rejected(tmp_path):
    path = write(tmp_path, "\n".join(_duplicate_line(generic_lines())))
    with pytest.raises(ValueError, match="dedup='mean'"):
        read_bars(path, dedup="mean")
