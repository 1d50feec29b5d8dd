"""Market-file writers shared by the data tests: valid random-walk OHLCV bars, hourly and
weekday-session indexes, per-symbol hourly and daily CSVs and seed 000's combined wide file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

START = pd.Timestamp("2021-01-04 00:00", tz="UTC")  # a Monday


def bars(index: pd.DatetimeIndex, base: float, seed: int) -> pd.DataFrame:
    """Valid OHLCV bars on ``index`` with a random-walk close."""
    rng = np.random.default_rng(seed)
    close = base * np.exp(np.cumsum(rng.normal(0, 0.01, len(index))))
    open_ = np.r_[base, close[:-1]]
    spread = np.abs(rng.normal(0, 0.005, len(index))) * close
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) + spread,
            "low": np.minimum(open_, close) - spread,
            "close": close,
            "volume": rng.uniform(1, 10, len(index)),
        },
        index=index.rename("timestamp"),
    )


def hours(start: pd.Timestamp, n: int) -> pd.DatetimeIndex:
    return pd.date_range(start, periods=n, freq="h", name="timestamp")


def write_hourly(folder: Path, symbol: str, frame: pd.DataFrame) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{symbol}_1h.csv"
    out = frame.copy()
    out.index = out.index.strftime("%Y-%m-%dT%H:%M:%SZ")
    out.to_csv(path, index_label="timestamp")
    return path


def write_daily(folder: Path, name: str, frame: pd.DataFrame) -> Path:
    daily = folder / "daily"
    daily.mkdir(parents=True, exist_ok=True)
    path = daily / f"{name}_1d.csv"
    out = frame.copy()
    out.index = out.index.strftime("%Y-%m-%d")
    out.to_csv(path, index_label="date")
    return path


def weekday_session(start: pd.Timestamp, n: int) -> pd.DatetimeIndex:
    """Hours of a macro market that prints 14:00-20:00 UTC on weekdays only."""
    idx = hours(start, n)
    return idx[(idx.dayofweek < 5) & (idx.hour >= 14) & (idx.hour <= 20)]


COMBINED = "multi_asset_historical.csv"


def write_combined(
    folder: Path, frames: dict[str, pd.DataFrame], name: str = COMBINED, drop: tuple = ()
) -> Path:
    """One wide table: ``timestamp`` then ``{SYM}_{field}``; a symbol without a bar in an
    hour has empty cells there (the outer join of the symbols' hours)."""
    folder.mkdir(parents=True, exist_ok=True)
    wide = pd.concat(frames, axis=1).sort_index()
    wide.columns = [f"{sym}_{field}" for sym, field in wide.columns]
    wide = wide.drop(columns=list(drop))
    path = folder / name
    if path.suffix.lower() == ".parquet":
        wide.to_parquet(path)
    else:
        wide.index = wide.index.strftime("%Y-%m-%dT%H:%M:%SZ")
        wide.to_csv(path, index_label="timestamp")
    return path
