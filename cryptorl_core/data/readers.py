"""Read one OHLCV file of any supported layout into a validated bar frame.

Supported layouts, detected from the file itself:

- **generic CSV**: a header row with a time column (``timestamp``, ``date``, ``time``,
  ``open_time``, ``unix``, ... case-insensitive, any column order) and
  ``open, high, low, close, volume``;
- **CryptoDataDownload export**: the same, after one or more banner lines such as
  ``https://www.CryptoDataDownload.com`` (header ``Unix Timestamp,Date,Symbol,Open,High,Low,
  Close,Volume BTC,Volume USDT,tradecount``; the base-currency volume is used);
- **Binance kline CSV**: no header, 12 columns ``open_time, open, high, low, close,
  volume, close_time, quote_volume, trades, taker_base, taker_quote, ignore`` (any
  header-less file of at least 6 columns is read with this layout);
- **parquet** with the same column names (the time column may also be the index).

Timestamps are parsed per row, since real exports mix units: numbers are epoch
seconds, milliseconds, microseconds or nanoseconds by magnitude; text is ISO 8601
(naive text is taken as UTC) or CryptoDataDownload's ``2020-08-01 11-PM``.

The result of :func:`read_bars` is indexed by a tz-aware UTC ``DatetimeIndex`` named
``timestamp`` (bar open time), with float64 columns ``open, high, low, close, volume``,
sorted oldest first, after :mod:`~cryptorl_core.data.validation` accepted every row.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cryptorl_core.data.errors import DataValidationError, UnknownFormatError
from cryptorl_core.data.validation import (
    DedupReport,
    resolve_duplicates,
    validate_bars,
)
from cryptorl_core.schema import OHLCV

#: Name of the time column / index of every bar frame.
TIME_COL = "timestamp"
#: Resolution of every timestamp produced (pandas' default resolution).
TIME_UNIT = "us"

#: Candidate time columns (normalised names), most specific first: an epoch column
#: beats a human-readable date when a file has both (CryptoDataDownload has both).
TIME_COLUMN_NAMES = (
    "open_time",
    "timestamp",
    "unix_timestamp",
    "unix",
    "datetime",
    "date_time",
    "date",
    "time",
)
#: Quote currencies: a ``volume_<quote>`` column is quote volume, not base volume.
QUOTE_CURRENCIES = frozenset({"usdt", "usd", "usdc", "busd", "tusd", "fdusd", "dai", "eur"})
#: Column layout of a header-less (Binance kline) file: the first six columns.
KLINE_COLUMNS = (TIME_COL, *OHLCV)
#: Fewest fields a header or data line has; shorter leading lines are banners.
MIN_FIELDS = 3
#: How many leading lines may be banners before the header.
MAX_BANNER_LINES = 5

#: Epoch magnitude limits: below 1e11 is seconds (up to year 5138), below 1e14
#: milliseconds, below 1e17 microseconds, anything larger nanoseconds.
EPOCH_SECONDS_MAX = 1e11
EPOCH_MILLIS_MAX = 1e14
EPOCH_MICROS_MAX = 1e17
MICROS_PER_UNIT = {"s": 1e6, "ms": 1e3, "us": 1.0, "ns": 1e-3}
#: Text layouts tried in order on rows that are not numbers.
TEXT_TIME_FORMATS = ("ISO8601", "%Y-%m-%d %I-%p", "%Y-%m-%d %I %p", "%Y-%m-%d %I:%M:%S %p")
#: Timestamps outside this range are reported as unparsable (a wrong column or unit).
PLAUSIBLE_START = pd.Timestamp("1990-01-01", tz="UTC")
PLAUSIBLE_END = pd.Timestamp("2200-01-01", tz="UTC")

FORMAT_GENERIC = "generic_csv"
FORMAT_CDD = "cryptodatadownload"
FORMAT_KLINE = "binance_kline"
FORMAT_PARQUET = "parquet"


@dataclass
class RawBars:
    """A file's rows as read, in file order, before validation.

    :param file: the file.
    :param fmt: the detected layout (``generic_csv``, ``cryptodatadownload``,
        ``binance_kline`` or ``parquet``).
    :param frame: columns ``timestamp`` (UTC, ``NaT`` where unparsable) and
        ``open..volume`` (float64, NaN where missing or non-numeric), indexed by the
        1-based line number in the file (CSV) or row number of the table (parquet).
    :param raw_time: the time column exactly as read, same index (for error messages).
    :param columns: source column name of each output column.
    """

    file: Path
    fmt: str
    frame: pd.DataFrame
    raw_time: pd.Series
    columns: dict[str, str]


@dataclass
class BarFile:
    """A validated bar file.

    :param file: the file.
    :param fmt: the detected layout.
    :param frame: bars indexed by UTC open time, oldest first.
    :param dedup: what de-duplication did, when a policy was applied and needed.
    """

    file: Path
    fmt: str
    frame: pd.DataFrame
    dedup: DedupReport | None = None


def read_bars(path: str | Path, dedup: str | None = None) -> BarFile:
    """Read, validate and sort one OHLCV file.

    :param path: a ``.csv`` or ``.parquet`` file of any supported layout.
    :param dedup: ``None`` (duplicated timestamps are an error), ``"keep_last"`` or
        ``"keep_first"``; see :func:`~cryptorl_core.data.validation.resolve_duplicates`.
    :return: the validated file.
    :raises DataValidationError: naming the file, column and row of the first problem.
    :raises UnknownFormatError: when the layout is not recognised.
    """
    raw = read_raw(path)
    validate_bars(raw.frame, raw.raw_time, raw.file)
    frame, report = resolve_duplicates(raw.frame, raw.file, dedup)
    frame = frame.sort_values(TIME_COL, kind="stable").set_index(TIME_COL)
    frame.index = pd.DatetimeIndex(frame.index, name=TIME_COL)
    return BarFile(file=raw.file, fmt=raw.fmt, frame=frame[list(OHLCV)], dedup=report)


def read_ohlcv(path: str | Path, dedup: str | None = None) -> pd.DataFrame:
    """Shortcut for ``read_bars(path, dedup).frame``."""
    return read_bars(path, dedup).frame


def read_raw(path: str | Path) -> RawBars:
    """Detect the layout of a file and read its rows unvalidated, in file order.

    :param path: a ``.csv`` or ``.parquet`` file.
    :return: the rows with parsed timestamps and numbers.
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"market data file not found: {file}")
    suffix = file.suffix.lower()
    if suffix == ".csv":
        return _read_csv(file)
    if suffix == ".parquet":
        return _read_parquet(file)
    raise UnknownFormatError(
        f"unsupported extension '{file.suffix}' (expected .csv or .parquet)", file=file
    )


def normalise_name(name: object) -> str:
    """Column name in comparable form: ``"Unix Timestamp"`` -> ``"unix_timestamp"``."""
    return re.sub(r"[^0-9a-z]+", "_", str(name).strip().lower()).strip("_")


def parse_timestamps(values: pd.Series) -> pd.Series:
    """Parse a time column row by row into UTC timestamps.

    Numbers are epochs whose unit is chosen per row by magnitude (seconds below
    1e11, milliseconds below 1e14, microseconds below 1e17, else nanoseconds); text is
    tried against :data:`TEXT_TIME_FORMATS` in order; naive values are taken as UTC.

    :param values: the raw column.
    :return: ``datetime64[us, UTC]`` values, same index, ``NaT`` where unparsable or
        outside [:data:`PLAUSIBLE_START`, :data:`PLAUSIBLE_END`).
    """
    if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(values):
        parsed = pd.to_datetime(values, utc=True)
    else:
        numbers = pd.to_numeric(values, errors="coerce")
        parsed = pd.Series(pd.NaT, index=values.index, dtype=f"datetime64[{TIME_UNIT}, UTC]")
        is_number = numbers.notna().to_numpy()
        if is_number.any():
            parsed[is_number] = _epoch_to_utc(numbers.to_numpy(dtype="float64")[is_number])
        todo = ~is_number & values.notna().to_numpy()
        if todo.any():
            text = values[todo].astype(str).str.strip()
            parsed[todo] = _parse_text(text)
    parsed = parsed.dt.as_unit(TIME_UNIT)
    implausible = (parsed < PLAUSIBLE_START) | (parsed >= PLAUSIBLE_END)
    return parsed.mask(implausible)


def _epoch_to_utc(numbers: np.ndarray) -> pd.DatetimeIndex:
    """Epoch numbers of mixed units to UTC, the unit chosen per value by magnitude."""
    magnitude = np.abs(numbers)
    scale = np.select(
        [magnitude < EPOCH_SECONDS_MAX, magnitude < EPOCH_MILLIS_MAX, magnitude < EPOCH_MICROS_MAX],
        [MICROS_PER_UNIT["s"], MICROS_PER_UNIT["ms"], MICROS_PER_UNIT["us"]],
        MICROS_PER_UNIT["ns"],
    )
    micros = np.round(numbers * scale).astype("int64")
    return pd.to_datetime(micros, unit="us", utc=True)


def _parse_text(text: pd.Series) -> pd.Series:
    """Parse text timestamps, trying each known layout on the rows still unparsed."""
    out = pd.Series(pd.NaT, index=text.index, dtype=f"datetime64[{TIME_UNIT}, UTC]")
    for fmt in TEXT_TIME_FORMATS:
        todo = out.isna()
        if not todo.any():
            break
        out[todo] = pd.to_datetime(text[todo], format=fmt, utc=True, errors="coerce").dt.as_unit(
            TIME_UNIT
        )
    return out


# --------------------------------------------------------------------------- CSV


def _read_csv(file: Path) -> RawBars:
    n_banner, first_fields = _sniff_csv(file)
    has_header = not _is_number(first_fields[0])
    try:
        body = pd.read_csv(
            file,
            skiprows=n_banner,
            header=0 if has_header else None,
            skip_blank_lines=False,  # keeps row i at a known line number
            low_memory=False,
        )
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise UnknownFormatError(f"not a well-formed CSV ({exc})", file=file) from exc
    # Line number of each data row: banner lines, then the header, then the data.
    first_data_line = n_banner + (2 if has_header else 1)
    body.index = pd.RangeIndex(first_data_line, first_data_line + len(body), name="line")
    body = body.dropna(how="all")  # blank lines
    if has_header:
        fmt = FORMAT_CDD if n_banner else FORMAT_GENERIC
        columns = _resolve_columns(list(body.columns), file, header_line=n_banner + 1)
    else:
        if len(body.columns) < len(KLINE_COLUMNS):
            raise UnknownFormatError(
                f"header-less file with {len(body.columns)} columns; a header-less file must "
                f"have the Binance kline layout (at least {len(KLINE_COLUMNS)} columns: "
                f"{', '.join(KLINE_COLUMNS)}, ...)",
                file=file,
            )
        fmt = FORMAT_KLINE
        columns = {name: body.columns[i] for i, name in enumerate(KLINE_COLUMNS)}
    return _to_raw(body, columns, file, fmt)


def _sniff_csv(file: Path) -> tuple[int, list[str]]:
    """Count banner lines and return the fields of the first header or data line."""
    with file.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
        reader = csv.reader(handle)
        for n_banner, fields in enumerate(reader):
            if n_banner > MAX_BANNER_LINES:
                break
            if len(fields) >= MIN_FIELDS:
                return n_banner, fields
    raise UnknownFormatError(
        f"no header or data line with at least {MIN_FIELDS} comma-separated fields in the "
        f"first {MAX_BANNER_LINES + 1} lines (expected an OHLCV CSV)",
        file=file,
    )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# ----------------------------------------------------------------------- parquet


def read_parquet_table(file: Path) -> pd.DataFrame:
    """A parquet file's table indexed by 1-based row, a time index turned back into a column.

    :raises UnknownFormatError: the file is not readable parquet.
    """
    try:
        table = pd.read_parquet(file)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise UnknownFormatError(f"unreadable parquet file ({exc})", file=file) from exc
    if not isinstance(table.index, pd.RangeIndex):
        table = table.reset_index()  # the time column was stored as the index
    table.index = pd.RangeIndex(1, len(table) + 1, name="row")
    return table


def _read_parquet(file: Path) -> RawBars:
    table = read_parquet_table(file)
    columns = _resolve_columns(list(table.columns), file, header_line=None)
    return _to_raw(table, columns, file, FORMAT_PARQUET)


# ------------------------------------------------------------------------ common


def _resolve_columns(names: list, file: Path, header_line: int | None) -> dict[str, object]:
    """Map each output column to a source column by normalised name."""
    by_norm: dict[str, object] = {}
    for name in names:
        by_norm.setdefault(normalise_name(name), name)
    columns: dict[str, object] = {}
    time_name = next((n for n in TIME_COLUMN_NAMES if n in by_norm), None)
    if time_name is not None:
        columns[TIME_COL] = by_norm[time_name]
    for field in ("open", "high", "low", "close"):
        if field in by_norm:
            columns[field] = by_norm[field]
    volume = _volume_column(by_norm)
    if volume is not None:
        columns["volume"] = volume
    if len(columns) < 2:
        raise UnknownFormatError(
            f"no time or OHLCV columns recognised in columns {[str(n) for n in names]}", file=file
        )
    for field in KLINE_COLUMNS:
        if field not in columns:
            hint = f" (one of {list(TIME_COLUMN_NAMES)})" if field == TIME_COL else ""
            raise DataValidationError(
                f"missing column '{field}'{hint}; found {[str(n) for n in names]}",
                file=file,
                column=field,
                row=header_line,
            )
    return columns


def _volume_column(by_norm: dict[str, object]) -> object | None:
    """The base-asset volume column: ``volume``, else ``volume_<base>``, else any ``volume*``."""
    if "volume" in by_norm:
        return by_norm["volume"]
    candidates = [n for n in by_norm if n.startswith("volume")]
    base = [n for n in candidates if n.removeprefix("volume_") not in QUOTE_CURRENCIES]
    chosen = base or candidates
    return by_norm[chosen[0]] if chosen else None


def _to_raw(table: pd.DataFrame, columns: dict[str, object], file: Path, fmt: str) -> RawBars:
    raw_time = table[columns[TIME_COL]]
    frame = pd.DataFrame({TIME_COL: parse_timestamps(raw_time)}, index=table.index)
    for field in OHLCV:
        frame[field] = pd.to_numeric(table[columns[field]], errors="coerce").astype("float64")
    return RawBars(
        file=file,
        fmt=fmt,
        frame=frame,
        raw_time=raw_time,
        columns={k: str(v) for k, v in columns.items()},
    )
