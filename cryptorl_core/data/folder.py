"""Load a folder of the user's own market files into a :class:`MarketData`.

Folder layout::

    <folder>/BTC_1h.csv        required (or BTC_1h.parquet)
    <folder>/ETH_1h.csv        optional crypto
    <folder>/SPX_1h.csv        optional macro, hourly (also NASDAQ_1h, DXY_1h)
    <folder>/daily/QQQ_1d.csv  optional macro, daily (QQQ -> NASDAQ, DXY -> DXY, ...)

or, instead of the per-symbol hourly files, seed 000's single combined file::

    <folder>/multi_asset_historical.csv   (or .parquet) timestamp, then BTC_open, BTC_high,
                                          BTC_low, BTC_close, BTC_volume, ETH_open, ...,
                                          SPX_close, ... (a macro symbol may lack volume)

File names are matched case-insensitively. Any layout of
:mod:`~cryptorl_core.data.readers` is accepted in each per-symbol file; the combined file
is split into per-symbol bars by :mod:`~cryptorl_core.data.combined` (a row where a
symbol's columns are empty means that symbol has no bar in that hour). Either way every
symbol's bars go through the same validation, gap report and alignment. A folder with
both a combined file and per-symbol hourly files is ambiguous (an error). A macro symbol
found hourly wins over a daily file of the same symbol. Missing optional symbols are left
out (their columns are absent) and listed in :attr:`MarketData.notes`.

A series that ends early, starts late or has a hole longer than its gap limit is never
silently stretched by the forward fill: :mod:`~cryptorl_core.data.coverage` finds it
(measured between its real bars, against BTC's first and last bar) and truncates the
data, drops the symbol or fails, as :class:`~cryptorl_core.data.coverage.SeriesCoverageConfig`
says (default: truncate to the longest stretch every series covers, with a note).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from cryptorl_core.data.alignment import align_market
from cryptorl_core.data.combined import find_combined_file, read_combined
from cryptorl_core.data.coverage import SeriesCoverageConfig, apply_coverage
from cryptorl_core.data.daily import find_daily_files, read_daily
from cryptorl_core.data.errors import MarketFolderError
from cryptorl_core.data.gaps import find_gaps
from cryptorl_core.data.market import GapReport, MarketData
from cryptorl_core.data.readers import read_bars
from cryptorl_core.schema import CRYPTO_SYMBOLS, MACRO_SYMBOLS

#: The traded symbol every folder must hold.
REQUIRED_SYMBOL = "BTC"
KNOWN_SYMBOLS = (*CRYPTO_SYMBOLS, *MACRO_SYMBOLS)
HOURLY_FILE_RE = re.compile(r"^(?P<symbol>[A-Za-z0-9]+)_1h\.(?P<ext>csv|parquet)$", re.IGNORECASE)


def load_market_folder(
    path: str | Path,
    symbols: Iterable[str] | None = None,
    dedup: str | None = None,
    coverage: SeriesCoverageConfig | None = None,
) -> MarketData:
    """Read, validate, gap-fill and align a folder of market files.

    :param path: the folder.
    :param symbols: symbols to load (default: every known symbol); must include BTC.
        A listed symbol whose file is absent is skipped with a note, not an error, so
        one configuration serves folders with and without macro data.
    :param dedup: duplicated-timestamp policy for every file: ``None`` (error, the
        default), ``"keep_last"`` or ``"keep_first"``
        (see :mod:`~cryptorl_core.data.validation`).
    :param coverage: gap limits and what to do with a series that ends early, starts
        late or has a longer hole (default :class:`SeriesCoverageConfig`: 48 h crypto,
        168 h macro, truncate; see :mod:`~cryptorl_core.data.coverage`).
    :return: the aligned market data; ``gaps`` holds the gap report of every hourly
        file, ``notes`` the skipped symbols, de-duplication and range decisions.
    :raises MarketFolderError: folder missing, BTC file missing, ambiguous files (two
        files for a symbol, or a combined file beside per-symbol hourly files).
    :raises DataValidationError: a file fails validation (file, column and row named).
    :raises SeriesCoverageError: a series' gap exceeds its limit and the policy is
        ``"fail"`` (symbol, file, last bar and gap named).
    """
    folder = Path(path)
    if not folder.is_dir():
        raise MarketFolderError(f"market data folder not found: {folder}")
    wanted = _wanted_symbols(symbols)
    hourly = find_hourly_files(folder)
    combined_file = find_combined_file(folder)
    if combined_file is not None and hourly:
        raise MarketFolderError(
            f"ambiguous market folder {folder}: it holds both the combined file "
            f"{combined_file.name} and per-symbol hourly files "
            f"{sorted(p.name for p in hourly.values())}; keep one layout"
        )
    combined = read_combined(combined_file, wanted, dedup) if combined_file is not None else None
    from_combined = combined.bars if combined is not None else {}
    all_daily = find_daily_files(folder)
    daily = {s: f for s, f in all_daily.items() if s not in hourly and s not in from_combined}
    if REQUIRED_SYMBOL not in hourly and REQUIRED_SYMBOL not in from_combined:
        if combined_file is not None:
            raise MarketFolderError(
                f"no {REQUIRED_SYMBOL} bars ({REQUIRED_SYMBOL}_open, ..., {REQUIRED_SYMBOL}_volume "
                f"columns) in {combined_file}"
            )
        raise MarketFolderError(
            f"no {REQUIRED_SYMBOL}_1h.csv or {REQUIRED_SYMBOL}_1h.parquet in {folder} "
            f"(found: {sorted(p.name for p in folder.iterdir())})"
        )
    notes = [
        f"{s}: hourly file used, daily/{all_daily[s].name} ignored"
        for s in wanted
        if (s in hourly or s in from_combined) and s in all_daily
    ]
    if combined is not None:
        notes.extend(combined.notes)
    gaps: dict[str, GapReport] = {}
    crypto, macro = {}, {}
    files: dict[str, str] = {}
    daily_symbols: set[str] = set()
    for symbol in wanted:
        if symbol in hourly or symbol in from_combined:
            bar_file = (
                from_combined[symbol]
                if symbol in from_combined
                else read_bars(hourly[symbol], dedup)
            )
            bars = bar_file.frame
            gaps[symbol] = find_gaps(bars.index, symbol)
            source = bar_file.file.name
        elif symbol in daily:
            bars, bar_file = read_daily(daily[symbol], dedup)
            source = f"{bar_file.file.parent.name}/{bar_file.file.name}"
            daily_symbols.add(symbol)
            notes.append(
                f"{symbol}: daily bars from {source}, each visible from the first hour at or "
                "after 16:00 America/New_York on its session date"
            )
        elif combined_file is not None:
            notes.append(f"{symbol}: no bars in {combined_file.name} and no daily file, left out")
            continue
        else:
            notes.append(f"{symbol}: no file found, left out")
            continue
        notes.append(
            f"{symbol}: {len(bars)} bars from {source} ({bar_file.fmt}), "
            f"{bars.index[0]} to {bars.index[-1]}"
        )
        if bar_file.dedup is not None:
            dedup_note = bar_file.dedup.note()
            notes.append(f"{symbol}: {dedup_note}" if symbol in from_combined else dedup_note)
        (crypto if symbol in CRYPTO_SYMBOLS else macro)[symbol] = bars
        files[symbol] = str(bar_file.file)
    covered = apply_coverage(crypto, macro, coverage, files, daily_symbols)
    notes.extend(covered.notes)
    gaps = {s: g for s, g in gaps.items() if s not in covered.dropped}
    frame, align_notes = align_market(covered.crypto, covered.macro)
    notes.extend(align_notes)
    return MarketData(frame=frame, source=str(folder), gaps=gaps, notes=notes)


def find_hourly_files(folder: str | Path) -> dict[str, Path]:
    """Hourly files ``<SYMBOL>_1h.csv|parquet`` of a folder, by known symbol.

    :param folder: the folder.
    :return: ``{symbol: file}``.
    :raises MarketFolderError: when a symbol has both a CSV and a parquet file.
    """
    found: dict[str, Path] = {}
    for file in sorted(Path(folder).iterdir()):
        match = HOURLY_FILE_RE.match(file.name)
        if match is None or not file.is_file():
            continue
        symbol = match["symbol"].upper()
        if symbol not in KNOWN_SYMBOLS:
            continue
        if symbol in found:
            raise MarketFolderError(f"two files for {symbol}: {found[symbol]} and {file}; keep one")
        found[symbol] = file
    return found


def _wanted_symbols(symbols: Iterable[str] | None) -> list[str]:
    if symbols is None:
        return list(KNOWN_SYMBOLS)
    wanted = [s.upper() for s in symbols]
    unknown = sorted(set(wanted) - set(KNOWN_SYMBOLS))
    if unknown:
        raise ValueError(f"unknown symbols {unknown}; known: {list(KNOWN_SYMBOLS)}")
    if REQUIRED_SYMBOL not in wanted:
        raise ValueError(f"symbols={wanted} must include {REQUIRED_SYMBOL}, the traded asset")
    return [s for s in KNOWN_SYMBOLS if s in wanted]
