"""``hmm_model`` in Dagster: it materializes for the latest segment with green blocking
checks, publishes its report files and its row of the cross-segment table, and its metadata
shows the chart, the transition matrix and the regime recovery. ``hmm_wfo_metrics`` gathers
the published rows of every segment into one CSV and lists the missing segments."""

import io
import json

import dagster as dg
import pandas as pd
import pytest

from cryptorl_core.regime import RegimeModel
from cryptorl_core.schema import HMM_COLUMNS
from cryptorl_dagster.assets.features import features
from cryptorl_dagster.assets.market import raw_market_data
from cryptorl_dagster.assets.regime import (
    hmm_fit_healthy,
    hmm_fit_on_train_only,
    hmm_model,
    hmm_no_lookahead,
    hmm_wfo_metrics,
)
from cryptorl_dagster.cli import PER_SEGMENT_SELECTION, print_summary
from cryptorl_dagster.partitions import segment_partitions
from cryptorl_dagster.tags import DEVICE_TAG

CHECKS = {"hmm_no_lookahead", "hmm_fit_on_train_only", "hmm_fit_healthy"}


def test_hmm_model_materializes_with_green_checks(dagster_resources, latest_key, tmp_path):
    result = dg.materialize(
        [raw_market_data, features, hmm_model, hmm_no_lookahead, hmm_fit_on_train_only, hmm_fit_healthy],
        partition_key=latest_key, resources=dagster_resources, instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    evals = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(evals) == CHECKS and all(e.passed for e in evals.values())
    assert all(e.partition == latest_key for e in evals.values())
    assert evals["hmm_fit_on_train_only"].metadata["max_parameter_diff_vs_train_only_refit"].value == 0.0
    assert evals["hmm_no_lookahead"].metadata["biased_columns"].value == "none"

    model = result.output_for_node("hmm_model")
    assert isinstance(model, RegimeModel)
    meta = result.asset_materializations_for_node("hmm_model")[0].metadata
    assert meta["regime_chart"].value.startswith("![regimes")
    assert "| s0 |" in meta["transition_matrix"].value
    assert meta["recovery_accuracy_test"].value >= 0.7
    assert meta["seeds"].value["best_seed"] in meta["seeds"].value["restart_seeds"]
    # `make run` prints the regime stage's figures under its heading (it once printed none).
    out = io.StringIO()
    print_summary(result, out)
    section = out.getvalue().split("== hmm_model")[1].split("==")[0]
    assert "recovery_accuracy_test" in section and "eval_loglik_per_row" in section

    folder = tmp_path / "artifacts" / "hmm_model" / latest_key
    assert {p.name for p in folder.iterdir()} >= {"model.json", "regimes.png", "transitions.csv",
                                                  "states.csv", "context.parquet", "segment_metrics.json"}
    stored = RegimeModel.from_dict(json.loads((folder / "model.json").read_text()))
    context = pd.read_parquet(folder / "context.parquet")
    assert list(context.columns) == list(HMM_COLUMNS) and len(context) == 11696
    pd.testing.assert_frame_equal(stored.context(result.output_for_node("features")), context,
                                  check_freq=False)
    # The cross-segment CSV is hmm_wfo_metrics' to write, no longer a side effect of a partition.
    assert not (tmp_path / "artifacts" / "hmm").exists()


def test_hmm_model_run_config_overrides_the_profile_and_the_refit_check_follows(dagster_resources, latest_key):
    result = dg.materialize(
        [raw_market_data, features, hmm_model, hmm_fit_on_train_only], partition_key=latest_key,
        resources=dagster_resources, instance=dg.DagsterInstance.ephemeral(),
        run_config={"ops": {"hmm_model": {"config": {"seed": 7, "n_restarts": 2}}}},
    )
    assert result.success
    model = result.output_for_node("hmm_model")
    profile_hmm = dagster_resources["profile"].pipeline().hmm
    assert (model.config["seed"], model.config["n_restarts"]) == (7, 2) != (profile_hmm.seed, profile_hmm.n_restarts)
    assert model.config["n_iter"] == profile_hmm.n_iter  # unset fields keep the profile's
    (check,) = result.get_asset_check_evaluations()
    assert check.passed and check.metadata["max_parameter_diff_vs_train_only_refit"].value == 0.0


def test_hmm_wfo_metrics_has_one_row_per_segment_and_lists_the_missing(dagster_resources, tmp_path):
    keys = segment_partitions.get_partition_keys()
    done = keys[-2:]
    metadata = {}
    for key in done:
        result = dg.materialize([raw_market_data, features, hmm_model], partition_key=key,
                                resources=dagster_resources, instance=dg.DagsterInstance.ephemeral())
        metadata[key] = result.asset_materializations_for_node("hmm_model")[0].metadata

    result = dg.materialize([hmm_wfo_metrics], resources=dagster_resources,
                            instance=dg.DagsterInstance.ephemeral())
    assert result.success
    md = result.asset_materializations_for_node("hmm_wfo_metrics")[0].metadata
    csv = tmp_path / "artifacts" / "hmm" / "hmm_wfo_metrics.csv"
    assert md["metrics_csv"].value == str(csv)
    assert md["n_segments"].value == 2 and md["n_missing"].value == len(keys) - 2
    assert md["missing_segments"].value == ", ".join(keys[:-2])
    assert all(f"| {key} |" in md["segments"].value for key in done)

    table = pd.read_csv(csv).set_index("segment")
    assert table.index.tolist() == done
    for key in done:
        row, meta = table.loc[key], metadata[key]
        for split in ("train", "eval", "test"):
            assert row[f"{split}_loglik"] == pytest.approx(meta[f"{split}_loglik_per_row"].value, rel=1e-12)
        assert row["accuracy_test"] == pytest.approx(meta["recovery_accuracy_test"].value, rel=1e-12)
        assert row["ari_test"] == pytest.approx(meta["recovery_ari_test"].value, rel=1e-12)
        assert row["best_seed"] == meta["seeds"].value["best_seed"]
        assert bool(row["converged"]) == meta["converged"].value
        assert row["fit_start"] == meta["fit_window"].value["start"]

    # `make run` and the backfill print its count, missing segments and the CSV's path.
    out = io.StringIO()
    print_summary(result, out)
    section = out.getvalue().split("== hmm_wfo_metrics")[1]
    assert all(k in section for k in ("n_segments", "missing_segments", "metrics_csv"))


def test_hmm_wfo_metrics_fails_clearly_without_any_model(dagster_resources, tmp_path):
    result = dg.materialize([hmm_wfo_metrics], resources=dagster_resources,
                            instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].event_specific_data.error
    assert "no hmm_model" in failure.message
    assert not (tmp_path / "artifacts" / "hmm").exists()


def test_definitions_include_hmm_model_its_checks_and_the_cross_segment_table():
    from cryptorl_dagster.definitions import defs  # loads every stage's assets

    repo = defs.get_repository_def()
    graph = repo.asset_graph
    assert {dg.AssetKey("hmm_model"), dg.AssetKey("hmm_wfo_metrics")} <= graph.get_all_asset_keys()
    check_names = {k.name for k in graph.asset_check_keys}
    assert CHECKS <= check_names
    metrics = graph.get(dg.AssetKey("hmm_wfo_metrics"))
    assert metrics.partitions_def is None and dg.AssetKey("hmm_model") in metrics.parent_keys
    assert DEVICE_TAG not in hmm_wfo_metrics.op.tags  # a CPU step: no GPU routing
    # Neither the one-segment job nor the backfill's per-segment runs write the cross-segment table.
    job_keys = repo.get_job("segment_pipeline").asset_layer.executable_asset_keys
    assert dg.AssetKey("hmm_model") in job_keys and dg.AssetKey("hmm_wfo_metrics") not in job_keys
    per_segment = PER_SEGMENT_SELECTION.resolve(graph)
    assert dg.AssetKey("hmm_model") in per_segment and dg.AssetKey("hmm_wfo_metrics") not in per_segment
