"""Exceptions raised while reading market data files and folders.

Every problem inside a file is a :class:`DataValidationError` whose message names the
file, the column and the row, so a user can open the file and find the offending line.
"""

from __future__ import annotations

from pathlib import Path


class DataValidationError(ValueError):
    """A market data file holds data the loader refuses to use.

    :param message: what is wrong, in words (the file, column and row are prepended).
    :param file: the offending file.
    :param column: the offending column (``None`` when the problem is the whole file).
    :param row: where in the file: for CSV files the 1-based line number in the file
        (the header is line 1 when there is no banner), for parquet files the 1-based
        row number of the table; ``None`` when the problem is not tied to a row.
    :param count: how many rows have the same problem (the message reports the first).
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | Path,
        column: str | None = None,
        row: int | None = None,
        count: int = 1,
    ) -> None:
        self.file = str(file)
        self.column = column
        self.row = row
        self.count = count
        self.detail = message
        where = [f"file {self.file}"]
        if column is not None:
            where.append(f"column '{column}'")
        if row is not None:
            where.append(f"{row_label(file)} {row}")
        super().__init__(f"{', '.join(where)}: {message}")


class UnknownFormatError(DataValidationError):
    """A file whose layout the readers do not recognise (extension, header or shape)."""


class MarketFolderError(FileNotFoundError):
    """A market data folder is missing, or lacks a required or unambiguous file."""


def row_label(file: str | Path) -> str:
    """How rows of ``file`` are counted in messages: ``"line"`` (CSV) or ``"row"`` (parquet)."""
    return "row" if str(file).lower().endswith(".parquet") else "line"


class MarketAlignmentError(ValueError):
    """The symbols of a folder share no common hourly range."""


class SeriesCoverageError(MarketAlignmentError):
    """A series ends early, starts late or has a hole longer than its gap limit, and the
    coverage policy is ``"fail"`` (or truncation would leave no hour at all).

    The message names, for each offending series, the symbol, its file, the last bar
    before the gap and the gap's length (see :mod:`~cryptorl_core.data.coverage`).

    :param message: the message.
    :param issues: the :class:`~cryptorl_core.data.coverage.CoverageIssue` list.
    """

    def __init__(self, message: str, *, issues: list | tuple = ()) -> None:
        self.issues = list(issues)
        super().__init__(message)
