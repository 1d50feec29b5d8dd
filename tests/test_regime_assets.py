"""``hmm_model`` in Dagster: it materializes for the latest segment with green blocking
checks, publishes its report files and the cross-segment table, and its metadata shows
the chart, the transition matrix and the regime recovery."""

import io
import json

import dagster as dg
import pandas as pd

from cryptorl_core.regime import RegimeModel
from cryptorl_core.schema import HMM_COLUMNS
from cryptorl_dagster.assets.features import features
from cryptorl_dagster.assets.market import raw_market_data
from cryptorl_dagster.assets.regime import (
    hmm_fit_healthy,
    hmm_fit_on_train_only,
    hmm_model,
    hmm_no_lookahead,
)
from cryptorl_dagster.cli import print_summary

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
                                                  "states.csv", "context.parquet"}
    stored = RegimeModel.from_dict(json.loads((folder / "model.json").read_text()))
    context = pd.read_parquet(folder / "context.parquet")
    assert list(context.columns) == list(HMM_COLUMNS) and len(context) == 11696
    pd.testing.assert_frame_equal(stored.context(result.output_for_node("features")), context,
                                  check_freq=False)
    table = pd.read_csv(tmp_path / "artifacts" / "hmm" / "hmm_wfo_metrics.csv")
    assert table["segment"].tolist() == [latest_key]
    assert table.loc[0, "accuracy_test"] == meta["recovery_accuracy_test"].value


def test_definitions_include_hmm_model_and_its_checks():
    from cryptorl_dagster.definitions import defs  # loads every stage's assets

    repo = defs.get_repository_def()
    assert dg.AssetKey("hmm_model") in repo.asset_graph.get_all_asset_keys()
    check_names = {k.name for k in repo.asset_graph.asset_check_keys}
    assert CHECKS <= check_names
