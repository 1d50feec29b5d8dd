"""The foundation in Dagster: definitions load, segments are partitions, raw data and
features materialize with green checks, a planted leak turns a check red, and a failed
run leaves the earlier materialization intact."""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from cryptorl_core.features import technical
from cryptorl_dagster.assets.features import (
    features,
    features_fit_on_train_only,
    features_no_lookahead,
    features_split_windows,
)
from cryptorl_dagster.assets.market import raw_market_data
from cryptorl_dagster.definitions import defs
from cryptorl_dagster.partitions import segment_partitions, segments

FOUNDATION = [raw_market_data, features, features_no_lookahead, features_split_windows, features_fit_on_train_only]
REPO = Path(__file__).resolve().parents[1]


def _materialize(resources, key, **kw):
    return dg.materialize(FOUNDATION, partition_key=key, resources=resources,
                          instance=dg.DagsterInstance.ephemeral(), **kw)


def test_defs_can_load():
    """The code location loads: every stage, check, job and resource resolves."""
    dg.Definitions.validate_loadable(defs)
    repo = defs.get_repository_def()
    keys = {k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()}
    assert keys >= {"raw_market_data", "features", "hmm_model", "mae_encoder", "tqc_policy", "backtest_report",
                    "wfo_summary"}
    checks = {c.name for c in repo.asset_graph.asset_check_keys}
    assert {"features_no_lookahead", "backtest_policy_not_collapsed"} <= checks
    assert {"profile", "artifacts"} <= set(repo.get_top_level_resources())


def test_definitions_list_every_segment():
    repo = defs.get_repository_def()
    keys = {k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()}
    assert {"raw_market_data", "features"} <= keys
    assert segment_partitions.get_partition_keys() == [s.key for s in segments()]
    assert segment_partitions.get_partition_keys()[-1] == "2025-Q4"


def test_foundation_materializes_with_green_checks(dagster_resources, latest_key, tmp_path):
    result = _materialize(dagster_resources, latest_key)
    assert result.success
    evals = result.get_asset_check_evaluations()
    assert {e.check_name for e in evals} == {"features_no_lookahead", "features_split_windows", "features_fit_on_train_only"}
    assert all(e.passed for e in evals)
    assert (tmp_path / "frames" / "features" / f"{latest_key}.parquet").exists()
    meta = result.asset_materializations_for_node("features")[0].metadata
    assert meta["n_features"].value >= 50
    assert "BTC" in meta["ffd_d"].value
    raw_meta = result.asset_materializations_for_node("raw_market_data")[0].metadata
    assert raw_meta["symbols"].value == "BTC, ETH, SPX, NASDAQ, DXY"


def test_planted_leak_fails_the_blocking_check(dagster_resources, latest_key, monkeypatch):
    honest = technical.macro_features

    def leaky(frame, cfg):
        out = honest(frame, cfg)
        out["SPX_next_return"] = frame["BTC_close"].pct_change().shift(-1)  # tomorrow's news
        return out

    monkeypatch.setattr(technical, "macro_features", leaky)
    result = _materialize(dagster_resources, latest_key, raise_on_error=False)
    verdicts = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not verdicts["features_no_lookahead"].passed
    assert "SPX_next_return" in verdicts["features_no_lookahead"].metadata["biased_columns"].value
    assert not result.success  # blocking: the run fails


def test_failed_run_keeps_earlier_materialization(dagster_resources, latest_key, tmp_path, monkeypatch):
    assert _materialize(dagster_resources, latest_key).success
    path = tmp_path / "frames" / "features" / f"{latest_key}.parquet"
    before = pd.read_parquet(path)

    def broken(*args, **kwargs):
        raise RuntimeError("feature computation crashed")

    monkeypatch.setattr("cryptorl_dagster.assets.features.build_segment_frame", broken)
    result = _materialize(dagster_resources, latest_key, raise_on_error=False)
    assert not result.success
    pd.testing.assert_frame_equal(pd.read_parquet(path), before)


def test_unknown_partition_is_a_clear_error(dagster_resources):
    with pytest.raises(Exception, match="2031-Q1"):
        _materialize(dagster_resources, "2031-Q1")


def test_cli_materialize_command(tmp_path, latest_key):
    """The documented command: dagster asset materialize -m cryptorl_dagster ..."""
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "CRYPTORL_STORAGE": str(tmp_path / "storage")}
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    cmd = [str(Path(sys.executable).parent / "dagster"), "asset", "materialize", "-m", "cryptorl_dagster",
           "--select", "raw_market_data,features", "--partition", latest_key]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "storage" / "frames" / "features" / f"{latest_key}.parquet").exists()
    assert "features_no_lookahead" in proc.stderr + proc.stdout
