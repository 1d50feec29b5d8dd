"""``hmm_model``: the per-segment regime HMM, its report and its look-ahead checks; and
``hmm_wfo_metrics``, the cross-segment table of the HMM fits.

Each ``hmm_model`` partition publishes its row of the table (``segment_metrics.json``) with its
report. ``hmm_wfo_metrics`` has no data input, like ``wfo_summary``: it reads whatever rows are
published (an IO-manager input over all partitions fails on the unmaterialized ones), lists the
missing segments and writes ``artifacts/hmm/hmm_wfo_metrics.csv``.
"""


import json
import warnings
from pathlib import Path

import dagster as dg
import pandas as pd

from cryptorl_core.lookahead import find_lookahead
from cryptorl_core.regime.config import HMMConfig
from cryptorl_core.regime.model import (
    RegimeFitWarning,
    RegimeModel,
    fit_regime_model,
    fit_window_inside,
    parameter_difference,
)
from cryptorl_core.regime.recovery import regime_recovery
from cryptorl_core.regime.report import (
    METRICS_FILE,
    SEGMENT_METRICS_FILE,
    metrics_table,
    plot_regimes,
    read_segment_metrics,
    segment_metrics,
    split_loglik,
    state_summary,
    transition_table,
    write_metrics_table,
    write_segment_metrics,
)
from cryptorl_core.schema import TRUE_REGIME_COL
from cryptorl_dagster.metadata import markdown_table, png_markdown
from cryptorl_dagster.partitions import segment_for_key, segment_partitions
from cryptorl_dagster.resources import ArtifactStore, ProfileResource
from cryptorl_dagster.run_config import RunOverrides

ASSET_NAME = "hmm_model"
METRICS_ASSET = "hmm_wfo_metrics"
#: Folder (under the artifact root) of the cross-segment table.
METRICS_DIR = "hmm"
#: Largest parameter difference that still counts as "the same fit" (float noise only).
REFIT_ATOL = 1e-12


class RegimeRunConfig(RunOverrides):
    """Per-run overrides of the profile's HMM configuration (launchpad / tests); unset fields
    keep the profile's values. Each is the :class:`~cryptorl_core.regime.config.HMMConfig` field
    of the same name. The look-ahead check refits with the configuration the model records, so
    an override is checked like the profile's own.

    :param seed: first restart seed.
    :param n_restarts: random restarts; the best train log-likelihood wins.
    :param n_iter: EM iteration cap per restart.
    """

    seed: int | None = None
    n_restarts: int | None = None
    n_iter: int | None = None


def hmm_config(profile: ProfileResource, run: RegimeRunConfig | None = None) -> HMMConfig:
    """The profile's HMM configuration with this run's overrides."""
    return (run or RegimeRunConfig()).apply(profile.pipeline().hmm)


def metrics_csv(artifacts: ArtifactStore) -> Path:
    """Where ``hmm_wfo_metrics`` writes the cross-segment CSV: ``<artifacts>/hmm/hmm_wfo_metrics.csv``."""
    return artifacts.root / METRICS_DIR / METRICS_FILE


def _fit(context: dg.AssetExecutionContext, features: pd.DataFrame, cfg: HMMConfig) -> RegimeModel:
    """Fit, and surface fit warnings in the run log as well as in the model's diagnostics."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RegimeFitWarning)
        model = fit_regime_model(features, cfg)
    for w in caught:
        if issubclass(w.category, RegimeFitWarning):
            context.log.warning(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return model


@dg.asset(partitions_def=segment_partitions, group_name="regime")
def hmm_model(
    context: dg.AssetExecutionContext, config: RegimeRunConfig, features: pd.DataFrame,
    artifacts: ArtifactStore, profile: ProfileResource,
) -> dg.Output[RegimeModel]:
    """A 4-state Gaussian HMM fitted on the segment's train rows (seeded restarts, states
    in a stable order), giving every row forward-filtered regime probabilities and their
    entropy (``HMM_COLUMNS``) through ``RegimeModel.context(features)``."""
    key = context.partition_key
    cfg = hmm_config(profile, config)
    model = _fit(context, features, cfg)
    probs, loglik = model.filter(features)
    recovery = regime_recovery(features, probs) if TRUE_REGIME_COL in features else None
    transitions = transition_table(model)
    states = state_summary(model, features, probs)
    png = plot_regimes(features, probs, title=f"{key}: price shaded by the filtered regime")
    with artifacts.publish(ASSET_NAME, key) as folder:
        (folder / "model.json").write_text(json.dumps(model.to_dict(), indent=1))
        (folder / "regimes.png").write_bytes(png)
        transitions.to_csv(folder / "transitions.csv")
        states.to_csv(folder / "states.csv")
        model.context(features).to_parquet(folder / "context.parquet")
        write_segment_metrics(folder, segment_metrics(key, model, features, loglik, recovery))
    ll = split_loglik(features, loglik)
    metadata = {
        "inputs": ", ".join(model.columns),
        "fit_window": dg.MetadataValue.json(model.fit_window),
        "seeds": dg.MetadataValue.json({"restart_seeds": list(model.seeds), "best_seed": model.best_seed}),
        "restarts": markdown_table(pd.DataFrame(model.restarts).set_index("seed")),
        "converged": bool(model.diagnostics["converged"]),
        "fit_warnings": "; ".join(model.diagnostics["warnings"]) or "none",
        "state_mapping_original_to_stable": dg.MetadataValue.json(list(model.mapping)),
        "transition_matrix": markdown_table(transitions),
        "states": markdown_table(states),
        "train_loglik_per_row": ll["train"],
        "eval_loglik_per_row": ll["eval"],
        "test_loglik_per_row": ll["test"],
        "regime_chart": png_markdown(png, alt=f"regimes {key}"),
        "artifacts": dg.MetadataValue.path(str(artifacts.path(ASSET_NAME, key))),
    }
    if recovery:
        metadata["recovery"] = dg.MetadataValue.json(
            {**{k: round(v, 4) for k, v in recovery.items() if isinstance(v, float)},
             "state_to_true_regime": {str(k): v for k, v in recovery["state_to_regime"].items()}})
        metadata["recovery_accuracy_test"] = recovery["accuracy_test"]
        metadata["recovery_ari_test"] = recovery["ari_test"]
    return dg.Output(model, metadata=metadata)


@dg.asset(deps=[hmm_model], group_name="regime", kinds={"pandas"})
def hmm_wfo_metrics(artifacts: ArtifactStore) -> dg.MaterializeResult:
    """The HMM fits of every segment side by side, one row per segment with a published
    ``hmm_model`` (fit window, seed, convergence, log-likelihood per split, state durations and
    occupancy, regime recovery on synthetic data), as ``artifacts/hmm/hmm_wfo_metrics.csv``.
    Missing segments (never materialized, or failed before publishing) are listed."""
    keys = segment_partitions.get_partition_keys()
    rows = {k: row for k in keys if (row := read_segment_metrics(artifacts.path(ASSET_NAME, k))) is not None}
    table, missing = metrics_table(keys, rows)
    if table.empty:
        raise dg.Failure(f"no hmm_model with {SEGMENT_METRICS_FILE} is published yet "
                         f"(expected one of {len(keys)} segments)")
    path = write_metrics_table(table, metrics_csv(artifacts))
    return dg.MaterializeResult(metadata={
        "segments": markdown_table(table.set_index("segment")),
        "n_segments": len(table),
        "missing_segments": ", ".join(missing) or "none",
        "n_missing": len(missing),
        "metrics_csv": dg.MetadataValue.path(str(path)),
    })


@dg.asset_check(asset=hmm_model, partitions_def=segment_partitions, blocking=True,
                additional_ins={"features": dg.AssetIn()})
def hmm_no_lookahead(
    context: dg.AssetCheckExecutionContext, hmm_model: RegimeModel, features: pd.DataFrame,
    profile: ProfileResource,
) -> dg.AssetCheckResult:
    """Truncation test of the regime context with the fitted parameters fixed: recomputing
    it on the frame cut at t leaves row t unchanged, at cut points across train, eval and test."""
    report = find_lookahead(hmm_model.context, features, n_cuts=profile.pipeline().lookahead_cuts)
    return dg.AssetCheckResult(passed=report.ok, metadata={
        "summary": report.summary(), "cut_points": len(report.cut_points),
        "biased_columns": ", ".join(report.biased_columns) or "none",
        "max_abs_diff": dg.MetadataValue.json(report.max_abs_diff),
    })


@dg.asset_check(asset=hmm_model, partitions_def=segment_partitions, blocking=True,
                additional_ins={"features": dg.AssetIn()})
def hmm_fit_on_train_only(
    context: dg.AssetCheckExecutionContext, hmm_model: RegimeModel, features: pd.DataFrame,
) -> dg.AssetCheckResult:
    """The parameters are exactly those of a refit (same config and seeds) on the frame cut
    at the train window's end, and the recorded fit window lies inside the train window."""
    segment = segment_for_key(context.partition_key)
    truncated = features.loc[features.index < segment.train_end]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RegimeFitWarning)  # reported by the asset already
        refit = fit_regime_model(truncated, HMMConfig.from_dict(hmm_model.config))
    diff = parameter_difference(hmm_model, refit)
    inside = fit_window_inside(hmm_model, segment.train_start, segment.train_end)
    rows_ok = hmm_model.fit_window["n_train_rows"] == segment.hours("train")
    return dg.AssetCheckResult(passed=bool(diff <= REFIT_ATOL and inside and rows_ok), metadata={
        "max_parameter_diff_vs_train_only_refit": diff,
        "fit_window": f"{hmm_model.fit_window['start']} .. {hmm_model.fit_window['end']}",
        "train_window": f"{segment.train_start} .. {segment.train_end} (end exclusive)",
        "fit_window_inside_train": inside,
        "train_rows_match_segment": rows_ok,
    })


@dg.asset_check(asset=hmm_model, partitions_def=segment_partitions)
def hmm_fit_healthy(hmm_model: RegimeModel) -> dg.AssetCheckResult:
    """EM converged and no state is degenerate (tiny occupancy or near-singular covariance).
    A warning, not a blocker: the context stays causal either way."""
    problems = hmm_model.diagnostics.get("warnings", [])
    return dg.AssetCheckResult(passed=not problems, severity=dg.AssetCheckSeverity.WARN, metadata={
        "problems": "; ".join(problems) or "none",
        "occupancy": dg.MetadataValue.json(hmm_model.diagnostics.get("occupancy")),
        "covariance_condition": dg.MetadataValue.json(hmm_model.diagnostics.get("covariance_condition")),
    })
