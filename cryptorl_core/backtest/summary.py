"""Walk-forward summary: every segment's out-of-sample result, and the stitched test curve.

Input: the report folders written by :meth:`~cryptorl_core.backtest.report.BacktestReport.save`,
one per segment key, some possibly missing (not materialized yet). Output:

- one row per present segment (agent vs buy-and-hold return and Sharpe, alpha, drawdown,
  trades, collapse verdict), plus the list of missing keys;
- the stitched out-of-sample equity curve: the test windows tile time (segment k+1's test
  starts where k's ends), so chaining each window's NAV, rebased to the previous window's
  last value, gives one curve. Each window starts flat (its first row is the NAV before any
  measured return), so the curve is continuous at every boundary: no return is invented for
  the boundary bar and none is counted twice. A missing segment leaves a hole in time that
  the curve steps over flat;
- aggregate statistics: mean / median alpha across segments, the share of segments whose
  agent Sharpe beats buy-and-hold's, and the probabilistic and deflated Sharpe ratios of the
  stitched curve's hourly returns (:mod:`cryptorl_core.backtest.significance`).

Deflated Sharpe ratio, number of trials: the walk-forward trains one model per segment, and
the stitched curve is what remains after looking at all of them; without a record of every
configuration tried, the summary deflates by ``N`` = the number of segments present (one
trained model each), with ``V`` = the variance of their per-period test Sharpes. Pass
``n_trials`` explicitly when more configurations were tried (e.g. a hyper-parameter sweep).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryptorl_core.backtest.config import BacktestConfig
from cryptorl_core.backtest.metrics import returns_from_nav, sharpe_ratio
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

BUY_AND_HOLD = "buy_and_hold"
SUMMARY_FILE = "summary.json"
TABLE_FILE = "segments.csv"
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


def segment_table(results: Iterable[SegmentResult]) -> pd.DataFrame:
    """One row per segment: the agent's metrics against buy-and-hold, and the collapse flag.

    :param results: present segments.
    :return: index ``segment``; columns :data:`SEGMENT_COLUMNS`, ``beats_bh_sharpe``, ``collapsed``.
    """
    rows = {}
    for r in results:
        m = r.agent_metrics
        row = {name: m.get(key) for name, key in SEGMENT_COLUMNS}
        row["start"], row["end"] = r.summary.get("start"), r.summary.get("end")
        row["beats_bh_sharpe"] = _beats(m.get("sharpe"), m.get("bh_sharpe"))
        row["collapsed"] = bool(r.summary.get("collapsed", False))
        rows[r.key] = row
    columns = ["start", "end", *(n for n, _ in SEGMENT_COLUMNS), "beats_bh_sharpe", "collapsed"]
    table = pd.DataFrame.from_dict(rows, orient="index", columns=columns)
    table.index.name = "segment"
    return table


def _beats(sharpe: float | None, bh_sharpe: float | None) -> bool:
    # A missing (None / NaN) Sharpe never beats anything.
    if sharpe is None or bh_sharpe is None or not np.isfinite(sharpe) or not np.isfinite(bh_sharpe):
        return False
    return bool(sharpe > bh_sharpe)


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
    :param stitched: per bar: ``nav_agent``, ``nav_buy_and_hold``, ``segment``.
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
        """Stitched out-of-sample equity of the agent vs buy-and-hold (PNG bytes)."""
        navs = {AGENT: self.stitched[f"nav_{AGENT}"], BUY_AND_HOLD: self.stitched[f"nav_{BUY_AND_HOLD}"]}
        title = f"Stitched out-of-sample equity, {len(self.present)} segments"
        if self.missing:
            title += f" ({len(self.missing)} missing)"
        return equity_curve_png(navs, title=title, config=self.config)

    def save(self, directory: str | Path, png: bytes | None = None) -> dict[str, Path]:
        """Write ``summary.json``, ``segments.csv``, ``stitched.parquet`` and the plot.

        :param directory: target folder (created).
        :param png: the plot from :meth:`plot`, to avoid rendering twice.
        :return: role to path.
        """
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"summary": out / SUMMARY_FILE, "table": out / TABLE_FILE,
                 "stitched": out / STITCHED_FILE, "plot": out / PLOT_FILE}
        body = {"stats": self.stats, "present": self.present, "missing": self.missing}
        paths["summary"].write_text(json.dumps(jsonable(body), indent=2, allow_nan=False))
        self.table.to_csv(paths["table"])
        self.stitched.to_parquet(paths["stitched"])
        paths["plot"].write_bytes(png if png is not None else self.plot())
        return paths


def summarize(
    results: list[SegmentResult],
    missing: Iterable[str] = (),
    n_trials: int | None = None,
    config: BacktestConfig | None = None,
) -> WalkForwardSummary:
    """Aggregate the present segments (see the module docstring for the DSR's trials).

    ``stats`` holds: ``n_segments``, ``n_missing``, ``mean_alpha_return_pct``,
    ``median_alpha_return_pct``, ``mean_alpha_sharpe``, ``median_alpha_sharpe``,
    ``share_beating_bh_sharpe``, ``n_collapsed``, the stitched curve's ``stitched_return_pct``,
    ``stitched_bh_return_pct``, ``stitched_sharpe`` and ``stitched_bh_sharpe`` (annualised),
    and its significance: ``psr`` (P[true Sharpe > 0]), ``dsr``, ``sr_star`` (per period),
    ``n_trials``, ``sr_variance`` (per period, across segments), ``n_returns``.

    :param results: present segments, in time order.
    :param missing: keys without a report (listed, not used).
    :param n_trials: trials for the deflated Sharpe ratio; number of present segments if None.
    :param config: annualisation and plot settings.
    :return: the summary.
    """
    cfg = config or BacktestConfig()
    missing = list(missing)
    table = segment_table(results)
    agent, bh = stitch_navs(results, AGENT), stitch_navs(results, BUY_AND_HOLD)
    stitched = pd.DataFrame({f"nav_{AGENT}": agent["nav"], f"nav_{BUY_AND_HOLD}": bh["nav"],
                             "segment": agent["segment"]})
    agent_ret = agent["ret"].dropna().to_numpy()
    bh_ret = bh["ret"].dropna().to_numpy()
    seg_sr = np.array([per_period_sharpe(s, cfg.periods_per_year) for s in table["sharpe"].astype(float)])
    seg_sr = seg_sr[np.isfinite(seg_sr)]
    trials = len(results) if n_trials is None else int(n_trials)
    sr_var = float(np.var(seg_sr, ddof=1)) if len(seg_sr) > 1 else 0.0
    sig = sharpe_significance(agent_ret, max(trials, 1), sr_var) if len(agent_ret) > 1 else {}
    stats: dict[str, Any] = {
        "n_segments": len(results),
        "n_missing": len(missing),
        **_alpha_stats(table),
        "n_collapsed": int(table["collapsed"].sum()) if len(table) else 0,
        "stitched_return_pct": _total_pct(agent["nav"]),
        "stitched_bh_return_pct": _total_pct(bh["nav"]),
        "stitched_sharpe": sharpe_ratio(agent_ret, cfg.periods_per_year) if len(agent_ret) else float("nan"),
        "stitched_bh_sharpe": sharpe_ratio(bh_ret, cfg.periods_per_year) if len(bh_ret) else float("nan"),
        "psr": sig.get("psr", float("nan")),
        "dsr": sig.get("dsr", float("nan")),
        "sr_star": sig.get("sr_star", float("nan")),
        "n_trials": trials,
        "sr_variance": sr_var,
        "n_returns": len(agent_ret),
    }
    return WalkForwardSummary(table=table, stitched=stitched, stats=stats, missing=missing, config=cfg)


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
        "share_beating_bh_sharpe": float(table["beats_bh_sharpe"].mean()),
    }


def _total_pct(nav: pd.Series) -> float:
    return 100.0 * float(nav.iloc[-1] / nav.iloc[0] - 1.0) if len(nav) else float("nan")


def summarize_folders(
    keys: Iterable[str],
    locate: Callable[[str], str | Path | None] | Mapping[str, str | Path],
    n_trials: int | None = None,
    config: BacktestConfig | None = None,
) -> WalkForwardSummary:
    """:func:`load_segment_results` then :func:`summarize`.

    :param keys: every segment key (the expected set).
    :param locate: key to report folder, as a function or a mapping (absent keys: missing).
    :param n_trials: trials for the deflated Sharpe ratio.
    :param config: analytics configuration.
    :return: the summary.
    """
    find = locate.get if isinstance(locate, Mapping) else locate
    results, missing = load_segment_results(keys, find)
    return summarize(results, missing, n_trials, config)
