"""Dagster wiring of the backtest stage: ``backtest_report``, its warn-only collapse check and
``wfo_summary`` over whatever segments exist.

The upstream assets are replaced by stand-ins with the same keys and output types (a random-walk
segment frame, a hand-set regime model, a tiny encoder and tiny TQC policies), so the test runs
in seconds.
"""

from __future__ import annotations

import io
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import torch
from helpers.backtest import (
    policy_artifact,
    random_walk_frame,
    stand_in_regime,
    tiny_encoder_artifact,
    train_tiny_tqc,
    upstream_stand_ins,
)

from cryptorl_core.agent import load_policy
from cryptorl_core.agent.market_tensors import MarketTensors
from cryptorl_core.backtest.report import AGENT, METRICS_FILE, PLOT_FILES, BacktestRecord
from cryptorl_core.encoder.artifact import load_encoder
from cryptorl_core.env.config import PROFILE_ACTION_GAIN
from cryptorl_dagster.assets.backtest import (
    backtest_policy_not_collapsed,
    backtest_report,
    wfo_summary,
)
from cryptorl_dagster.cli import print_report
from cryptorl_dagster.partitions import segment_partitions

BASE64_PNG = "data:image/png;base64,"


#: The profiles' action gain maps an action a to the position clip(gain * a): the constant rigged
#: policy's pre-tanh mean that makes it hold 0.3.
RIGGED_MEAN = float(np.arctanh(0.3 / PROFILE_ACTION_GAIN))


def _rigged(path: Path, out: Path, frame: pd.DataFrame, hmm: pd.DataFrame, encoder: Path, varied: bool) -> Path:
    """A copy of a saved TQC with a rigged deterministic action.

    ``varied=False``: the action is the constant 0.3 / gain, a position of 0.3 (a collapsed policy). ``varied=True``:
    the mean action is a steep function of the state, centred on its median over the test rows,
    so it sits at +1 on half of the bars and -1 on the other half (it trades often).
    """
    model = load_policy(path, frame=frame, hmm_context=hmm, encoder=encoder)
    mu = model.actor.mu
    linear = mu[0] if isinstance(mu, torch.nn.Sequential) else mu  # gSDE: Linear then Hardtanh
    with torch.no_grad():
        if varied:
            rows = np.flatnonzero(frame["split"].to_numpy() == "test").astype(np.float32)
            obs = {"market": torch.as_tensor(rows).reshape(-1, 1),
                   "position": torch.zeros(len(rows), 1), "w_cost": torch.full((len(rows), 1), 0.5)}
            latent = model.actor.latent_pi(model.actor.extract_features(obs, model.actor.features_extractor))
            score = latent @ linear.weight[0]
            scale = 10.0 / float(score.std())
            linear.weight.mul_(scale)
            linear.bias.fill_(-scale * float(score.median()))
        else:
            linear.weight.zero_()
            linear.bias.fill_(RIGGED_MEAN)
    model.save(out)
    return out


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("upstream")
    frame = random_walk_frame(seed=7)
    regime = stand_in_regime()
    hmm = regime.context(frame)  # what backtest_report computes from the hmm_model input
    artifact = tiny_encoder_artifact(frame, root)
    encoder = Path(artifact.path)
    market = MarketTensors.build(frame, hmm, load_encoder(encoder), tokens=4, device="cpu")
    trained = train_tiny_tqc(frame, market, root / "tqc.zip", seed=0, steps=64)
    return {
        "frame": frame, "regime": regime, "hmm": hmm, "encoder": encoder, "encoder_artifact": artifact,
        "constant": _rigged(trained, root / "constant.zip", frame, hmm, encoder, varied=False),
        "varied": _rigged(trained, root / "varied.zip", frame, hmm, encoder, varied=True),
    }


def _materialize(upstream: dict, policy: str, key: str, resources: dict) -> dg.ExecuteInProcessResult:
    assets = [*upstream_stand_ins(upstream["frame"], upstream["regime"], upstream["encoder_artifact"],
                                  policy_artifact(upstream[policy])),
              backtest_report, backtest_policy_not_collapsed, wfo_summary]
    return dg.materialize(assets, partition_key=key, resources=resources, instance=dg.DagsterInstance.ephemeral(),
                          selection=[*(a.key for a in assets[:4]), backtest_report.key], raise_on_error=True)


def test_backtest_report_asset_and_warn_only_collapse_check(upstream: dict, dagster_resources: dict,
                                                            latest_key: str) -> None:
    result = _materialize(upstream, "constant", latest_key, dagster_resources)
    assert result.success
    record = result.output_for_node("backtest_report")
    assert isinstance(record, BacktestRecord) and record.key == latest_key
    # The HMM context feeds the regime rules; a random walk has no true_regime, so no oracle.
    assert list(record.metrics) == [AGENT, "buy_and_hold", "flat", "sma_crossover", "momentum", "vol_target",
                                    "regime_rule", "regime_rule_long_only", "exposure_matched"]
    assert record.collapsed and record.metrics[AGENT]["n_trades"] == 1  # flat -> 0.3 once, then held
    # A constant agent times nothing: it is its own exposure-matched line (to float32 precision).
    assert record.metrics[AGENT]["mean_position"] == pytest.approx(0.3)
    assert record.metrics[AGENT]["timing_alpha_return_pct"] == pytest.approx(0.0, abs=1e-4)

    # The same run (same lag and costs) as the library gives for the same policy.
    folder = Path(record.directory)
    assert folder == Path(dagster_resources["artifacts"].path("backtest_report", latest_key))
    for name in (METRICS_FILE, "steps.parquet", "strategies.parquet", *PLOT_FILES.values()):
        assert (folder / name).is_file()
    model = load_policy(upstream["constant"], frame=upstream["frame"], hmm_context=upstream["hmm"],
                        encoder=upstream["encoder"])
    steps = pd.read_parquet(folder / "steps.parquet")
    np.testing.assert_allclose(steps["target"].dropna(), 0.3)
    assert model.predict({"market": np.array([[800.0]], dtype=np.float32),
                          "position": np.zeros((1, 1), np.float32),
                          "w_cost": np.full((1, 1), 0.5, np.float32)}, deterministic=True)[0][0, 0] == pytest.approx(
        0.3 / PROFILE_ACTION_GAIN, abs=1e-5)

    mat = result.get_asset_materialization_events()[-1].event_specific_data.materialization
    assert mat.asset_key == backtest_report.key and mat.partition == latest_key
    md = mat.metadata
    for name in ("equity_curve", "position", "drawdown"):
        assert BASE64_PNG in md[name].value
    assert "| Sharpe (ann.) |" in md["report_table"].value and "momentum" in md["report_table"].value
    assert "| regime_rule |" in md["strategies_table"].value and "| exposure_matched |" in md["strategies_table"].value
    assert md["agent_timing_alpha_return_pct"].value == record.metrics[AGENT]["timing_alpha_return_pct"]
    assert md["regime_rule_sharpe"].value == record.metrics["regime_rule"]["sharpe"]

    # The `make run` table: every strategy and the agent's timing alpha.
    out = io.StringIO()
    print_report(result, out)
    printed = out.getvalue()
    for name in record.metrics:
        assert f"| {name} |" in printed
    assert "| Timing alpha (return pp) |" in printed  # a column of the table
    assert "timing alpha vs exposure_matched (the agent's mean position +0.300" in printed
    assert "buy_good_pct" in md["timing_quality"].value
    # Seed 004's verdict on the agent's BUY timing; the quick profile runs no stochastic episodes.
    assert md["agent_timing_verdict"].value == record.metrics[AGENT]["timing_verdict"]
    assert md["timing_verdict"].value.startswith(f"{record.metrics[AGENT]['timing_verdict']}: ")
    assert "timing_verdict" in md["timing_quality"].value and "stochastic_evaluation" not in md
    assert md["collapsed"].value is True and md["collapse_audit"].value["q_spread"] is not None
    assert md["report_dir"].value == str(folder)

    # The collapse check warns without blocking: it failed, with WARN severity, and the run succeeded.
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.check_name == "backtest_policy_not_collapsed" and evaluation.partition == latest_key
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert "position +0.3 held" in evaluation.metadata["reasons"].value


def test_collapse_check_quiet_on_a_varied_policy(upstream: dict, dagster_resources: dict, latest_key: str) -> None:
    result = _materialize(upstream, "varied", latest_key, dagster_resources)
    record = result.output_for_node("backtest_report")
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.passed and not record.collapsed
    assert evaluation.metadata["n_trades"].value >= 10 and evaluation.metadata["modal_share"].value < 0.95


def test_wfo_summary_lists_missing_segments_and_leaves_collapsed_ones_out(upstream: dict,
                                                                           dagster_resources: dict) -> None:
    keys = segment_partitions.get_partition_keys()
    done, dead = keys[-2:], keys[-3]
    for key in done:
        _materialize(upstream, "varied", key, dagster_resources)
    _materialize(upstream, "constant", dead, dagster_resources)
    result = dg.materialize([wfo_summary], resources=dagster_resources,
                            instance=dg.DagsterInstance.ephemeral())
    assert result.success
    md = result.get_asset_materialization_events()[0].event_specific_data.materialization.metadata
    assert md["n_segments"].value == 3 and md["n_missing"].value == len(keys) - 3
    assert md["missing_segments"].value == ", ".join(keys[:-3])
    assert all(key in md["segments"].value for key in [dead, *done])
    # The collapsed segment is listed and marked, but not in the aggregates.
    assert md["n_collapsed"].value == 1 and md["collapsed_segments"].value == dead
    assert md["n_included"].value == 2 and md["include_collapsed"].value is False
    assert md["min_trades"].value >= 10
    assert "median_timing_alpha_return_pct" in md and "median_regime_rule_sharpe" in md
    assert BASE64_PNG in md["stitched_equity"].value
    assert 0.0 <= md["psr"].value <= 1.0 and md["dsr"].value <= md["psr"].value
    summary_dir = Path(dagster_resources["artifacts"].path("wfo_summary"))
    assert (summary_dir / "summary.json").is_file() and (summary_dir / "stitched_equity.png").is_file()
    segments_md = (summary_dir / "segments.md").read_text()
    assert f"| {dead} |" in segments_md and "| yes |" in segments_md
    assert set(pd.read_parquet(summary_dir / "stitched.parquet")["segment"]) == set(done)

    # Asked to, the summary counts it.
    again = dg.materialize([wfo_summary], resources=dagster_resources, instance=dg.DagsterInstance.ephemeral(),
                           run_config={"ops": {"wfo_summary": {"config": {"include_collapsed": True}}}})
    md = again.get_asset_materialization_events()[0].event_specific_data.materialization.metadata
    assert md["n_included"].value == 3 and md["include_collapsed"].value is True and md["min_trades"].value == 1


def test_wfo_summary_deflates_by_the_results_its_instance_read_on_the_same_windows(
        upstream: dict, dagster_resources: dict) -> None:
    """The DSR's trials are the distinct results this instance summarized on the same test
    windows: materializing the same reports again adds none, another agent's result adds one,
    and ``trial_sharpes`` in the run config replaces the record."""
    key = segment_partitions.get_partition_keys()[-1]
    instance = dg.DagsterInstance.ephemeral()
    counted = {"ops": {"wfo_summary": {"config": {"include_collapsed": True}}}}

    def summary_metadata(run_config: dict = counted) -> dict:
        result = dg.materialize([wfo_summary], resources=dagster_resources, instance=instance, run_config=run_config)
        return result.get_asset_materialization_events()[0].event_specific_data.materialization.metadata

    _materialize(upstream, "varied", key, dagster_resources)
    first = summary_metadata()
    assert first["n_trials"].value == 1 and first["dsr"].value == pytest.approx(first["psr"].value)
    assert summary_metadata()["n_trials"].value == 1  # the same result read again is not a new trial

    _materialize(upstream, "constant", key, dagster_resources)  # another agent on the same window
    second = summary_metadata()
    assert second["windows_fingerprint"].value == first["windows_fingerprint"].value
    assert second["results_fingerprint"].value != first["results_fingerprint"].value
    assert second["n_trials"].value == 2
    assert second["stats"].value["trial_sharpes"] == [pytest.approx(first["stitched_sharpe"].value)]
    assert second["dsr"].value < second["psr"].value

    given = summary_metadata({"ops": {"wfo_summary": {"config": {"include_collapsed": True,
                                                                 "trial_sharpes": [1.0, 2.0, 3.0]}}}})
    assert given["n_trials"].value == 4 and given["stats"].value["trial_sharpes"] == [1.0, 2.0, 3.0]


def test_wfo_summary_fails_clearly_without_reports(dagster_resources: dict) -> None:
    result = dg.materialize([wfo_summary], resources=dagster_resources,
                            instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].event_specific_data.error
    assert "no backtest_report is materialized yet" in failure.message
