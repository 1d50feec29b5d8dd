"""``features``: the per-segment technical feature frame, and its look-ahead checks."""


import dagster as dg
import numpy as np
import pandas as pd

from cryptorl_core.features.pipeline import (
    FeatureParams,
    build_segment_frame,
    fit_feature_params,
    transform_features,
)
from cryptorl_core.lookahead import find_lookahead
from cryptorl_core.schema import EVAL, SPLIT_COL, TEST, TRAIN, WINDOW, feature_columns
from cryptorl_core.segments import HOUR
from cryptorl_dagster.metadata import markdown_table
from cryptorl_dagster.partitions import segment_for_key, segment_partitions
from cryptorl_dagster.resources import ProfileResource

PREVIEW_ROWS = 5
PREVIEW_COLS = 8


def split_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows and first/last timestamp per split."""
    groups = frame.groupby(SPLIT_COL, sort=False)
    return pd.DataFrame({
        "rows": groups.size(),
        "first": groups.apply(lambda g: str(g.index[0])),
        "last": groups.apply(lambda g: str(g.index[-1])),
    })


@dg.asset(
    partitions_def=segment_partitions,
    io_manager_key="frame_io_manager",
    group_name="market",
    kinds={"pandas"},
)
def features(
    context: dg.AssetExecutionContext, raw_market_data: pd.DataFrame, profile: ProfileResource
) -> dg.Output[pd.DataFrame]:
    """About 57 causal technical features (FFD, returns, z-scores, range volatility,
    volume, cross-asset, macro, calendar), z-scored with train-row statistics, plus the
    split column and the traded asset's raw prices."""
    segment = segment_for_key(context.partition_key)
    cfg = profile.pipeline().features
    frame, params, report = build_segment_frame(raw_market_data, segment, cfg)
    frame.attrs = {"feature_params": params.as_dict(), "segment": segment.as_dict(),
                   "fingerprint": params.fingerprint()}
    cols = feature_columns(frame)
    return dg.Output(frame, metadata={
        "rows": len(frame),
        "n_features": len(cols),
        "feature_columns": ", ".join(cols),
        "splits": markdown_table(split_summary(frame)),
        "ffd_d": dg.MetadataValue.json(params.ffd_d),
        "ffd_adf_pvalue": dg.MetadataValue.json(params.ffd_pvalue),
        "normalisation_fit_window": f"{params.norm.fit_start} .. {params.norm.fit_end} ({params.norm.n_rows} rows)",
        "values_filled_with_train_mean": report["n_filled_values"],
        "fingerprint": params.fingerprint(),
        "preview": markdown_table(frame[cols[:PREVIEW_COLS]].tail(PREVIEW_ROWS)),
    })


def _params(frame: pd.DataFrame) -> FeatureParams:
    return FeatureParams.from_dict(frame.attrs["feature_params"])


@dg.asset_check(asset=features, partitions_def=segment_partitions, blocking=True,
                additional_ins={"raw_market_data": dg.AssetIn()})
def features_no_lookahead(
    context: dg.AssetCheckExecutionContext, features: pd.DataFrame, raw_market_data: pd.DataFrame,
    profile: ProfileResource,
) -> dg.AssetCheckResult:
    """Truncation test: recomputing the features on data cut at t leaves row t unchanged,
    for every column at many cut points across train, eval and test."""
    pipeline = profile.pipeline()
    params = _params(features)
    start = int(np.searchsorted(raw_market_data.index, features.index[0]))
    report = find_lookahead(lambda d: transform_features(d, params, pipeline.features),
                            raw_market_data, n_cuts=pipeline.lookahead_cuts, start=start)
    return dg.AssetCheckResult(passed=report.ok, metadata={
        "summary": report.summary(), "cut_points": len(report.cut_points),
        "biased_columns": ", ".join(report.biased_columns) or "none",
    })


@dg.asset_check(asset=features, partitions_def=segment_partitions, blocking=True)
def features_split_windows(context: dg.AssetCheckExecutionContext, features: pd.DataFrame) -> dg.AssetCheckResult:
    """Train, eval and test are in time order, do not overlap, match the segment, and are
    separated by purge gaps of at least one observation window."""
    segment = segment_for_key(context.partition_key)
    split = features[SPLIT_COL]
    problems = []
    bounds = {}
    for name in (TRAIN, EVAL, TEST):
        idx = features.index[split.to_numpy() == name]
        if idx.empty:
            problems.append(f"no {name} rows")
            continue
        bounds[name] = (idx[0], idx[-1] + HOUR)
        if len(idx) != int((bounds[name][1] - bounds[name][0]) / HOUR):
            problems.append(f"{name} rows are not contiguous")
        if bounds[name] != (getattr(segment, f"{name}_start"), getattr(segment, f"{name}_end")):
            problems.append(f"{name} window {bounds[name]} differs from the segment's")
    for a, b in ((TRAIN, EVAL), (EVAL, TEST)):
        if a in bounds and b in bounds:
            gap = int((bounds[b][0] - bounds[a][1]) / HOUR)
            if gap < WINDOW:
                problems.append(f"purge between {a} and {b} is {gap} h < {WINDOW} h")
    return dg.AssetCheckResult(passed=not problems, metadata={
        "problems": "; ".join(problems) or "none",
        "windows": dg.MetadataValue.json({k: [str(v[0]), str(v[1])] for k, v in bounds.items()}),
    })


@dg.asset_check(asset=features, partitions_def=segment_partitions, blocking=True,
                additional_ins={"raw_market_data": dg.AssetIn()})
def features_fit_on_train_only(
    context: dg.AssetCheckExecutionContext, features: pd.DataFrame, raw_market_data: pd.DataFrame,
    profile: ProfileResource,
) -> dg.AssetCheckResult:
    """The stored FFD orders and normalisation statistics are exactly what a fit on data
    that ends at the train window's end gives: nothing after train influenced them."""
    segment = segment_for_key(context.partition_key)
    cfg = profile.pipeline().features
    stored = _params(features)
    truncated = raw_market_data.loc[raw_market_data.index < segment.train_end]
    refit, _ = fit_feature_params(truncated, segment, cfg)
    window_ok = (stored.norm.fit_start == str(segment.train_start)
                 and stored.norm.fit_end == str(segment.train_end - HOUR))
    d_ok = stored.ffd_d == refit.ffd_d
    cols = list(stored.norm.mean)
    mean_ok = np.allclose([stored.norm.mean[c] for c in cols], [refit.norm.mean[c] for c in cols], rtol=1e-9, atol=1e-12)
    std_ok = np.allclose([stored.norm.std[c] for c in cols], [refit.norm.std[c] for c in cols], rtol=1e-9, atol=1e-12)
    return dg.AssetCheckResult(passed=bool(window_ok and d_ok and mean_ok and std_ok), metadata={
        "fit_window": f"{stored.norm.fit_start} .. {stored.norm.fit_end}",
        "fit_window_is_train": window_ok,
        "ffd_d_matches_train_only_refit": d_ok,
        "norm_stats_match_train_only_refit": bool(mean_ok and std_ok),
    })
