"""Walk-forward summary: stitched out-of-sample curve, aggregates, missing segments."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers.backtest import (
    N_PURGE,
    N_TEST,
    N_TRAIN,
    alternating,
    hmm_context_frame,
    random_walk_frame,
)

from cryptorl_core.backtest.config import BacktestConfig
from cryptorl_core.backtest.metrics import returns_from_nav
from cryptorl_core.backtest.report import build_report
from cryptorl_core.backtest.significance import (
    deflated_sharpe_ratio,
    per_period_sharpe,
    probabilistic_sharpe_ratio,
)
from cryptorl_core.backtest.summary import (
    MARKDOWN_FILE,
    PLOT_FILE,
    SegmentResult,
    distinct_trials,
    load_segment_results,
    segments_markdown,
    stitch_navs,
    summarize,
    summarize_folders,
    summary_fingerprints,
)
from cryptorl_core.schema import HOURS_PER_YEAR

KEYS = ("2030-Q1", "2030-Q2", "2030-Q3", "2030-Q4")
HOUR = pd.Timedelta(hours=1)


#: Segments whose agent is the constant 0.5 policy (collapsed) and the alternating one (alive).
COLLAPSED, ALIVE = [KEYS[0], KEYS[2]], [KEYS[1], KEYS[3]]


@pytest.fixture(scope="module")
def report_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Saved reports of four segments whose test windows tile time (each starts where the last ends);
    segments 0 and 2 hold a constant (collapsed) agent, 1 and 3 an alternating one."""
    root = tmp_path_factory.mktemp("reports")
    base = pd.Timestamp("2030-01-01", tz="UTC") - (N_TRAIN + N_PURGE) * HOUR
    dirs = {}
    for k, key in enumerate(KEYS):
        frame = random_walk_frame(seed=20 + k, start=str(base + k * N_TEST * HOUR), drift=0.0002 * (k - 1))
        report = build_report(alternating if k % 2 else (lambda obs: 0.5), frame, key=key,
                              config=BacktestConfig.quick(), regime_context=hmm_context_frame(frame, seed=k))
        report.save(root / key, plots={})
        dirs[key] = root / key
    return dirs


def test_stitched_curve_is_continuous_and_chains_segment_returns(report_dirs: dict[str, Path]) -> None:
    results, missing = load_segment_results(KEYS, report_dirs.get)
    assert missing == [] and [r.key for r in results] == list(KEYS)
    stitched = stitch_navs(results)
    index = stitched.index
    # The test windows tile time: one contiguous hourly index, no bar twice.
    assert index.is_unique and ((index[1:] - index[:-1]) == HOUR).all()
    assert len(stitched) == len(KEYS) * N_TEST and stitched["nav"].iloc[0] == 1.0
    navs = [r.strategies["nav_agent"].to_numpy() for r in results]
    for k in range(1, len(KEYS)):
        first = stitched.index.get_loc(results[k].strategies.index[0])
        # Continuity: a window starts at the level where the previous one ended.
        assert stitched["nav"].iloc[first] == pytest.approx(stitched["nav"].iloc[first - 1], rel=1e-12)
        assert np.isnan(stitched["ret"].iloc[first])  # no return invented for the boundary bar
    # Inside a window the stitched curve moves exactly like the window's own NAV.
    seg2 = stitched[stitched["segment"] == KEYS[2]]["nav"].to_numpy()
    np.testing.assert_allclose(seg2 / seg2[0], navs[2] / navs[2][0], rtol=1e-12)
    assert stitched["nav"].iloc[-1] == pytest.approx(np.prod([n[-1] / n[0] for n in navs]), rel=1e-12)


def test_summary_aggregates_match_hand_computation(report_dirs: dict[str, Path], tmp_path: Path) -> None:
    summary = summarize_folders(KEYS, report_dirs, include_collapsed=True)
    table, stats = summary.table, summary.stats
    assert list(table.index) == list(KEYS) and summary.missing == []
    assert list(table["collapsed"]) == [True, False, True, False] and table["included"].all()
    results, _ = load_segment_results(KEYS, report_dirs.get)
    alphas = [r.agent_metrics["alpha_return_pct"] for r in results]
    assert stats["mean_alpha_return_pct"] == pytest.approx(np.mean(alphas))
    assert stats["median_alpha_return_pct"] == pytest.approx(np.median(alphas))
    beats = [r.agent_metrics["sharpe"] >= r.agent_metrics["bh_sharpe"] for r in results]
    assert stats["share_beating_bh_sharpe"] == pytest.approx(np.mean(beats))
    assert list(table["beats_bh_sharpe"]) == beats

    # PSR / DSR of the stitched curve: its in-window hourly returns. With no earlier trial on
    # these windows nothing was chosen on them: one trial, and the DSR is the PSR.
    returns = np.concatenate([returns_from_nav(r.strategies["nav_agent"]) for r in results])
    assert stats["n_returns"] == len(returns) == len(KEYS) * (N_TEST - 1)
    assert stats["psr"] == pytest.approx(probabilistic_sharpe_ratio(returns))
    assert stats["n_trials"] == 1 and stats["sr_variance"] == 0.0 and stats["trial_sharpes"] == []
    assert stats["dsr"] == pytest.approx(stats["psr"])

    # Every baseline's figures per segment, and their aggregates.
    rule = [r.summary["metrics"]["regime_rule"]["sharpe"] for r in results]
    np.testing.assert_allclose(table["regime_rule_sharpe"].astype(float), rule)
    np.testing.assert_allclose(table["vol_target_return_pct"].astype(float),
                               [r.summary["metrics"]["vol_target"]["total_return_pct"] for r in results])
    timing = [r.agent_metrics["timing_alpha_return_pct"] for r in results]
    np.testing.assert_allclose(table["timing_alpha_return_pct"].astype(float), timing)
    sharpes = [r.agent_metrics["sharpe"] for r in results]
    assert stats["median_sharpe"] == pytest.approx(np.median(sharpes))
    assert stats["median_regime_rule_sharpe"] == pytest.approx(np.median(rule))
    expected_ratio = np.median(sharpes) / np.median(rule) if np.median(rule) > 0 else np.nan
    np.testing.assert_allclose(stats["sharpe_ratio_to_regime_rule"], expected_ratio)
    assert stats["median_timing_alpha_return_pct"] == pytest.approx(np.median(timing))
    assert stats["min_trades"] == min(r.agent_metrics["n_trades"] for r in results) == 1
    assert stats["n_collapsed"] == 2 and stats["n_included"] == 4 and stats["include_collapsed"] is True
    assert np.isnan(stats["median_regime_oracle_sharpe"])  # random walks carry no true regime

    paths = summary.save(tmp_path / "wfo")
    assert paths["plot"].name == PLOT_FILE and paths["plot"].read_bytes()[:4] == b"\x89PNG"
    assert pd.read_csv(paths["table"], index_col=0).shape[0] == len(KEYS)
    assert paths["markdown"].name == MARKDOWN_FILE and paths["markdown"].read_text() == summary.markdown()


def test_collapsed_segments_are_marked_and_left_out_by_default(report_dirs: dict[str, Path]) -> None:
    summary = summarize_folders(KEYS, report_dirs)
    table, stats = summary.table, summary.stats
    assert summary.present == list(KEYS)  # still listed
    assert list(table.index[table["collapsed"]]) == COLLAPSED and list(table.index[table["included"]]) == ALIVE
    assert stats["n_segments"] == 4 and stats["n_included"] == 2 and stats["n_collapsed"] == 2
    assert stats["n_excluded_collapsed"] == 2 and stats["include_collapsed"] is False
    results, _ = load_segment_results(ALIVE, report_dirs.get)
    alive = [r.agent_metrics for r in results]
    assert stats["median_alpha_return_pct"] == pytest.approx(np.median([m["alpha_return_pct"] for m in alive]))
    assert stats["median_sharpe"] == pytest.approx(np.median([m["sharpe"] for m in alive]))
    assert stats["min_trades"] == min(m["n_trades"] for m in alive) > 100  # the constant agents' 1 is out
    assert stats["median_timing_alpha_return_pct"] == pytest.approx(
        np.median([m["timing_alpha_return_pct"] for m in alive]))
    # The stitched curve chains the alive segments only, agent and baselines alike.
    assert set(summary.stitched["segment"]) == set(ALIVE)
    assert {"nav_agent", "nav_buy_and_hold", "nav_vol_target", "nav_regime_rule"} <= set(summary.stitched.columns)
    returns = np.concatenate([returns_from_nav(r.strategies["nav_agent"]) for r in results])
    assert stats["n_returns"] == len(returns) and stats["psr"] == pytest.approx(probabilistic_sharpe_ratio(returns))
    rule_navs = [r.strategies["nav_regime_rule"].to_numpy() for r in results]
    assert stats["stitched_regime_rule_return_pct"] == pytest.approx(
        100 * (np.prod([n[-1] / n[0] for n in rule_navs]) - 1))
    assert stats["n_trials"] == 1  # the segments are periods of one strategy, not trials
    assert summary.plot()[:4] == b"\x89PNG"


def test_segments_markdown_is_the_table_to_paste(report_dirs: dict[str, Path]) -> None:
    summary = summarize_folders(KEYS, report_dirs)
    md = segments_markdown(summary.table)
    lines = md.splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header[:6] == ["segment", "market", "agent %", "B&H %", "alpha pp", "agent Sharpe"]
    assert {"regime_rule Sharpe", "vol_target Sharpe", "timing alpha pp", "trades", "collapsed"} <= set(header)
    assert "oracle Sharpe" not in header  # empty in every row (no true_regime): left out
    assert len(lines) == 2 + len(KEYS)
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")] for line in lines[2:]}
    for key in KEYS:
        cells = rows[key]
        assert cells[header.index("collapsed")] == ("yes" if key in COLLAPSED else "")
        sharpe = summary.table.loc[key, "regime_rule_sharpe"]
        assert cells[header.index("regime_rule Sharpe")] == f"{sharpe:,.3f}"
    text = summary.markdown()
    assert md in text and "2 collapsed (left out)" in text and "median agent Sharpe" in text


def test_summary_lists_missing_segments_and_uses_the_rest(report_dirs: dict[str, Path]) -> None:
    present = {KEYS[0]: report_dirs[KEYS[0]], KEYS[2]: report_dirs[KEYS[2]]}
    half_written = report_dirs[KEYS[3]].parent / "partial"
    half_written.mkdir()
    (half_written / "metrics.json").write_text("{}")  # no strategies file: not a report
    expected = [*KEYS, "2031-Q1"]
    locate = {**present, KEYS[3]: half_written}
    summary = summarize_folders(expected, locate, include_collapsed=True)  # both present ones collapsed
    assert summary.missing == [KEYS[1], KEYS[3], "2031-Q1"]
    assert summary.present == [KEYS[0], KEYS[2]] and summary.stats["n_missing"] == 3
    assert summary.stats["n_segments"] == 2 and summary.stats["n_trials"] == 1
    stitched = summary.stitched
    assert set(stitched["segment"]) == {KEYS[0], KEYS[2]}
    # A hole in time (the missing quarter) is stepped over flat: no return across it.
    gap = stitched.index.get_loc(stitched.index[stitched["segment"] == KEYS[2]][0])
    assert stitched.index[gap] - stitched.index[gap - 1] == (N_TEST + 1) * HOUR
    assert stitched["nav_agent"].iloc[gap] == pytest.approx(stitched["nav_agent"].iloc[gap - 1])
    assert summary.plot()[:4] == b"\x89PNG"


def test_summary_without_segments_is_empty_not_an_error() -> None:
    summary = summarize([], missing=list(KEYS))
    assert summary.table.empty and summary.missing == list(KEYS)
    assert np.isnan(summary.stats["psr"]) and summary.stats["n_segments"] == 0
    assert np.isnan(summary.stats["mean_alpha_return_pct"]) and summary.stitched.empty
    assert summary.stats["min_trades"] is None and np.isnan(summary.stats["median_sharpe"])


def test_dsr_deflates_by_the_earlier_trials_on_the_same_windows(report_dirs: dict[str, Path]) -> None:
    """N = this configuration plus the earlier ones read on these test windows; V = the variance
    of all N stitched per-period Sharpes."""
    results, _ = load_segment_results(KEYS, report_dirs.get)
    alone = summarize(results, include_collapsed=True).stats
    earlier = [1.0, -0.5]
    stats = summarize(results, trial_sharpes=earlier, include_collapsed=True).stats
    returns = np.concatenate([returns_from_nav(r.strategies["nav_agent"]) for r in results])
    per_period = [per_period_sharpe(s, HOURS_PER_YEAR) for s in (stats["stitched_sharpe"], *earlier)]
    assert stats["n_trials"] == 3 and stats["trial_sharpes"] == earlier
    assert stats["sr_variance"] == pytest.approx(np.var(per_period, ddof=1))
    assert stats["dsr"] == pytest.approx(deflated_sharpe_ratio(returns, 3, np.var(per_period, ddof=1)))
    assert stats["dsr"] < stats["psr"] == pytest.approx(alone["psr"])
    # Everything else is the same summary.
    assert stats["median_alpha_return_pct"] == alone["median_alpha_return_pct"]


def _with_agent_return(result: SegmentResult, pct: float) -> SegmentResult:
    metrics = {**result.summary["metrics"], "agent": {**result.agent_metrics, "total_return_pct": pct}}
    return SegmentResult(result.key, {**result.summary, "metrics": metrics}, result.strategies)


def test_fingerprints_tell_windows_from_results(report_dirs: dict[str, Path]) -> None:
    results, _ = load_segment_results(KEYS, report_dirs.get)
    base = summarize(results, include_collapsed=True).stats
    other_agent = summarize([_with_agent_return(results[0], 12.5), *results[1:]], include_collapsed=True).stats
    fewer_windows = summarize(results[1:], include_collapsed=True).stats
    assert other_agent["windows_fingerprint"] == base["windows_fingerprint"]
    assert other_agent["results_fingerprint"] != base["results_fingerprint"]
    assert fewer_windows["windows_fingerprint"] != base["windows_fingerprint"]
    # The same reports summarized again are the same result.
    assert summarize(results, include_collapsed=True).stats["results_fingerprint"] == base["results_fingerprint"]
    # The fingerprints alone, read before summarizing (the DSR's trials need them first).
    for subset in (results, results[1:]):
        for include in (True, False):
            stats = summarize(subset, include_collapsed=include).stats
            assert summary_fingerprints(subset, include) == {
                k: stats[k] for k in ("windows_fingerprint", "results_fingerprint")}


def test_distinct_trials_counts_each_earlier_result_once() -> None:
    history = [
        {"windows_fingerprint": "w", "results_fingerprint": "r2", "stitched_sharpe": 2.0},
        {"windows_fingerprint": "w", "results_fingerprint": "r2", "stitched_sharpe": 2.0},  # materialized again
        {"windows_fingerprint": "w", "results_fingerprint": "now", "stitched_sharpe": 3.0},  # this result itself
        {"windows_fingerprint": "other", "results_fingerprint": "r3", "stitched_sharpe": 9.0},  # other windows
        {"stitched_sharpe": 5.0},  # from before fingerprints
        {"windows_fingerprint": "w", "results_fingerprint": "r1", "stitched_sharpe": -1.0},
    ]
    assert distinct_trials(history, "w", "now") == [2.0, -1.0]
    assert distinct_trials([], "w", "now") == []
