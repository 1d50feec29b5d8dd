"""Series coverage: a series that ends early, starts late or has a long hole is never
silently stretched.

Alignment carries a macro series forward across every hour it did not print (and fills
short crypto outages with flat bars). That is right for a weekend, an overnight break or
a holiday, and wrong for a file that simply stops: an SPX file ending 15 months before
BTC would otherwise be carried flat for 15 months with ``SPX_is_open = 0``.

Reference span: the first to the last bar of BTC, the traded asset (it is never dropped).
Every included series is measured against it, between its consecutive *real* bars (for
a daily file, the hours its bars become visible, see :mod:`~cryptorl_core.data.daily`),
so closed hours, weekends and holidays count only as the time between two real bars:

- **late start**: the series' first bar comes more than the limit after BTC's first bar;
- **hole**: more than the limit of hours without a bar between two consecutive bars
  (only holes that reach into the reference span count);
- **early end**: the series' last bar comes more than the limit before BTC's last bar.

A gap's length is the number of hours without a bar: ``next - last - 1 h`` for a hole,
``first - BTC's first bar`` for a late start, ``BTC's last bar - last`` for an early end.
Limits (:class:`SeriesCoverageConfig`): 48 h for crypto (real exchange outages last up to
about a day and a half), 168 h (7 days) for macro series (a weekend plus a holiday is
under 4 days, even for daily bars).

What happens then is :attr:`SeriesCoverageConfig.on_short_series`:

- ``"truncate"`` (default): keep the longest stretch of time in which no included
  series has a gap over its limit. An early end stops the data at the series' last bar,
  a late start starts it at the series' first bar, and an inner hole splits the data in
  two: the longer side is kept (the later one on a tie), i.e. the data stops at the
  hole's last bar or starts again at its next bar. A note names each gap and the range kept.
- ``"drop"``: leave each offending symbol out, with a note. BTC cannot be dropped: its
  own holes are truncated as above (noted).
- ``"fail"``: raise :class:`~cryptorl_core.data.errors.SeriesCoverageError` naming the
  file, the symbol, the last bar and the gap of every offending series.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cryptorl_core.data.errors import SeriesCoverageError
from cryptorl_core.schema import CRYPTO_SYMBOLS

HOUR = pd.Timedelta(hours=1)
TRUNCATE, DROP, FAIL = "truncate", "drop", "fail"
COVERAGE_POLICIES = (TRUNCATE, DROP, FAIL)
LATE_START, HOLE, EARLY_END = "late_start", "hole", "early_end"
#: The traded asset: it defines the reference span and is never dropped.
REFERENCE_SYMBOL = "BTC"


@dataclass(frozen=True)
class SeriesCoverageConfig:
    """How long a series may go without a bar, and what to do with one that does.

    :param max_gap_crypto_hours: longest tolerated run of hours without a bar for a
        crypto symbol (BTC, ETH); longer runs are gaps.
    :param max_gap_macro_hours: the same for a macro symbol (SPX, NASDAQ, DXY), hourly or
        daily; closed hours, weekends and holidays are within it.
    :param on_short_series: ``"truncate"``, ``"drop"`` or ``"fail"`` (module docstring).
    """

    max_gap_crypto_hours: int = 48
    max_gap_macro_hours: int = 168
    on_short_series: str = TRUNCATE

    def __post_init__(self) -> None:
        if self.on_short_series not in COVERAGE_POLICIES:
            raise ValueError(
                f"on_short_series={self.on_short_series!r} must be one of {list(COVERAGE_POLICIES)}"
            )
        for name in ("max_gap_crypto_hours", "max_gap_macro_hours"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"{name}={value!r} must be a whole number of hours >= 1")

    def limit_hours(self, symbol: str) -> int:
        """The gap limit of ``symbol``, in hours."""
        return self.max_gap_crypto_hours if symbol in CRYPTO_SYMBOLS else self.max_gap_macro_hours

    def describe(self) -> str:
        return (
            f"on_short_series={self.on_short_series!r}, gap limits {self.max_gap_crypto_hours} h "
            f"crypto / {self.max_gap_macro_hours} h macro"
        )


@dataclass(frozen=True)
class CoverageIssue:
    """One gap over its limit.

    :param symbol: the symbol.
    :param kind: ``"late_start"``, ``"hole"`` or ``"early_end"``.
    :param file: the file the series came from.
    :param last_bar: the last bar before the gap (``None`` for a late start).
    :param next_bar: the first bar after the gap (``None`` for an early end).
    :param gap_hours: hours without a bar.
    :param limit_hours: the symbol's limit.
    :param reference: BTC's first bar (late start) or last bar (early end), else ``None``.
    :param daily: the series is daily; its bar times are the hours they become visible.
    """

    symbol: str
    kind: str
    file: str
    last_bar: pd.Timestamp | None
    next_bar: pd.Timestamp | None
    gap_hours: int
    limit_hours: int
    reference: pd.Timestamp | None = None
    daily: bool = False

    @property
    def data_after(self) -> pd.Timestamp:
        """Last hour data may reach before the gap (without stretching this series)."""
        return self.last_bar if self.last_bar is not None else self.reference - HOUR

    @property
    def data_from(self) -> pd.Timestamp:
        """First hour data may start from after the gap."""
        return self.next_bar if self.next_bar is not None else self.reference + HOUR

    def describe(self) -> str:
        """The gap in words: symbol, file, last bar (or the hole's ends) and length."""
        bar = "bar (visible from)" if self.daily else "bar"
        gap, limit = format_hours(self.gap_hours), f"limit {self.limit_hours} h"
        if self.kind == EARLY_END:
            what = (
                f"ends early: last {bar} {self.last_bar}, then no bar for {gap} up to BTC's "
                f"last bar {self.reference} ({limit})"
            )
        elif self.kind == LATE_START:
            what = (
                f"starts late: first {bar} {self.next_bar}, {gap} after BTC's first bar "
                f"{self.reference} ({limit})"
            )
        else:
            what = (
                f"has a hole: last {bar} {self.last_bar}, next {bar} {self.next_bar}, "
                f"no bar for {gap} ({limit})"
            )
        return f"{self.symbol} ({self.file}) {what}"


@dataclass
class CoverageResult:
    """Bars after the coverage policy was applied.

    :param crypto: crypto bars (truncated to the kept range, dropped symbols removed).
    :param macro: macro bars (cut at the kept range's end; earlier bars are kept so the
        first hour has a carried-forward value; dropped symbols removed).
    :param issues: every gap over its limit, found before the policy was applied.
    :param notes: what was found and done.
    :param dropped: symbols left out.
    :param kept: ``(start, end)`` of the truncated range, ``None`` when not truncated.
    """

    crypto: dict[str, pd.DataFrame]
    macro: dict[str, pd.DataFrame]
    issues: list[CoverageIssue] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    kept: tuple[pd.Timestamp, pd.Timestamp] | None = None


def format_hours(hours: int) -> str:
    """``"457 days 3 h (10971 h)"``, or ``"34 h"`` under a day."""
    if hours < 24:
        return f"{hours} h"
    days, rest = divmod(int(hours), 24)
    return f"{days} day{'s' if days != 1 else ''}{f' {rest} h' if rest else ''} ({hours} h)"


def find_coverage_issues(
    symbol: str,
    index: pd.DatetimeIndex,
    span: tuple[pd.Timestamp, pd.Timestamp],
    limit_hours: int,
    file: str = "",
    daily: bool = False,
) -> list[CoverageIssue]:
    """Gaps of one series over ``limit_hours`` inside the reference span.

    :param symbol: the symbol.
    :param index: its real bar times (open times, or visibility hours for daily bars),
        sorted and unique.
    :param span: ``(first, last)`` bar of the reference (BTC), inclusive.
    :param limit_hours: the longest tolerated run of hours without a bar.
    :param file: the source file, for messages.
    :param daily: the series is daily (wording only).
    :return: the late start, holes and early end, in time order.
    """
    start, end = span
    issue = {"symbol": symbol, "file": file, "limit_hours": limit_hours, "daily": daily}
    issues: list[CoverageIssue] = []
    first = index[0]
    if first > start:
        lead = _hours(first - start)
        if lead > limit_hours:
            issues.append(CoverageIssue(kind=LATE_START, last_bar=None, next_bar=first,
                                        gap_hours=lead, reference=start, **issue))
    # Real bars that matter: the last one at or before the span start (it is carried
    # forward into the span) through the last one at or before the span end.
    lo = max(int(index.searchsorted(start, side="right")) - 1, 0)
    hi = int(index.searchsorted(end, side="right"))
    bars = index[lo:hi]
    if len(bars) == 0:  # every bar after the span: the late start covers it
        return issues
    steps = np.diff(bars.as_unit("ns").asi8) // HOUR.value - 1
    for i in np.flatnonzero(steps > limit_hours):
        issues.append(CoverageIssue(kind=HOLE, last_bar=bars[i], next_bar=bars[i + 1],
                                    gap_hours=int(steps[i]), **issue))
    tail = _hours(end - bars[-1])
    if tail > limit_hours:
        issues.append(CoverageIssue(kind=EARLY_END, last_bar=bars[-1], next_bar=None,
                                    gap_hours=tail, reference=end, **issue))
    return issues


def apply_coverage(
    crypto: dict[str, pd.DataFrame],
    macro: dict[str, pd.DataFrame],
    config: SeriesCoverageConfig | None = None,
    files: dict[str, str] | None = None,
    daily: frozenset[str] | set[str] = frozenset(),
) -> CoverageResult:
    """Find every series' gaps over its limit and apply the configured policy.

    :param crypto: bars per crypto symbol, BTC included, indexed by sorted open time.
    :param macro: bars per macro symbol, indexed by sorted open (or visibility) time.
    :param config: limits and policy (default :class:`SeriesCoverageConfig`).
    :param files: source file per symbol, for messages.
    :param daily: symbols read from daily files.
    :return: the bars to align, the issues and notes.
    :raises SeriesCoverageError: policy ``"fail"`` and a gap over its limit, or
        ``"truncate"`` leaving no hour that every series covers.
    """
    config = config or SeriesCoverageConfig()
    files = files or {}
    if REFERENCE_SYMBOL not in crypto:
        raise ValueError(f"coverage needs {REFERENCE_SYMBOL}, the traded asset")
    ref = crypto[REFERENCE_SYMBOL].index
    span = (ref[0], ref[-1])
    issues: list[CoverageIssue] = []
    for symbol, bars in (*crypto.items(), *macro.items()):
        issues += find_coverage_issues(
            symbol, bars.index, span, config.limit_hours(symbol), files.get(symbol, symbol),
            symbol in daily,
        )
    result = CoverageResult(crypto=dict(crypto), macro=dict(macro), issues=issues)
    if not issues:
        return result
    policy = config.on_short_series
    if policy == FAIL:
        raise SeriesCoverageError(
            f"market data does not cover BTC's span {span[0]} to {span[1]} "
            f"({config.describe()}): " + "; ".join(i.describe() for i in issues)
            + ". Set on_short_series to 'truncate' or 'drop', or raise the gap limit.",
            issues=issues,
        )
    to_truncate = issues
    if policy == DROP:
        to_truncate = [i for i in issues if i.symbol == REFERENCE_SYMBOL]
        for issue in issues:
            if issue.symbol == REFERENCE_SYMBOL:
                continue
            result.notes.append(f"coverage: {issue.describe()}; dropped ({config.describe()})")
            if issue.symbol not in result.dropped:
                result.dropped.append(issue.symbol)
        for symbol in result.dropped:
            result.crypto.pop(symbol, None)
            result.macro.pop(symbol, None)
        for issue in to_truncate:
            result.notes.append(
                f"coverage: {issue.describe()}; BTC is the traded asset and cannot be "
                "dropped, truncated instead"
            )
    if not to_truncate:
        return result
    start, end = longest_covered_stretch(span, to_truncate)
    if start > end:
        raise SeriesCoverageError(
            f"no hour of BTC's span {span[0]} to {span[1]} is covered by every series "
            f"({config.describe()}): " + "; ".join(i.describe() for i in to_truncate)
            + ". Set on_short_series to 'drop' or raise the gap limit.",
            issues=to_truncate,
        )
    if policy == TRUNCATE:
        result.notes.extend(f"coverage: {i.describe()}" for i in to_truncate)
    result.notes.append(
        f"coverage: truncated to {start} .. {end}, the longest stretch every included series "
        f"covers ({config.describe()}); {_hours(start - span[0])} h cut at the start, "
        f"{_hours(span[1] - end)} h at the end"
    )
    result.kept = (start, end)
    result.crypto = {
        s: b.loc[(b.index >= start) & (b.index <= end)] for s, b in result.crypto.items()
    }
    result.macro = {s: b.loc[b.index <= end] for s, b in result.macro.items()}
    empty = [s for s, b in (*result.crypto.items(), *result.macro.items()) if b.empty]
    if empty:
        raise SeriesCoverageError(
            f"{empty} have no bar in the kept range {start} .. {end} ({config.describe()}); "
            "set on_short_series to 'drop' or raise the gap limit",
            issues=to_truncate,
        )
    return result


def longest_covered_stretch(
    span: tuple[pd.Timestamp, pd.Timestamp], issues: list[CoverageIssue]
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The longest ``(start, end)`` inside ``span`` that no issue's gap crosses.

    Each gap forbids the data from running from its ``data_after`` to its ``data_from``;
    the stretches between gaps are the candidates (the later one wins a tie).

    :return: the stretch; ``start > end`` when there is none.
    """
    cuts = sorted((i.data_after, i.data_from) for i in issues)
    candidates = []
    cursor = span[0]
    for before, after in cuts:
        if before >= cursor:
            candidates.append((cursor, min(before, span[1])))
        cursor = max(cursor, after)
    if cursor <= span[1]:
        candidates.append((cursor, span[1]))
    candidates = [c for c in candidates if c[0] <= c[1]]
    if not candidates:
        return span[1] + HOUR, span[1]
    return max(candidates, key=lambda c: (c[1] - c[0], c[0]))


def _hours(delta: pd.Timedelta) -> int:
    return int(delta / HOUR)
