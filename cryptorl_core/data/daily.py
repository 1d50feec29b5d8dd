"""Daily macro bars, made visible to the hourly pipeline only after their session closed.

A daily bar dated D (a US session date) is only known once that session has closed, at
16:00 America/New_York (DST-aware: 20:00 UTC in summer, 21:00 UTC in winter). It becomes
visible from the first hourly bar whose *open* time is at or after that instant, and to
no hour before it. Putting the bar at midnight of D, or at any hour of D before the
close, would leak the day's close into the morning: a classic look-ahead bug.

:func:`daily_to_visible_bars` turns daily bars into bars stamped with that first visible
hour, so that alignment can treat them like a sparse hourly macro series: the bar's
OHLCV appears in the hour it becomes visible (``is_open = 1``) and is carried forward
as a flat bar with zero volume until the next one (``is_open = 0``).
"""

from __future__ import annotations

import re
from datetime import time
from pathlib import Path

import pandas as pd

from cryptorl_core.data.errors import DataValidationError, MarketFolderError
from cryptorl_core.data.readers import TIME_COL, BarFile, read_bars
from cryptorl_core.schema import MACRO_SYMBOLS

#: Sub-folder of a market folder holding daily bars.
DAILY_SUBFOLDER = "daily"
#: Time zone and local time at which a US session's daily bar is final.
SESSION_TZ = "America/New_York"
SESSION_CLOSE = time(16, 0)
#: Daily file names that stand for a macro symbol (a proxy ETF or index name).
DAILY_ALIASES = {"QQQ": "NASDAQ", "SPY": "SPX", "DXY": "DXY", "SPX": "SPX", "NASDAQ": "NASDAQ"}
DAILY_FILE_RE = re.compile(r"^(?P<name>[A-Za-z0-9]+)_1d\.(?P<ext>csv|parquet)$", re.IGNORECASE)
BAR_FREQ = "h"


def visible_from(session_dates: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """First hourly bar (UTC open time) at which each session date's daily bar is known.

    :param session_dates: session dates D (any time of day is ignored; a tz-aware value
        is read as its calendar date in its own time zone).
    :return: ``ceil_to_hour(D 16:00 America/New_York)`` in UTC, same length.
    """
    dates = pd.DatetimeIndex(session_dates)
    if dates.tz is not None:
        dates = dates.tz_localize(None)
    close_local = dates.normalize() + pd.Timedelta(
        hours=SESSION_CLOSE.hour, minutes=SESSION_CLOSE.minute
    )
    close_utc = close_local.tz_localize(SESSION_TZ, ambiguous="raise", nonexistent="raise")
    return close_utc.tz_convert("UTC").ceil(BAR_FREQ).rename(TIME_COL)


def daily_to_visible_bars(bars: pd.DataFrame, file: str | Path) -> pd.DataFrame:
    """Re-stamp daily bars with the hour from which they are visible.

    :param bars: validated daily bars indexed by session date (UTC midnight, as read).
    :param file: the source file, for messages.
    :return: the same OHLCV values indexed by :func:`visible_from` of their dates.
    :raises DataValidationError: when a date carries a time of day.
    """
    index = pd.DatetimeIndex(bars.index)
    has_time = index != index.normalize()
    if has_time.any():
        first = int(has_time.argmax())
        raise DataValidationError(
            f"daily bars must be dated by session date without a time of day, got {index[first]}",
            file=file,
            column=TIME_COL,
            row=None,
            count=int(has_time.sum()),
        )
    out = bars.copy()
    out.index = visible_from(index).as_unit(index.unit)
    return out


def read_daily(path: str | Path, dedup: str | None = None) -> tuple[pd.DataFrame, BarFile]:
    """Read a daily file and re-stamp its bars with their visibility hour.

    :param path: a ``<NAME>_1d.csv`` / ``.parquet`` file with ``date, open, high, low,
        close, volume``.
    :param dedup: duplicate policy, as for :func:`~cryptorl_core.data.readers.read_bars`.
    :return: the visible bars and the file as read.
    """
    bar_file = read_bars(path, dedup)
    return daily_to_visible_bars(bar_file.frame, bar_file.file), bar_file


def find_daily_files(folder: str | Path) -> dict[str, Path]:
    """Daily files of a market folder's ``daily/`` sub-folder, by macro symbol.

    :param folder: the market folder.
    :return: ``{symbol: file}`` for every recognised name (:data:`DAILY_ALIASES`).
    :raises MarketFolderError: when two files map to the same symbol.
    """
    daily = Path(folder) / DAILY_SUBFOLDER
    found: dict[str, Path] = {}
    if not daily.is_dir():
        return found
    for file in sorted(daily.iterdir()):
        match = DAILY_FILE_RE.match(file.name)
        symbol = DAILY_ALIASES.get(match["name"].upper()) if match else None
        if symbol is None or symbol not in MACRO_SYMBOLS:
            continue
        if symbol in found:
            raise MarketFolderError(
                f"two daily files for {symbol}: {found[symbol]} and {file}; keep one"
            )
        found[symbol] = file
    return found
