"""Walk-forward summary: every segment's out-of-sample result, and the stitched test curve.

Input: the report folders written by :meth:`~cryptorl_core.backtest.report.BacktestReport.save`,
one per segment key, some possibly missing (not materialized yet). Output:

- one row per present segment (agent vs buy-and-hold return and Sharpe, alpha, drawdown,
  trades, the return and Sharpe of every other baseline, timing alpha against the
  exposure-matched line, collapse verdict), plus the list of missing keys; also rendered as a
  markdown table (``segments.md``);
- a segment whose agent is collapsed (the report's ``collapsed`` verdict) is marked and left out
  of the aggregates and of the stitched curve, unless ``include_collapsed`` is set: a dead
  policy is not a result;
- the stitched out-of-sample equity curve: the test windows tile time (segment k+1's test
  starts where k's ends), so chaining each window's NAV, rebased to the previous window's
  last value, gives one curve. Each window starts flat (its first row is the NAV before any
  measured return), so the curve is continuous at every boundary: no return is invented for
  the boundary bar and none is counted twice. A missing segment leaves a hole in time that
  the curve steps over flat;
- aggregate statistics over the included segments: mean / median alpha, the share of segments
  whose agent Sharpe is at least buy-and-hold's, the median agent Sharpe against the median
  ``regime_rule`` Sharpe, the median timing alpha, the fewest trades, and the probabilistic
  and deflated Sharpe ratios of the stitched curve's hourly returns
  (:mod:`cryptorl_core.backtest.significance`).

Deflated Sharpe ratio, number of trials: a trial is a configuration whose stitched test curve
was read on these test windows, since choosing among such curves is the selection the DSR
corrects for. The segments of one walk-forward are not trials: they are periods of one
strategy, and their stitched curve keeps all of them. :func:`summarize` deflates by ``N`` = 1 +
the earlier trials passed (``trial_sharpes``, the stitched Sharpes of the other configurations),
with ``V`` = the variance of all ``N`` per-period Sharpes; with no earlier trial the DSR is the
PSR (nothing was chosen on the test windows). :func:`windows_fingerprint` and
:func:`results_fingerprint` say which windows a summary read and what the agent scored on them,
so that a caller keeping a history (the ``wfo_summary`` asset reads its Dagster instance's) can
count each distinct result on the same windows once (:func:`distinct_trials`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryptorl_core.backtest.baselines import (
    BUY_AND_HOLD,
    REGIME_ORACLE,
    REGIME_RULE,
    REGIME_RULE_LONG_ONLY,
    VOL_TARGET,
)
from cryptorl_core.backtest.config import BacktestConfig
from cryptorl_core.backtest.exposure import EXPOSURE_MATCHED
from cryptorl_core.backtest.metrics import format_metric, returns_from_nav, sharpe_ratio
from cryptorl_core.backtest.plots import equity_curve_png
from cryptorl_core.backtest.report import (
    AGENT,
    METRICS_FILE,
    STRATEGIES_FILE,
    jsonable,
    read_report_summary,
    read_strategies,
)
from cryptorl_core.backtest.significance import per_period_sharpe, sharpe_significance
from cryptorl_core.fingerprint import stable_hash

SUMMARY_FILE = "summary.json"
TABLE_FILE = "segments.csv"
MARKDOWN_FILE = "segments.md"
STITCHED_FILE = "stitched.parquet"
PLOT_FILE = "stitched_equity.png"

#: Columns of the per-segment table, from the agent's metrics (display name, metrics key).
SEGMENT_COLUMNS = (
    ("market", "market_label"),
    ("return_pct", "total_return_pct"),
    ("bh_return_pct", "bh_return_pct"),
    ("alpha_return_pct", "alpha_return_pct"),
    ("sharpe", "sharpe"),
    ("bh_sharpe", "bh_sharpe"),
    ("alpha_sharpe", "alpha_sharpe"),
    ("max_drawdown_pct", "max_drawdown_pct"),
    ("n_trades", "n_trades"),
    ("fees_pct", "fees_pct"),
    ("buy_good_pct", "buy_good_pct"),
    ("sell_good_pct", "sell_good_pct"),
    ("mean_position", "mean_position"),
    ("timing_alpha_return_pct", "timing_alpha_return_pct"),
    ("timing_alpha_sharpe", "timing_alpha_sharpe"),
)

#: Strategies (besides the agent) whose return and Sharpe get per-segment columns
#: ``<name>_return_pct`` and ``<name>_sharpe`` (missing from a report: empty).
BASELINE_COLUMNS = (BUY_AND_HOLD, VOL_TARGET, REGIME_RULE, REGIME_RULE_LONG_ONLY, REGIME_ORACLE,
                    "sma_crossover", "momentum", EXPOSURE_MATCHED)

#: Strategies chained into the stitched curve besides the agent, when every included segment has them.
STITCHED_STRATEGIES = (BUY_AND_HOLD, VOL_TARGET, REGIME_RULE)

#: Columns of the markdown segment table (:func:`segments_markdown`): column, header, metric key
#: whose display decimals apply (None: shown as text).
MARKDOWN_COLUMNS = (
    ("market", "market", None),
    ("return_pct", "agent %", "total_return_pct"),
    ("bh_return_pct", "B&H %", "total_return_pct"),
    ("alpha_return_pct", "alpha pp", "total_return_pct"),
    ("sharpe", "agent Sharpe", "sharpe"),
    ("bh_sharpe", "B&H Sharpe", "sharpe"),
    (f"{VOL_TARGET}_return_pct", "vol_target %", "total_return_pct"),
    (f"{VOL_TARGET}_sharpe", "vol_target Sharpe", "sharpe"),
    (f"{REGIME_RULE}_return_pct", "regime_rule %", "total_return_pct"),
    (f"{REGIME_RULE}_sharpe", "regime_rule Sharpe", "sharpe"),
    (f"{REGIME_RULE_LONG_ONLY}_sharpe", "regime_rule long-only Sharpe", "sharpe"),
    (f"{REGIME_ORACLE}_sharpe", "oracle Sharpe", "sharpe"),
    ("sma_crossover_sharpe", "SMA Sharpe", "sharpe"),
    ("momentum_sharpe", "momentum Sharpe", "sharpe"),
    ("mean_position", "mean position", "mean_position"),
    ("timing_alpha_return_pct", "timing alpha pp", "total_return_pct"),
    ("n_trades", "trades", "n_trades"),
    ("collapsed", "collapsed", None),
)


@dataclass(frozen=True)
class SegmentResult:
    """One segment's saved backtest.

    :param key: segment key.
    :param summary: the report's ``metrics.json``.
    :param strategies: its ``strategies.parquet`` (``nav_<name>``, ``position_<name>``).
    """

    key: str
    summary: dict[str, Any]
    strategies: pd.DataFrame

    @property
    def agent_metrics(self) -> dict[str, Any]:
        return self.summary["metrics"][AGENT]


def has_report(directory: str | Path | None) -> bool:
    """Whether a folder holds a complete saved report."""
    if directory is None:
        return False
    d = Path(directory)
    return (d / METRICS_FILE).is_file() and (d / STRATEGIES_FILE).is_file()


def load_segment_results(
    keys: Iterable[str], locate: Callable[[str], str | Path | None]
) -> tuple[list[SegmentResult], list[str]]:
    """Read every segment's saved report that exists.

    :param keys: all segment keys, in time order.
    :param locate: key to its report folder (or None when unknown).
    :return: ``(results, missing)``: results in time order, missing keys in order.
    """
    results, missing = [], []
    for key in keys:
        folder = locate(key)
        if has_report(folder):
            results.append(SegmentResult(key, read_report_summary(folder), read_strategies(folder)))
        else:
            missing.append(key)
    results.sort(key=lambda r: r.strategies.index[0])
    return results, missing


def segment_table(results: Iterable[SegmentResult], include_collapsed: bool = False) -> pd.DataFrame:
    """One row per segment: the agent's metrics against every baseline, and the collapse flag.

    :param results: present segments.
    :param include_collapsed: mark collapsed segments as included in the aggregates too.
    :return: index ``segment``; columns ``start``, ``end``, :data:`SEGMENT_COLUMNS`,
        ``<name>_return_pct`` / ``<name>_sharpe`` of :data:`BASELINE_COLUMNS`,
        ``beats_bh_sharpe`` (agent Sharpe >= buy-and-hold's), ``collapsed`` and ``included``
        (counted in the aggregates and the stitched curve).
    """
    rows = {}
    for r in results:
        m = r.agent_metrics
        row = {name: m.get(key) for name, key in SEGMENT_COLUMNS}
        row["start"], row["end"] = r.summary.get("start"), r.summary.get("end")
        for name in BASELINE_COLUMNS:
            other = r.summary["metrics"].get(name, {})
            row[f"{name}_return_pct"], row[f"{name}_sharpe"] = other.get("total_return_pct"), other.get("sharpe")
        row["beats_bh_sharpe"] = _beats(m.get("sharpe"), m.get("bh_sharpe"))
        row["collapsed"] = bool(r.summary.get("collapsed", False))
        row["included"] = include_collapsed or not row["collapsed"]
        rows[r.key] = row
    columns = ["start", "end", *(n for n, _ in SEGMENT_COLUMNS),
               *(f"{n}_{k}" for n in BASELINE_COLUMNS for k in ("return_pct", "sharpe")),
               "beats_bh_sharpe", "collapsed", "included"]
    table = pd.DataFrame.from_dict(rows, orient="index", columns=columns)
    table.index.name = "segment"
    return table


def _beats(sharpe: float | None, bh_sharpe: float | None) -> bool:
    # At least as good counts; a missing (None / NaN) Sharpe never beats anything.
    if sharpe is None or bh_sharpe is None or not np.isfinite(sharpe) or not np.isfinite(bh_sharpe):
        return False
    return bool(sharpe >= bh_sharpe)


def segments_markdown(table: pd.DataFrame, columns: Iterable[tuple[str, str, str | None]] = MARKDOWN_COLUMNS) -> str:
    """The per-segment table as GitHub markdown (e.g. for ``docs/EXPERIMENTS.md``).

    A column that is empty in every row (``regime_oracle`` on real data, ``regime_rule``
    without an HMM context) is left out. Collapsed segments read ``yes`` in ``collapsed``.

    :param table: :func:`segment_table`.
    :param columns: ``(column, header, metric key for the decimals or None for text)``.
    :return: markdown text.
    """
    shown = [(c, h, k) for c, h, k in columns if c in table.columns and table[c].notna().any()]
    lines = ["| " + " | ".join(["segment", *(h for _, h, _ in shown)]) + " |", "|" + "---|" * (len(shown) + 1)]
    for key, row in table.iterrows():
        cells = [_markdown_cell(row[c], k) for c, _, k in shown]
        lines.append("| " + " | ".join([str(key), *cells]) + " |")
    return "\n".join(lines)


def _markdown_cell(value: Any, metric_key: str | None) -> str:
    if isinstance(value, bool | np.bool_):
        return "yes" if value else ""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "n/a"
    return str(value) if metric_key is None else format_metric(metric_key, float(value))


def stitch_navs(results: Iterable[SegmentResult], strategy: str = AGENT) -> pd.DataFrame:
    """Chain the test windows' NAVs of one strategy into one curve starting at 1.

    :param results: present segments, in time order.
    :param strategy: strategy whose ``nav_<strategy>`` column is chained.
    :return: frame indexed by bar time with ``nav`` (the stitched curve), ``segment`` and
        ``ret`` (hourly return inside a window; NaN on each window's first row, which has none).
    """
    parts, level = [], 1.0
    for r in results:
        nav = r.strategies[f"nav_{strategy}"].to_numpy(dtype=float)
        rel = nav / nav[0]
        ret = np.concatenate([[np.nan], returns_from_nav(nav)])
        parts.append(pd.DataFrame({"nav": level * rel, "segment": r.key, "ret": ret},
                                  index=r.strategies.index))
        level *= rel[-1]
    if not parts:
        return pd.DataFrame(columns=["nav", "segment", "ret"])
    return pd.concat(parts)


@dataclass
class WalkForwardSummary:
    """The walk-forward result over whatever segments exist.

    :param table: :func:`segment_table`.
    :param stitched: per bar of the included segments: ``nav_agent``, ``nav_<strategy>`` of
        :data:`STITCHED_STRATEGIES` present in all of them, ``segment``.
    :param stats: aggregate statistics (see :func:`summarize`).
    :param missing: keys of the segments without a saved report.
    :param config: analytics configuration (annualisation, plots).
    """

    table: pd.DataFrame
    stitched: pd.DataFrame
    stats: dict[str, Any]
    missing: list[str] = field(default_factory=list)
    config: BacktestConfig = field(default_factory=BacktestConfig)

    @property
    def present(self) -> list[str]:
        return [str(k) for k in self.table.index]

    def plot(self) -> bytes:
        """Stitched out-of-sample equity of the agent vs the stitched baselines (PNG bytes)."""
        navs = {c.removeprefix("nav_"): self.stitched[c] for c in self.stitched.columns
                if c.startswith("nav_") and len(self.stitched)}  # every segment left out: empty axes
        title = f"Stitched out-of-sample equity, {int(self.table['included'].sum()) if len(self.table) else 0} segments"
        notes = [f"{n} {what}" for n, what in ((self.stats.get("n_excluded_collapsed", 0), "collapsed left out"),
                                               (len(self.missing), "missing")) if n]
        if notes:
            title += f" ({', '.join(notes)})"
        return equity_curve_png(navs, title=title, config=self.config)

    def markdown(self) -> str:
        """``segments.md``: the per-segment table and the headline aggregates."""
        st = self.stats
        lines = [
            "# Walk-forward segments", "",
            segments_markdown(self.table), "",
            f"- segments: {st['n_segments']} present, {st['n_included']} in the aggregates, "
            f"{st['n_collapsed']} collapsed ({'included' if st['include_collapsed'] else 'left out'}), "
            f"{st['n_missing']} missing",
        ]
        lines += [f"- {label}: {_fmt(st.get(key))}" for key, label in HEADLINE_STATS]
        return "\n".join(lines) + "\n"

    def save(self, directory: str | Path, png: bytes | None = None) -> dict[str, Path]:
        """Write ``summary.json``, ``segments.csv``, ``segments.md``, ``stitched.parquet`` and the plot.

        :param directory: target folder (created).
        :param png: the plot from :meth:`plot`, to avoid rendering twice.
        :return: role to path.
        """
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"summary": out / SUMMARY_FILE, "table": out / TABLE_FILE, "markdown": out / MARKDOWN_FILE,
                 "stitched": out / STITCHED_FILE, "plot": out / PLOT_FILE}
        body = {"stats": self.stats, "present": self.present, "missing": self.missing}
        paths["summary"].write_text(json.dumps(jsonable(body), indent=2, allow_nan=False))
        self.table.to_csv(paths["table"])
        paths["markdown"].write_text(self.markdown())
        self.stitched.to_parquet(paths["stitched"])
        paths["plot"].write_bytes(png if png is not None else self.plot())
        return paths


#: Aggregates listed under the markdown table: stats key, label.
HEADLINE_STATS = (
    ("share_beating_bh_sharpe", "share of segments with agent Sharpe >= buy-and-hold's"),
    ("median_alpha_return_pct", "median alpha vs buy-and-hold (pp)"),
    ("mean_alpha_return_pct", "mean alpha vs buy-and-hold (pp)"),
    ("median_sharpe", "median agent Sharpe"),
    (f"median_{REGIME_RULE}_sharpe", "median regime_rule Sharpe"),
    ("sharpe_ratio_to_regime_rule", "median agent Sharpe / median regime_rule Sharpe"),
    ("median_timing_alpha_return_pct", "median timing alpha vs exposure_matched (pp)"),
    ("min_trades", "fewest trades in a segment"),
    ("psr", "PSR of the stitched curve"),
    ("dsr", "DSR of the stitched curve"),
    ("n_trials", "trials the DSR deflates by (stitched test curves read on these windows)"),
)


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def stitched_curves(results: list[SegmentResult]) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Stitch the agent and every :data:`STITCHED_STRATEGIES` line that all ``results`` carry.

    :param results: the included segments, in time order.
    :return: ``(stitched, curves)``: the per-bar frame of ``nav_<name>`` and ``segment``, and
        each strategy's :func:`stitch_navs` output (with its returns).
    """
    names = [AGENT, *(n for n in STITCHED_STRATEGIES if all(f"nav_{n}" in r.strategies for r in results))]
    curves = {name: stitch_navs(results, name) for name in names}
    stitched = pd.DataFrame({f"nav_{name}": c["nav"] for name, c in curves.items()})
    stitched["segment"] = curves[AGENT]["segment"]
    return stitched, curves


def summarize(
    results: list[SegmentResult],
    missing: Iterable[str] = (),
    trial_sharpes: Sequence[float] = (),
    config: BacktestConfig | None = None,
    include_collapsed: bool = False,
) -> WalkForwardSummary:
    """Aggregate the present segments (see the module docstring for the DSR's trials).

    :param results: loaded segment results, in time order.
    :param missing: expected segment keys without a report.
    :param trial_sharpes: annualised Sharpes of the stitched test curves of the other
        configurations read on these test windows (:func:`distinct_trials`); none: the DSR is the PSR.
    :param config: analytics configuration (annualisation).
    :param include_collapsed: count collapsed segments in the aggregates and the stitched curve.
    :return: the table, the stitched curve and these ``stats``: ``n_segments`` (present),
        ``n_included`` (in the aggregates), ``n_collapsed``, ``n_excluded_collapsed``,
        ``include_collapsed``, ``n_missing``, mean / median ``alpha_return_pct`` and
        ``alpha_sharpe``, ``share_beating_bh_sharpe``, ``median_sharpe`` and every baseline's
        median Sharpe, ``sharpe_ratio_to_regime_rule``, median / mean timing alpha, ``min_trades``,
        every stitched curve's return and Sharpe, ``psr`` (P[true Sharpe > 0]), ``dsr``,
        ``sr_star`` (per period), ``n_trials``, ``trial_sharpes``, ``sr_variance`` (per period,
        across the trials), ``n_returns``, ``windows_fingerprint`` and ``results_fingerprint``.
    """
    cfg = config or BacktestConfig()
    missing = list(missing)
    table = segment_table(results, include_collapsed)
    included = [r for r in results if bool(table.loc[r.key, "included"])]
    used = _included_rows(table)
    stitched, curves = stitched_curves(included)
    agent_ret = curves[AGENT]["ret"].dropna().to_numpy()
    stitched_stats = _stitched_stats(curves, cfg)
    trials = [stitched_stats["stitched_sharpe"], *(float(s) for s in trial_sharpes)]
    trial_sr = np.array([per_period_sharpe(s, cfg.periods_per_year) for s in trials])
    trial_sr = trial_sr[np.isfinite(trial_sr)]
    sr_var = float(np.var(trial_sr, ddof=1)) if len(trial_sr) > 1 else 0.0
    sig = sharpe_significance(agent_ret, len(trials), sr_var) if len(agent_ret) > 1 else {}
    n_collapsed = int(table["collapsed"].sum()) if len(table) else 0
    stats: dict[str, Any] = {
        "n_segments": len(results),
        "n_included": len(included),
        "n_collapsed": n_collapsed,
        "n_excluded_collapsed": len(results) - len(included),
        "include_collapsed": bool(include_collapsed),
        "n_missing": len(missing),
        **_alpha_stats(used),
        **_comparison_stats(used),
        **stitched_stats,
        "psr": sig.get("psr", float("nan")),
        "dsr": sig.get("dsr", float("nan")),
        "sr_star": sig.get("sr_star", float("nan")),
        "n_trials": len(trials),
        "trial_sharpes": trials[1:],
        "sr_variance": sr_var,
        "n_returns": len(agent_ret),
        **_fingerprints(used),
    }
    return WalkForwardSummary(table=table, stitched=stitched, stats=stats, missing=missing, config=cfg)


#: Decimals of the per-segment returns that identify windows and results: float noise below them
#: is not a new trial.
FINGERPRINT_DECIMALS = 6


def _fingerprint(table: pd.DataFrame, column: str) -> str:
    return stable_hash({str(key): round(float(value), FINGERPRINT_DECIMALS) for key, value in table[column].items()})


def windows_fingerprint(table: pd.DataFrame) -> str:
    """Which test windows a summary read: its segments and their buy-and-hold returns (the same
    market over the same windows gives the same fingerprint, another market or set another).

    :param table: the segments in the aggregates (:func:`segment_table`'s included rows).
    """
    return _fingerprint(table, "bh_return_pct")


def results_fingerprint(table: pd.DataFrame) -> str:
    """What the agent scored on those windows: its segments and the agent's returns.

    :param table: the segments in the aggregates (:func:`segment_table`'s included rows).
    """
    return _fingerprint(table, "return_pct")


def _included_rows(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["included"].astype(bool)]


def _fingerprints(used: pd.DataFrame) -> dict[str, str]:
    return {"windows_fingerprint": windows_fingerprint(used), "results_fingerprint": results_fingerprint(used)}


def summary_fingerprints(results: list[SegmentResult], include_collapsed: bool = False) -> dict[str, str]:
    """The ``windows_fingerprint`` and ``results_fingerprint`` that :func:`summarize` records
    for these results, without summarizing them: :func:`distinct_trials` needs them before the
    summary whose DSR its trials deflate.

    :param results: loaded segment results.
    :param include_collapsed: as for :func:`summarize`.
    """
    return _fingerprints(_included_rows(segment_table(results, include_collapsed)))


def distinct_trials(history: Iterable[Mapping[str, Any]], windows: str, results: str) -> list[float]:
    """The stitched Sharpes of the earlier trials on the same test windows: one per distinct
    result, leaving out this result itself (a summary materialized again is not a new trial).

    :param history: earlier summaries' ``windows_fingerprint``, ``results_fingerprint`` and
        ``stitched_sharpe`` (entries missing any are skipped: summaries from before fingerprints).
    :param windows: this summary's ``windows_fingerprint``.
    :param results: this summary's ``results_fingerprint``.
    :return: the earlier trials' annualised stitched Sharpes, first seen first.
    """
    seen, sharpes = {results}, []
    for entry in history:
        fingerprint, sharpe = entry.get("results_fingerprint"), entry.get("stitched_sharpe")
        if entry.get("windows_fingerprint") != windows or fingerprint in seen or sharpe is None:
            continue
        seen.add(fingerprint)
        sharpes.append(float(sharpe))
    return sharpes


def _median(column: pd.Series) -> float:
    values = pd.to_numeric(column, errors="coerce").astype(float)
    return float(values.median()) if values.notna().any() else float("nan")


def _alpha_stats(table: pd.DataFrame) -> dict[str, float]:
    nan = float("nan")
    if table.empty:
        return {"mean_alpha_return_pct": nan, "median_alpha_return_pct": nan, "mean_alpha_sharpe": nan,
                "median_alpha_sharpe": nan, "share_beating_bh_sharpe": nan}
    a_ret, a_sr = table["alpha_return_pct"].astype(float), table["alpha_sharpe"].astype(float)
    return {
        "mean_alpha_return_pct": float(a_ret.mean()),
        "median_alpha_return_pct": float(a_ret.median()),
        "mean_alpha_sharpe": float(a_sr.mean()),
        "median_alpha_sharpe": float(a_sr.median()),
        "share_beating_bh_sharpe": float(table["beats_bh_sharpe"].astype(float).mean()),
    }


def _comparison_stats(table: pd.DataFrame) -> dict[str, float]:
    """Median Sharpes of the agent and every baseline, the ratio to ``regime_rule``, timing alpha."""
    median_sharpe = _median(table["sharpe"])
    rule = _median(table[f"{REGIME_RULE}_sharpe"])
    timing = pd.to_numeric(table["timing_alpha_return_pct"], errors="coerce").astype(float)
    trades = pd.to_numeric(table["n_trades"], errors="coerce")
    return {
        "median_sharpe": median_sharpe,
        **{f"median_{name}_sharpe": _median(table[f"{name}_sharpe"]) for name in BASELINE_COLUMNS},
        "sharpe_ratio_to_regime_rule": median_sharpe / rule if rule > 0 else float("nan"),
        "median_timing_alpha_return_pct": float(timing.median()) if timing.notna().any() else float("nan"),
        "mean_timing_alpha_return_pct": float(timing.mean()) if timing.notna().any() else float("nan"),
        "median_timing_alpha_sharpe": _median(table["timing_alpha_sharpe"]),
        "min_trades": int(trades.min()) if trades.notna().any() else None,
    }


def _stitched_stats(curves: Mapping[str, pd.DataFrame], cfg: BacktestConfig) -> dict[str, float]:
    """Total return and annualised Sharpe of every stitched curve (buy-and-hold keeps its ``bh`` prefix)."""
    out: dict[str, float] = {}
    for name in (AGENT, BUY_AND_HOLD, *STITCHED_STRATEGIES):
        prefix = {AGENT: "stitched", BUY_AND_HOLD: "stitched_bh"}.get(name, f"stitched_{name}")
        if f"{prefix}_return_pct" in out:
            continue
        curve = curves.get(name)
        ret = curve["ret"].dropna().to_numpy() if curve is not None else np.array([])
        out[f"{prefix}_return_pct"] = _total_pct(curve["nav"]) if curve is not None else float("nan")
        out[f"{prefix}_sharpe"] = sharpe_ratio(ret, cfg.periods_per_year) if len(ret) else float("nan")
    return out


def _total_pct(nav: pd.Series) -> float:
    return 100.0 * float(nav.iloc[-1] / nav.iloc[0] - 1.0) if len(nav) else float("nan")


def summarize_folders(
    keys: Iterable[str],
    locate: Callable[[str], str | Path | None] | Mapping[str, str | Path],
    trial_sharpes: Sequence[float] = (),
    config: BacktestConfig | None = None,
    include_collapsed: bool = False,
) -> WalkForwardSummary:
    """:func:`load_segment_results` then :func:`summarize`.

    :param keys: every segment key (the expected set).
    :param locate: key to report folder, as a function or a mapping (absent keys: missing).
    :param trial_sharpes: the earlier trials' stitched Sharpes, for the deflated Sharpe ratio.
    :param config: analytics configuration.
    :param include_collapsed: count collapsed segments in the aggregates and the stitched curve.
    :return: the summary.
    """
    find = locate.get if isinstance(locate, Mapping) else locate
    results, missing = load_segment_results(keys, find)
    return summarize(results, missing, trial_sharpes, config, include_collapsed)
