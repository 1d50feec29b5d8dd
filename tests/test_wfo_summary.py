"""Walk-forward summary: stitched out-of-sample curve, aggregates, missing segments (issue 7)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_backtest_report import N_PURGE, N_TEST, N_TRAIN, alternating, random_walk_frame

from cryptorl_core.backtest.config import BacktestConfig
from cryptorl_core.backtest.metrics import returns_from_nav
from cryptorl_core.backtest.report import build_report
from cryptorl_core.backtest.significance import (
    deflated_sharpe_ratio,
    per_period_sharpe,
    probabilistic_sharpe_ratio,
)
from cryptorl_core.backtest.summary import (
    PLOT_FILE,
    load_segment_results,
    stitch_navs,
    summarize,
    summarize_folders,
)

KEYS = ("2030-Q1", "2030-Q2", "2030-Q3", "2030-Q4")
HOUR = pd.Timedelta(hours=1)


@pytest.fixture(scope="module")
def report_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Saved reports of four segments whose test windows tile time (each starts where the last ends)."""
    root = tmp_path_factory.mktemp("reports")
    base = pd.Timestamp("2030-01-01", tz="UTC") - (N_TRAIN + N_PURGE) * HOUR
    dirs = {}
    for k, key in enumerate(KEYS):
        frame = random_walk_frame(seed=20 + k, start=str(base + k * N_TEST * HOUR), drift=0.0002 * (k - 1))
        report = build_report(alternating if k % 2 else (lambda obs: 0.5), frame, key=key,
                              config=BacktestConfig.quick())
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
    summary = summarize_folders(KEYS, report_dirs)
    table, stats = summary.table, summary.stats
    assert list(table.index) == list(KEYS) and summary.missing == []
    results, _ = load_segment_results(KEYS, report_dirs.get)
    alphas = [r.agent_metrics["alpha_return_pct"] for r in results]
    assert stats["mean_alpha_return_pct"] == pytest.approx(np.mean(alphas))
    assert stats["median_alpha_return_pct"] == pytest.approx(np.median(alphas))
    beats = [r.agent_metrics["sharpe"] > r.agent_metrics["bh_sharpe"] for r in results]
    assert stats["share_beating_bh_sharpe"] == pytest.approx(np.mean(beats))
    assert list(table["beats_bh_sharpe"]) == beats

    # PSR / DSR of the stitched curve: its in-window hourly returns, N = segments present.
    returns = np.concatenate([returns_from_nav(r.strategies["nav_agent"]) for r in results])
    assert stats["n_returns"] == len(returns) == len(KEYS) * (N_TEST - 1)
    assert stats["psr"] == pytest.approx(probabilistic_sharpe_ratio(returns))
    seg_sr = [per_period_sharpe(r.agent_metrics["sharpe"], 8760) for r in results]
    assert stats["n_trials"] == len(KEYS) and stats["sr_variance"] == pytest.approx(np.var(seg_sr, ddof=1))
    assert stats["dsr"] == pytest.approx(deflated_sharpe_ratio(returns, len(KEYS), np.var(seg_sr, ddof=1)))
    assert stats["dsr"] <= stats["psr"]  # deflation only ever lowers the probability

    paths = summary.save(tmp_path / "wfo")
    assert paths["plot"].name == PLOT_FILE and paths["plot"].read_bytes()[:4] == b"\x89PNG"
    assert pd.read_csv(paths["table"], index_col=0).shape[0] == len(KEYS)


def test_summary_lists_missing_segments_and_uses_the_rest(report_dirs: dict[str, Path]) -> None:
    present = {KEYS[0]: report_dirs[KEYS[0]], KEYS[2]: report_dirs[KEYS[2]]}
    half_written = report_dirs[KEYS[3]].parent / "partial"
    half_written.mkdir()
    (half_written / "metrics.json").write_text("{}")  # no strategies file: not a report
    expected = [*KEYS, "2031-Q1"]
    locate = {**present, KEYS[3]: half_written}
    summary = summarize_folders(expected, locate)
    assert summary.missing == [KEYS[1], KEYS[3], "2031-Q1"]
    assert summary.present == [KEYS[0], KEYS[2]] and summary.stats["n_missing"] == 3
    assert summary.stats["n_segments"] == summary.stats["n_trials"] == 2
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
