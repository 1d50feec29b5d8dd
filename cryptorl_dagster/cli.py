"""``make run``: materialize the lineage of the latest segment in-process and print a summary.

The run is recorded in the local Dagster instance (``$DAGSTER_HOME``'s, else the repository's
``dagster.yaml``: :func:`cryptorl_dagster.instance.local_instance`), so ``make dev`` or
``dagster dev`` shows it, with its metadata and plots, afterwards.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import dagster as dg
import yaml

from cryptorl_core.backtest.summary import MARKDOWN_FILE
from cryptorl_dagster.assets.backtest import SUMMARY_ASSET
from cryptorl_dagster.definitions import CROSS_SEGMENT_ASSETS, all_assets, all_checks
from cryptorl_dagster.instance import local_instance
from cryptorl_dagster.partitions import segments
from cryptorl_dagster.resources import default_resources

#: Metadata entries worth a line in the terminal (the UI shows everything).
SUMMARY_KEYS = (
    "source", "symbols", "rows", "first_bar", "last_bar", "missing_hours_filled", "n_features",
    "ffd_d", "normalisation_fit_window", "converged", "eval_loglik_per_row", "recovery_accuracy_test",
    "best_epoch", "eval_loss", "device", "stopped_early", "collapsed", "agent_sharpe", "agent_alpha_return_pct",
    "agent_timing_alpha_return_pct", "vol_target_sharpe", "regime_rule_sharpe",
    "n_segments", "n_collapsed", "missing_segments", "median_sharpe", "median_regime_rule_sharpe",
    "median_timing_alpha_return_pct", "psr", "dsr", "n_trials", "metrics_csv",
)


def _short(value: object) -> str:
    text = str(getattr(value, "value", value))
    return text if len(text) <= 100 else text[:97] + "..."


def print_summary(result: dg.ExecuteInProcessResult, out=sys.stdout) -> None:
    """Asset metadata highlights and every check verdict of a run."""
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        print(f"\n== {mat.asset_key.to_user_string()} [{mat.partition}]", file=out)
        for key in SUMMARY_KEYS:
            if key in mat.metadata:
                print(f"   {key:28s} {_short(mat.metadata[key])}", file=out)
    evaluations = result.get_asset_check_evaluations()
    if evaluations:
        print("\n== checks", file=out)
        for ev in evaluations:
            verdict = "PASS" if ev.passed else "FAIL"
            print(f"   {verdict}  {ev.asset_key.to_user_string()}.{ev.check_name}", file=out)


def timing_alpha_line(metadata: dict) -> str | None:
    """One sentence on the agent's timing alpha from ``backtest_report`` metadata (None if absent)."""
    keys = ("agent_mean_position", "agent_timing_alpha_return_pct", "agent_timing_alpha_sharpe")
    if not all(k in metadata for k in keys):
        return None
    position, ret, sharpe = (float(getattr(metadata[k], "value", metadata[k])) for k in keys)
    return (f"timing alpha vs exposure_matched (the agent's mean position {position:+.3f} held throughout, "
            f"same costs): {ret:+.2f} pp return, {sharpe:+.3f} Sharpe")


def print_report(result: dg.ExecuteInProcessResult, out=sys.stdout) -> None:
    """The backtest's one-row-per-strategy table (agent, every baseline, exposure_matched), the
    agent's timing alpha, and where to see the full metrics table and the plots."""
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        if mat.asset_key.to_user_string() != "backtest_report" or "report_table" not in mat.metadata:
            continue
        print(f"\n== backtest {mat.partition}: agent vs baselines (test window "
              f"{mat.metadata['test_window'].value}, {mat.metadata['costs'].value})", file=out)
        table = mat.metadata.get("strategies_table", mat.metadata["report_table"])
        print(table.value, file=out)
        line = timing_alpha_line(mat.metadata)
        if line:
            print(f"\n{line}", file=out)
        print(f"\nfull metrics table (report.md), plots and per-step results: {mat.metadata['report_dir'].value}",
              file=out)


#: Run config that keeps the console to warnings (the summary printed afterwards says the rest).
QUIET_LOGGERS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def load_run_config(path: str | None) -> dict[str, Any]:
    """The quiet loggers plus the run config in the YAML file at ``path``, the file
    ``dagster asset materialize --config`` takes (e.g. ``ops: {tqc_policy: {config: {seed: 2}}}``
    trains every segment's agent from seed 2). The file's own ``loggers`` win.

    :raises ValueError: naming the file, when it cannot be read or is not a YAML mapping.
    """
    if not path:
        return dict(QUIET_LOGGERS)
    try:
        loaded = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"run config {path}: cannot read it as YAML ({err})") from err
    if not isinstance(loaded, dict):
        raise ValueError(f"run config {path}: expected a mapping such as 'ops: {{...}}', got {type(loaded).__name__}")
    return {**QUIET_LOGGERS, **loaded}


def selects_partitioned(selection: list[str]) -> bool:
    """Whether the asset selections (each in Dagster's selection syntax) take in a partitioned asset."""
    keys = dg.AssetSelection.from_coercible(selection).resolve(all_assets)
    return any(asset.partitions_def is not None for asset in all_assets if set(asset.keys) & keys)


def run(partition: str | None, selection: str | None, run_config: dict[str, Any] | None = None) -> int:
    keys = [s.key for s in segments()]
    if not keys:
        print("no walk-forward segment fits in the data coverage", file=sys.stderr)
        return 2
    selected = selection.split(",") if selection else None
    # Dagster refuses a partition key for a selection with no partitioned asset (the summary alone).
    partitioned = selected is None or selects_partitioned(selected)
    partition = (partition or keys[-1]) if partitioned else None
    what = f"segment {partition}" if partitioned else "the cross-segment assets"
    print(f"CryptoRL: materializing {what} ({len(keys)} segments: {keys[0]} .. {keys[-1]})")
    started = time.time()
    result = dg.materialize(
        [*all_assets, *all_checks],
        partition_key=partition,
        resources=default_resources(),
        instance=local_instance(),
        selection=selected,
        raise_on_error=False,
        run_config=run_config or QUIET_LOGGERS,
    )
    print_summary(result)
    print_report(result)
    print(f"\n{'succeeded' if result.success else 'FAILED'} in {time.time() - started:.1f} s")
    print(ui_hint(partition))
    return 0 if result.success else 1


def ui_hint(partition: str | None) -> str:
    """Where the UI shows what a run made: the segment's charts, or only the summary's curve."""
    where = (f"Assets > backtest_report, partition {partition}: equity, position and drawdown charts; "
             if partition else "")
    return ("See the runs, metadata and plots in the UI: `make dev`, then open http://127.0.0.1:3000"
            f" ({where}wfo_summary: the stitched out-of-sample curve)")


#: The per-segment assets of a backfill (everything but the cross-segment assets) and their checks.
PER_SEGMENT_SELECTION = dg.AssetSelection.all() - dg.AssetSelection.assets(*CROSS_SEGMENT_ASSETS)


def backfill(partitions: str | None, run_config: dict[str, Any] | None = None) -> int:
    """Materialize the lineage of every segment (or the listed ones), one run per segment as a
    Dagster backfill makes, each with ``run_config`` (:func:`load_run_config`), then the
    cross-segment assets (``hmm_wfo_metrics``, ``wfo_summary``); print each segment's time and
    the summary table."""
    keys = partitions.split(",") if partitions else [s.key for s in segments()]
    instance, resources = local_instance(), default_resources()
    started, failed = time.time(), []
    for key in keys:
        t0 = time.time()
        result = dg.materialize([*all_assets, *all_checks], partition_key=key, resources=resources,
                                instance=instance, selection=PER_SEGMENT_SELECTION, raise_on_error=False,
                                run_config=run_config or QUIET_LOGGERS)
        if not result.success:
            failed.append(key)
        print(f"{key}: {'ok' if result.success else 'FAILED'} in {time.time() - t0:.1f} s", flush=True)
    result = dg.materialize([*all_assets, *all_checks], resources=resources, instance=instance,
                            selection=list(CROSS_SEGMENT_ASSETS), raise_on_error=False, run_config=QUIET_LOGGERS)
    print_summary(result)
    table = resources["artifacts"].path(SUMMARY_ASSET) / MARKDOWN_FILE
    if table.exists():
        print(f"\n{table.read_text()}")
    print(f"\nbackfill of {len(keys)} segments in {time.time() - started:.1f} s; failed: {', '.join(failed) or 'none'}")
    return 0 if result.success and not failed else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cryptorl_dagster.cli")
    sub = parser.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run", help="materialize one segment's lineage (default: the latest)")
    run_p.add_argument("--partition", help="segment key such as 2025-Q4")
    run_p.add_argument("--select", help="comma-separated asset selections, e.g. 'raw_market_data,features' or '*hmm_model'")
    sub.add_parser("segments", help="list the walk-forward segments")
    fill_p = sub.add_parser("backfill", help="materialize every segment's lineage in turn, then the cross-segment assets")
    fill_p.add_argument("--partitions", help="comma-separated segment keys (default: all)")
    for p in (run_p, fill_p):
        p.add_argument("--config", help="YAML run config for each segment's run, as `dagster asset materialize "
                                        "--config` takes (e.g. 'ops: {tqc_policy: {config: {seed: 2}}}')")
    args = parser.parse_args(argv)
    if args.command == "segments":
        for seg in segments():
            print(seg.key, seg.train_start, seg.test_start, seg.test_end)
        return 0
    try:
        run_config = load_run_config(args.config)
    except ValueError as err:
        print(err, file=sys.stderr)
        return 2
    if args.command == "backfill":
        return backfill(args.partitions, run_config)
    return run(args.partition, args.select, run_config)


if __name__ == "__main__":
    sys.exit(main())
