"""``backtest_report`` (per segment), its warn-only collapse check, and ``wfo_summary``.

``backtest_report`` runs the trained policy deterministically over the segment's test window
through the training environment (one env, sequential, same lag and costs), with the baselines
on the same window and costs (price rules, ``vol_target``, the ``regime_rule`` pair on the
segment's HMM context, the ``regime_oracle`` on synthetic data, and the agent's
``exposure_matched`` line), and publishes the report folder under
``artifacts/backtest_report/<key>/`` (see :mod:`cryptorl_core.backtest.report`). Its metadata
carry seed 004's verdict on the agent's BUY timing and, when the profile's
``stochastic_episodes`` is above 0 (the full profile: 10), the mean and std of the agent's main
metrics over that many seeded stochastic episodes.

``wfo_summary`` has no data input: it reads whatever report folders are published (an
IO-manager input over all partitions fails on the unmaterialized ones) and lists the missing.
Collapsed segments are marked and left out of its aggregates unless its run config sets
``include_collapsed: true``.
"""


import dataclasses
from typing import Any

import dagster as dg
import pandas as pd

from cryptorl_core.agent import PolicyArtifact
from cryptorl_core.agent.loading import load_policy
from cryptorl_core.backtest.audit import audit_policy
from cryptorl_core.backtest.baselines import REGIME_RULE, VOL_TARGET
from cryptorl_core.backtest.config import BacktestConfig
from cryptorl_core.backtest.report import (
    AGENT,
    STEPS_FILE,
    TIMING_KEYS,
    BacktestRecord,
    BacktestReport,
    build_report,
    jsonable,
)
from cryptorl_core.backtest.summary import (
    distinct_trials,
    load_segment_results,
    summarize,
    summary_fingerprints,
)
from cryptorl_core.device import resolve_device
from cryptorl_core.encoder import EncoderArtifact
from cryptorl_core.env import EnvConfig
from cryptorl_core.policy_stats import collapse_stats
from cryptorl_core.regime.model import RegimeModel
from cryptorl_core.schema import TEST
from cryptorl_dagster.metadata import markdown_table, png_markdown
from cryptorl_dagster.partitions import segment_partitions
from cryptorl_dagster.resources import ArtifactStore, ProfileResource

REPORT_ASSET = "backtest_report"
SUMMARY_ASSET = "wfo_summary"

#: Agent metrics repeated as top-level metadata entries (plotted over partitions by the UI).
HEADLINE_KEYS = ("total_return_pct", "sharpe", "max_drawdown_pct", "n_trades", "alpha_return_pct",
                 "alpha_sharpe", "buy_good_pct", "sell_good_pct", "mean_position",
                 "timing_alpha_return_pct", "timing_alpha_sharpe", "timing_verdict")

#: Baselines whose Sharpe is repeated as a top-level metadata entry ``<name>_sharpe``.
HEADLINE_BASELINES = (VOL_TARGET, REGIME_RULE)

#: Aggregates of ``wfo_summary`` repeated as top-level metadata entries.
SUMMARY_HEADLINE_KEYS = ("mean_alpha_return_pct", "median_alpha_return_pct", "share_beating_bh_sharpe",
                         "median_sharpe", f"median_{REGIME_RULE}_sharpe", "sharpe_ratio_to_regime_rule",
                         "median_timing_alpha_return_pct", "psr", "dsr")


class WfoSummaryConfig(dg.Config):
    """Run configuration of ``wfo_summary``.

    :param include_collapsed: count segments whose policy is collapsed in the aggregates and
        the stitched curve (they are always listed and marked in the segment table).
    :param trial_sharpes: annualised stitched Sharpes of the other configurations read on these
        test windows, for the deflated Sharpe ratio (e.g. backfills kept in other instances);
        unset: the distinct earlier results this instance recorded on the same windows.
    """

    include_collapsed: bool = False
    trial_sharpes: list[float] | None = None


#: Metadata of each ``wfo_summary`` materialization that later ones read as its trial record.
TRIAL_KEYS = ("windows_fingerprint", "results_fingerprint", "stitched_sharpe")
#: Earlier ``wfo_summary`` materializations read for the trial record (newest first).
TRIAL_HISTORY_LIMIT = 1000


def recorded_trials(instance: dg.DagsterInstance) -> list[dict[str, Any]]:
    """The trial record (:data:`TRIAL_KEYS`) of the instance's earlier ``wfo_summary``
    materializations, newest first."""
    records = instance.fetch_materializations(dg.AssetKey(SUMMARY_ASSET), limit=TRIAL_HISTORY_LIMIT).records
    history = []
    for record in records:
        materialization = record.asset_materialization
        metadata = materialization.metadata if materialization is not None else {}
        history.append({k: metadata[k].value for k in TRIAL_KEYS if k in metadata})
    return history


def backtest_configs(profile: ProfileResource, policy: PolicyArtifact | None = None
                     ) -> tuple[EnvConfig, BacktestConfig]:
    """The training env configuration (same lag and costs) and the analytics configuration.

    :param profile: the pipeline profile.
    :param policy: the ``tqc_policy`` artifact; the agent configuration it was trained with wins
        over the profile's.
    :return: ``(env_config, backtest_config)``; the backtest conditions the policy on the
        agent's ``eval_w_cost``, as its evaluation during training did.
    """
    pipeline = profile.pipeline()
    agent = pipeline.agent if policy is None else policy.agent_config()
    return agent.env, dataclasses.replace(pipeline.backtest, eval_w_cost=agent.eval_w_cost)


def _metrics_frame(metrics: dict[str, dict[str, Any]], keys: tuple[str, ...]) -> pd.DataFrame:
    frame = pd.DataFrame({k: {n: m.get(k) for n, m in metrics.items()} for k in keys})
    frame.index.name = "strategy"
    return frame


def stochastic_metadata(report: BacktestReport) -> dict[str, Any]:
    """Metadata of the report's stochastic evaluation; empty when it was not run.

    :param report: the backtest report.
    :return: the mean ± std table, the JSON summary, and ``agent_stochastic_<key>_mean`` /
        ``_std`` entries for the finite values.
    """
    if report.stochastic is None:
        return {}
    ev = report.stochastic
    metadata: dict[str, Any] = {
        "stochastic_evaluation": dg.MetadataValue.md(report.stochastic_markdown()),
        "stochastic_summary": dg.MetadataValue.json(jsonable(ev.as_dict())),
        "stochastic_episodes": ev.n,
    }
    for stat, values in (("mean", ev.mean()), ("std", ev.std())):
        metadata.update({f"agent_stochastic_{k}_{stat}": v for k, v in values.items() if v == v})  # NaN != NaN
    return metadata


@dg.asset(
    partitions_def=segment_partitions,
    group_name="backtest",
    kinds={"pytorch"},
)
def backtest_report(
    context: dg.AssetExecutionContext,
    features: pd.DataFrame,
    hmm_model: RegimeModel,
    mae_encoder: EncoderArtifact,
    tqc_policy: PolicyArtifact,
    profile: ProfileResource,
    artifacts: ArtifactStore,
) -> dg.Output[BacktestRecord]:
    """The deterministic policy over the test window against buy-and-hold, flat, SMA crossover,
    momentum, vol_target, regime_rule (and its long-only variant) on the HMM context, the
    true-regime oracle on synthetic data and the exposure-matched line, all through the training
    env (one env, sequential, same execution lag, fees and slippage): one metrics table, timing
    alpha, timing quality, seed 004's verdict, policy-collapse audit and charts; with the
    profile's ``stochastic_episodes`` > 0, the agent's stochastic mean ± std too."""
    key = context.partition_key
    env_config, config = backtest_configs(profile, tqc_policy)
    device = resolve_device("auto")
    regime_context = hmm_model.context(features)
    # The best model, with the segment's market tensors (HMM context and frozen encoder) attached.
    model = load_policy(tqc_policy.model_path, frame=features, hmm_context=regime_context,
                        encoder=mae_encoder.load(device), device=device)
    # The env stays on the CPU: one env per step is latency-bound, the policy uses `device`.
    report = build_report(model, features, TEST, key=key, env_config=env_config, config=config,
                          regime_context=regime_context)
    audit = audit_policy(model, report.agent, config)
    report.audit = audit.as_dict()
    plots = report.plots()
    with artifacts.publish(REPORT_ASSET, key) as staging:
        report.save(staging, plots)
    directory = artifacts.path(REPORT_ASSET, key)
    record = report.record(directory)
    agent = record.metrics[AGENT]
    metadata: dict[str, Any] = {
        "algo": type(model).__name__.lower(),
        "report_table": dg.MetadataValue.md(record.markdown()),
        "strategies_table": dg.MetadataValue.md(record.compact_markdown()),
        "timing_quality": markdown_table(_metrics_frame(record.metrics, TIMING_KEYS), ".3g"),
        "timing_verdict": report.verdict_line(),
        "equity_curve": png_markdown(plots["equity"], "equity vs baselines"),
        "position": png_markdown(plots["position"], "position on price"),
        "drawdown": png_markdown(plots["drawdown"], "drawdown"),
        "collapsed": record.collapsed,
        "collapse_reasons": "; ".join(record.collapse_reasons) or "none",
        "collapse_audit": dg.MetadataValue.json(report.summary()["audit"]),
        **_decision_metadata(report),
        "test_window": f"{report.agent.steps.index[0]} .. {report.agent.steps.index[-1]}",
        "w_cost": report.agent.w_cost,
        "costs": f"fee {env_config.fee_bps} bps + slippage {env_config.slippage_bps} bps, "
                 f"execution lag {env_config.execution_lag} bar",
        "device": str(device),
        "report_dir": dg.MetadataValue.path(str(directory)),
    }
    metadata.update({f"agent_{k}": agent[k] for k in HEADLINE_KEYS if agent.get(k) is not None})
    metadata.update(stochastic_metadata(report))
    metadata.update({f"{name}_sharpe": record.metrics[name]["sharpe"] for name in HEADLINE_BASELINES
                     if record.metrics.get(name, {}).get("sharpe") is not None})
    return dg.Output(record, metadata=metadata)


def _decision_metadata(report: BacktestReport) -> dict[str, Any]:
    """Trades and modal share of the agent's own target under a sizing overlay; empty without one."""
    own = report.decision_collapse
    if own is None:
        return {}
    return {"agent_own_trades": own.n_trades, "agent_own_modal_share": own.modal_share}


@dg.asset_check(asset=backtest_report, partitions_def=segment_partitions, blocking=False)
def backtest_policy_not_collapsed(
    context: dg.AssetCheckExecutionContext, profile: ProfileResource, artifacts: ArtifactStore
) -> dg.AssetCheckResult:
    """Warns (never blocks) when the policy is effectively constant: one action more than the
    configured share of the time (95 %), too few trades, or a near-zero action entropy."""
    key = context.partition_key
    _, config = backtest_configs(profile)
    steps = pd.read_parquet(artifacts.path(REPORT_ASSET, key) / STEPS_FILE)
    stats = collapse_stats(steps["target"].dropna().to_numpy(), config.action_bin_width)
    collapsed, reasons = config.collapse.verdict(stats)
    return dg.AssetCheckResult(
        passed=not collapsed,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "reasons": "; ".join(reasons) or "none",
            "modal_action": stats.modal_action,
            "modal_share": stats.modal_share,
            "n_trades": stats.n_trades,
            "entropy_frac": stats.entropy_frac,
            "histogram": dg.MetadataValue.json(stats.as_dict()["histogram"]),
            "rule": dg.MetadataValue.json(config.collapse.as_dict()),
        },
    )


@dg.asset(deps=[backtest_report], group_name="backtest", kinds={"pandas"})
def wfo_summary(
    context: dg.AssetExecutionContext, config: WfoSummaryConfig, profile: ProfileResource,
    artifacts: ArtifactStore,
) -> dg.MaterializeResult:
    """Walk-forward summary over whatever segments have a published report: one row per
    segment (agent, buy-and-hold and every baseline, timing alpha, collapse flag), the stitched
    out-of-sample equity curve against buy-and-hold, vol_target and regime_rule, mean and
    median alpha, the share of segments with agent Sharpe >= buy-and-hold's, median agent vs
    regime_rule Sharpe, median timing alpha, fewest trades, and the PSR and DSR of the
    stitched curve. The DSR deflates by the configurations read on these test windows: this one
    and the distinct earlier results this instance recorded on the same windows (or
    ``trial_sharpes``). Collapsed segments are left out of the aggregates unless
    ``include_collapsed``; missing segments are listed."""
    _, bt_config = backtest_configs(profile)
    keys = segment_partitions.get_partition_keys()
    results, missing = load_segment_results(keys, lambda k: artifacts.path(REPORT_ASSET, k))
    if not results:
        raise dg.Failure(f"no backtest_report is materialized yet (expected one of {len(keys)} segments)")
    trials = config.trial_sharpes
    if trials is None:
        fingerprints = summary_fingerprints(results, config.include_collapsed)
        trials = distinct_trials(recorded_trials(context.instance), fingerprints["windows_fingerprint"],
                                 fingerprints["results_fingerprint"])
    summary = summarize(results, missing, trials, bt_config, config.include_collapsed)
    png = summary.plot()
    with artifacts.publish(SUMMARY_ASSET) as staging:
        summary.save(staging, png)
    stats = summary.stats
    collapsed = [k for k in summary.present if bool(summary.table.loc[k, "collapsed"])]
    return dg.MaterializeResult(metadata={
        "segments": dg.MetadataValue.md(summary.markdown()),
        "stitched_equity": png_markdown(png, "stitched out-of-sample equity vs baselines"),
        "n_segments": stats["n_segments"],
        "n_included": stats["n_included"],
        "n_collapsed": stats["n_collapsed"],
        "collapsed_segments": ", ".join(collapsed) or "none",
        "include_collapsed": stats["include_collapsed"],
        "missing_segments": ", ".join(summary.missing) or "none",
        "n_missing": stats["n_missing"],
        "stats": dg.MetadataValue.json(jsonable(stats)),
        "n_trials": stats["n_trials"],
        **{k: stats[k] for k in TRIAL_KEYS if stats[k] == stats[k]},
        **{k: float(stats[k]) for k in SUMMARY_HEADLINE_KEYS
           if stats[k] == stats[k]},  # NaN is not equal to itself: leave it out
        **({"min_trades": stats["min_trades"]} if stats["min_trades"] is not None else {}),
        "summary_dir": dg.MetadataValue.path(str(artifacts.path(SUMMARY_ASSET))),
    })
