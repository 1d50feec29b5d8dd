"""Seed 000's combined market file: every symbol's hourly bars in one table.

Layout of ``multi_asset_historical.csv`` (or ``.parquet``; the name is matched
case-insensitively)::

    timestamp,BTC_open,BTC_high,BTC_low,BTC_close,BTC_volume,ETH_open,...,SPX_close,...

- one time column: a name of :data:`~cryptorl_core.data.readers.TIME_COLUMN_NAMES`
  (``timestamp``, ``date``, ...), else the first column; in a parquet file it may be the
  index. Its values are parsed like a per-symbol file's (:func:`parse_timestamps`);
- ``{SYM}_{open,high,low,close,volume}`` for each symbol present, ``SYM`` one of
  :data:`~cryptorl_core.schema.CRYPTO_SYMBOLS` and :data:`~cryptorl_core.schema.MACRO_SYMBOLS`
  (names matched case-insensitively, any column order; other columns are ignored). A macro
  symbol may lack its volume column: its volume is then 0 (and a note says so);
- CSV: the header on line 1, then one line per hour (no banner lines).

:func:`read_combined` splits the table into one bar table per symbol, which then goes
through the same checks as a per-symbol file (:mod:`~cryptorl_core.data.validation`):
an error names the combined file, the real column (``ETH_close``, or the time column)
and the line (CSV) or row (parquet). A row where a symbol's price columns are all empty
(and its volume empty or 0) means that symbol has no bar in that hour, e.g. SPX outside
its session, exactly as a line missing from a per-symbol file; a partly empty row is an
error. A symbol without any bar is left out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cryptorl_core.data.errors import DataValidationError, MarketFolderError, UnknownFormatError
from cryptorl_core.data.readers import (
    TIME_COL,
    TIME_COLUMN_NAMES,
    BarFile,
    normalise_name,
    parse_timestamps,
    read_parquet_table,
)
from cryptorl_core.data.validation import resolve_duplicates, validate_bars
from cryptorl_core.schema import CRYPTO_SYMBOLS, MACRO_SYMBOLS, OHLCV, raw_column

COMBINED_FILE_RE = re.compile(r"^multi_asset_historical\.(?P<ext>csv|parquet)$", re.IGNORECASE)
SYMBOL_COLUMN_RE = re.compile(r"^(?P<symbol>[a-z0-9]+)_(?P<field>open|high|low|close|volume)$")
KNOWN_SYMBOLS = (*CRYPTO_SYMBOLS, *MACRO_SYMBOLS)
PRICE_FIELDS = ("open", "high", "low", "close")
FORMAT_COMBINED_CSV = "combined_csv"
FORMAT_COMBINED_PARQUET = "combined_parquet"
#: Volume of a macro symbol whose combined file has no volume column.
MISSING_MACRO_VOLUME = 0.0


@dataclass
class CombinedFile:
    """A combined file split into validated per-symbol bars.

    :param file: the file.
    :param fmt: ``combined_csv`` or ``combined_parquet``.
    :param bars: validated bars per symbol with at least one bar (same form as
        :func:`~cryptorl_core.data.readers.read_bars`).
    :param notes: symbols without bars, macro volume set to 0.
    """

    file: Path
    fmt: str
    bars: dict[str, BarFile]
    notes: list[str] = field(default_factory=list)


def find_combined_file(folder: str | Path) -> Path | None:
    """The combined file of a folder, if any.

    :raises MarketFolderError: when there is both a CSV and a parquet combined file.
    """
    found = [
        f for f in sorted(Path(folder).iterdir()) if COMBINED_FILE_RE.match(f.name) and f.is_file()
    ]
    if len(found) > 1:
        raise MarketFolderError(f"two combined files: {found[0]} and {found[1]}; keep one")
    return found[0] if found else None


def read_combined(
    path: str | Path, symbols: tuple[str, ...] | list[str] | None = None, dedup: str | None = None
) -> CombinedFile:
    """Read a combined file and validate each wanted symbol's bars.

    :param path: the combined ``.csv`` or ``.parquet`` file.
    :param symbols: symbols to read (default: every known symbol); absent ones are skipped.
    :param dedup: duplicated-timestamp policy, as for
        :func:`~cryptorl_core.data.readers.read_bars` (applied to each symbol).
    :return: the bars of every wanted symbol with at least one bar.
    :raises DataValidationError: naming the file, the real column and the line / row.
    :raises UnknownFormatError: unreadable file or no symbol column.
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"market data file not found: {file}")
    table, fmt, header_row = _read_table(file)
    time_col, by_symbol = _resolve_columns(table, file, header_row)
    raw_time = table[time_col]
    timestamps = parse_timestamps(raw_time)
    out = CombinedFile(file=file, fmt=fmt, bars={})
    for symbol in KNOWN_SYMBOLS if symbols is None else symbols:
        if symbol not in by_symbol:
            continue
        columns = _symbol_columns(symbol, by_symbol[symbol], table, file, header_row, out.notes)
        bar_file = _symbol_bars(
            symbol, columns, table, timestamps, raw_time, time_col, file, fmt, dedup
        )
        if bar_file is None:
            out.notes.append(f"{symbol}: every row of its columns in {file.name} is empty")
        else:
            out.bars[symbol] = bar_file
    return out


def _read_table(file: Path) -> tuple[pd.DataFrame, str, int | None]:
    """The table indexed by line (CSV, header is line 1) or 1-based row (parquet)."""
    suffix = file.suffix.lower()
    if suffix == ".parquet":
        return read_parquet_table(file), FORMAT_COMBINED_PARQUET, None
    if suffix != ".csv":
        raise UnknownFormatError(
            f"unsupported extension '{file.suffix}' (expected .csv or .parquet)", file=file
        )
    try:
        table = pd.read_csv(file, skip_blank_lines=False, low_memory=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise UnknownFormatError(f"not a well-formed CSV ({exc})", file=file) from exc
    table.index = pd.RangeIndex(2, 2 + len(table), name="line")  # line 1 is the header
    return table.dropna(how="all"), FORMAT_COMBINED_CSV, 1


def _resolve_columns(
    table: pd.DataFrame, file: Path, header_row: int | None
) -> tuple[object, dict[str, dict[str, object]]]:
    """The time column and ``{symbol: {field: column}}``."""
    by_symbol: dict[str, dict[str, object]] = {}
    others: list[object] = []
    for name in table.columns:
        match = SYMBOL_COLUMN_RE.match(normalise_name(name))
        if match is not None and match["symbol"].upper() in KNOWN_SYMBOLS:
            by_symbol.setdefault(match["symbol"].upper(), {}).setdefault(match["field"], name)
        else:
            others.append(name)
    if not by_symbol:
        raise UnknownFormatError(
            f"no {{SYMBOL}}_{{open,high,low,close,volume}} columns for the symbols {list(KNOWN_SYMBOLS)} "
            f"in columns {[str(n) for n in table.columns]}",
            file=file,
        )
    by_norm: dict[str, object] = {}
    for name in others:
        by_norm.setdefault(normalise_name(name), name)
    time_name = next((n for n in TIME_COLUMN_NAMES if n in by_norm), None)
    if time_name is not None:
        return by_norm[time_name], by_symbol
    if others and table.columns[0] == others[0]:
        return others[0], by_symbol
    raise DataValidationError(
        f"missing time column (one of {list(TIME_COLUMN_NAMES)}, or a first column that is not "
        f"a symbol column); found {[str(n) for n in table.columns]}",
        file=file,
        column=TIME_COL,
        row=header_row,
    )


def _symbol_columns(
    symbol: str,
    found: dict[str, object],
    table: pd.DataFrame,
    file: Path,
    header_row: int | None,
    notes: list[str],
) -> dict[str, object]:
    """Check a symbol has every OHLCV column (a macro symbol may lack volume)."""
    for name in OHLCV:
        if name in found or (name == "volume" and symbol in MACRO_SYMBOLS):
            continue
        raise DataValidationError(
            f"missing column '{raw_column(symbol, name)}' (the file has other {symbol} columns); "
            f"found {[str(n) for n in table.columns]}",
            file=file,
            column=raw_column(symbol, name),
            row=header_row,
        )
    if "volume" not in found:
        notes.append(
            f"{symbol}: no {raw_column(symbol, 'volume')} column in {file.name}, volume set to 0"
        )
    return found


def _symbol_bars(
    symbol: str,
    columns: dict[str, object],
    table: pd.DataFrame,
    timestamps: pd.Series,
    raw_time: pd.Series,
    time_col: object,
    file: Path,
    fmt: str,
    dedup: str | None,
) -> BarFile | None:
    """One symbol's validated bars (``None`` when every row of its columns is empty)."""
    empty = table[[columns[f] for f in PRICE_FIELDS]].isna().all(axis=1)
    if "volume" in columns:
        volume = table[columns["volume"]]
        empty &= volume.isna() | (pd.to_numeric(volume, errors="coerce") == 0)
    rows = ~empty.to_numpy()
    if not rows.any():
        return None
    frame = pd.DataFrame({TIME_COL: timestamps[rows]})
    for name in OHLCV:
        if name in columns:
            frame[name] = pd.to_numeric(table.loc[rows, columns[name]], errors="coerce").astype(
                "float64"
            )
        else:
            frame[name] = MISSING_MACRO_VOLUME
    real = {TIME_COL: str(time_col), **{f: str(c) for f, c in columns.items()}}
    try:
        validate_bars(frame, raw_time[rows], file)
        frame, report = resolve_duplicates(frame, file, dedup)
    except DataValidationError as exc:
        # The checks name the generic field ("close"); name the file's column ("ETH_close").
        raise type(exc)(
            f"{symbol}: {exc.detail}",
            file=exc.file,
            column=real.get(exc.column, exc.column),
            row=exc.row,
            count=exc.count,
        ) from exc
    frame = frame.sort_values(TIME_COL, kind="stable").set_index(TIME_COL)
    frame.index = pd.DatetimeIndex(frame.index, name=TIME_COL)
    return BarFile(file=file, fmt=fmt, frame=frame[list(OHLCV)], dedup=report)
