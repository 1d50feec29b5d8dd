"""Regime HMM: train-only reproducible fit, stable labels, causal filtered context, recovery
of the synthetic market's true regimes, and the reports a person reads."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest

from cryptorl_core.features.config import FeatureConfig
from cryptorl_core.features.pipeline import build_segment_frame
from cryptorl_core.lookahead import find_lookahead
from cryptorl_core.regime import (
    HMMConfig,
    RegimeFitError,
    RegimeFitWarning,
    RegimeModel,
    fit_regime_model,
    fit_window_inside,
    parameter_difference,
    regime_recovery,
)
from cryptorl_core.regime.filtering import (
    forward_filter,
    normalised_entropy,
    stationary_distribution,
)
from cryptorl_core.regime.model import hourly_transmat, input_matrix, stable_order
from cryptorl_core.regime.recovery import best_permutation_accuracy
from cryptorl_core.regime.report import (
    METRICS_FILE,
    metrics_table,
    plot_regimes,
    read_segment_metrics,
    segment_metrics,
    state_summary,
    transition_table,
    write_metrics_table,
    write_segment_metrics,
)
from cryptorl_core.schema import HMM_COLUMNS, SPLIT_COL, TEST, TRAIN, TRUE_REGIME_COL
from cryptorl_core.segments import walk_forward_segments

#: The stable order (up, flat, down, stress) on the synthetic market's regime numbers
#: (0 bull, 1 bear, 2 range, 3 crash).
SYNTHETIC_STATE_TO_REGIME = {0: 0, 1: 2, 2: 1, 3: 3}


@pytest.fixture(scope="module")
def model(segment_frame: pd.DataFrame) -> RegimeModel:
    return fit_regime_model(segment_frame, HMMConfig.quick())


@pytest.fixture(scope="module")
def filtered(model: RegimeModel, segment_frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return model.filter(segment_frame)


def test_fit_records_window_seeds_and_stable_order(model, segment_frame):
    train = segment_frame.index[segment_frame[SPLIT_COL] == TRAIN]
    cfg = HMMConfig.quick()
    assert model.fit_window["start"] == str(train[0]) and model.fit_window["end"] == str(train[-1])
    assert model.fit_window["n_train_rows"] == len(train) == 8640
    assert model.fit_window["n_fit_rows"] == len(range(0, len(train), cfg.fit_stride))
    assert model.seeds == cfg.seeds and model.best_seed in model.seeds
    assert len(model.restarts) == cfg.n_restarts
    assert sorted(model.mapping) == [0, 1, 2, 3]
    # Stable order: stress (highest volatility) last, the rest by mean return, descending.
    assert np.argmax(model.means[:, 1]) == 3
    assert np.all(np.diff(model.means[:3, 0]) < 0)
    assert model.diagnostics["converged"] and model.diagnostics["warnings"] == []
    assert np.allclose(model.transmat.sum(axis=1), 1.0)
    assert np.all(model.mean_durations() > 24)  # regimes last days, not hours


def test_fit_is_reproducible(model, segment_frame):
    again = fit_regime_model(segment_frame, HMMConfig.quick())
    assert parameter_difference(model, again) == 0.0
    assert again.restarts == model.restarts


def test_filter_matches_hmmlearn_forward_algorithm(model, segment_frame, filtered):
    probs, loglik = filtered
    hmm = model.to_hmmlearn()
    x = input_matrix(segment_frame, model.columns)
    # Same total likelihood as hmmlearn's forward pass, and at the last row the smoothed
    # posterior has no future left, so it equals the filtered distribution.
    assert loglik.sum() == pytest.approx(hmm.score(x), rel=1e-10)
    np.testing.assert_allclose(probs[-1], hmm.predict_proba(x)[-1], atol=1e-9)
    assert np.allclose(probs.sum(axis=1), 1.0)
    ctx = model.context(segment_frame)
    assert list(ctx.columns) == list(HMM_COLUMNS) and ctx.index.equals(segment_frame.index)
    assert ctx["hmm_entropy"].between(0.0, 1.0).all()


def test_forward_filter_on_a_tiny_hmm_matches_brute_force():
    rng = np.random.default_rng(0)
    transmat = rng.dirichlet(np.ones(3) * 2, size=3)
    log_b = rng.normal(size=(6, 3))
    init = stationary_distribution(transmat)
    assert np.allclose(init @ transmat, init)
    probs, loglik = forward_filter(log_b, transmat, init)
    # Brute force: the joint over every state path, marginalised to the last state of each prefix.
    import itertools
    for t in range(6):
        joint = np.zeros(3)
        for path in itertools.product(range(3), repeat=t + 1):
            p = init[path[0]] * np.exp(log_b[0, path[0]])
            for s in range(1, t + 1):
                p *= transmat[path[s - 1], path[s]] * np.exp(log_b[s, path[s]])
            joint[path[-1]] += p
        np.testing.assert_allclose(probs[t], joint / joint.sum(), rtol=1e-12)
        assert loglik[: t + 1].sum() == pytest.approx(np.log(joint.sum()), rel=1e-12)
    assert normalised_entropy(np.full((1, 4), 0.25))[0] == pytest.approx(1.0)
    assert normalised_entropy(np.eye(4)[:1])[0] == 0.0


def test_context_has_no_lookahead(model, segment_frame):
    report = find_lookahead(model.context, segment_frame, n_cuts=12)
    assert report.ok, report.summary()
    assert len(report.cut_points) == 12


def test_smoothed_posteriors_fail_the_lookahead_check(model, segment_frame):
    hmm = model.to_hmmlearn()

    def smoothed(frame: pd.DataFrame) -> pd.DataFrame:
        post = hmm.predict_proba(input_matrix(frame, model.columns))  # forward-backward
        return pd.DataFrame(post, index=frame.index, columns=list(HMM_COLUMNS[:4]))

    report = find_lookahead(smoothed, segment_frame, n_cuts=12)
    assert not report.ok
    assert set(report.biased_columns) <= set(HMM_COLUMNS[:4]) and len(report.biased_columns) >= 2


def test_parameters_come_from_train_rows_only(model, segment_frame, latest_segment):
    truncated = segment_frame.loc[segment_frame.index < latest_segment.train_end]
    assert parameter_difference(model, fit_regime_model(truncated, HMMConfig.quick())) == 0.0
    # Scrambling every non-train row changes nothing either.
    scrambled = segment_frame.copy()
    later = scrambled[SPLIT_COL] != TRAIN
    scrambled.loc[later, list(model.columns)] = np.float32(7.0)
    assert parameter_difference(model, fit_regime_model(scrambled, HMMConfig.quick())) == 0.0
    assert fit_window_inside(model, latest_segment.train_start, latest_segment.train_end)
    assert not fit_window_inside(model, latest_segment.train_start, pd.Timestamp(model.fit_window["end"]))


def test_regime_recovery_on_synthetic_market(model, segment_frame, filtered):
    rec = regime_recovery(segment_frame, filtered[0])
    majority = segment_frame[TRUE_REGIME_COL].value_counts(normalize=True).max()
    print(f"\nregime recovery (latest segment, filtered argmax vs true_regime): "
          f"test accuracy {rec['accuracy_test']:.3f}, test ARI {rec['ari_test']:.3f}, "
          f"all-rows accuracy {rec['accuracy_all']:.3f}, all-rows ARI {rec['ari_all']:.3f} "
          f"(majority-class share {majority:.3f}); state->regime {rec['state_to_regime']}")
    assert rec["n_test_rows"] == (segment_frame[SPLIT_COL] == TEST).sum()
    assert rec["accuracy_test"] >= 0.70 and rec["ari_test"] >= 0.40
    assert rec["accuracy_all"] >= 0.80 and rec["ari_all"] >= 0.60
    assert rec["accuracy_all"] > majority + 0.2
    assert rec["state_to_regime"] == SYNTHETIC_STATE_TO_REGIME


def test_stable_labels_mean_the_same_in_another_segment(synthetic_market):
    segment = walk_forward_segments(synthetic_market.start, synthetic_market.end)[-5]
    frame, _, _ = build_segment_frame(synthetic_market.frame, segment, FeatureConfig())
    other = fit_regime_model(frame, HMMConfig.quick())
    rec = regime_recovery(frame, other.filter(frame)[0])
    print(f"\nregime recovery ({segment.key}): test accuracy {rec['accuracy_test']:.3f}, "
          f"test ARI {rec['ari_test']:.3f}, all-rows accuracy {rec['accuracy_all']:.3f}")
    assert rec["state_to_regime"] == SYNTHETIC_STATE_TO_REGIME
    assert rec["accuracy_test"] >= 0.70


def test_bad_fit_warns_or_raises_in_strict_mode(segment_frame):
    capped = HMMConfig(n_restarts=1, n_iter=1)
    with pytest.warns(RegimeFitWarning, match="did not converge"):
        model = fit_regime_model(segment_frame, capped)
    assert not model.diagnostics["converged"] and model.diagnostics["warnings"]
    with pytest.warns(RegimeFitWarning, match="degenerate"):
        fit_regime_model(segment_frame, HMMConfig(n_restarts=1, min_occupancy=0.3))
    with pytest.raises(RegimeFitError, match="did not converge"):
        fit_regime_model(segment_frame, HMMConfig(n_restarts=1, n_iter=1, strict=True))
    with pytest.raises(ValueError, match="no train rows"):
        fit_regime_model(segment_frame[segment_frame[SPLIT_COL] != TRAIN])


def test_model_survives_json_and_pickle(model, segment_frame):
    expected = model.context(segment_frame.iloc[:2000])
    from_json = RegimeModel.from_dict(json.loads(json.dumps(model.to_dict())))
    from_pickle = pickle.loads(pickle.dumps(model))
    for restored in (from_json, from_pickle):
        assert parameter_difference(model, restored) == 0.0
        assert restored.fit_window == model.fit_window and restored.seeds == model.seeds
        pd.testing.assert_frame_equal(restored.context(segment_frame.iloc[:2000]), expected)
    assert HMMConfig.from_dict(model.config) == HMMConfig.quick()


def test_stride_conversion_and_stable_order_helpers():
    strided = np.array([[0.9, 0.1], [0.3, 0.7]])
    hourly = hourly_transmat(strided, stride=12)
    assert np.allclose(hourly.sum(axis=1), 1.0)
    # Mean duration in hours is preserved: 12 / (1 - 0.9) = 120 h.
    assert 1.0 / (1.0 - hourly[0, 0]) == pytest.approx(120.0)
    means = np.array([[0.1, 5.0], [0.5, 0.2], [-0.4, 1.0], [0.0, -0.5]])
    assert stable_order(means).tolist() == [1, 3, 2, 0]


def test_best_permutation_accuracy_ignores_state_numbering():
    true = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    acc, mapping = best_permutation_accuracy((true + 1) % 4, true, 4)
    assert acc == 1.0 and mapping == {1: 0, 2: 1, 3: 2, 0: 3}
    acc, _ = best_permutation_accuracy(np.zeros(8, dtype=int), true, 4)
    assert acc == 0.25


def test_reports_and_cross_segment_table(model, segment_frame, filtered, tmp_path):
    probs, loglik = filtered
    assert transition_table(model).shape == (4, 4)
    states = state_summary(model, segment_frame, probs)
    assert list(states.index) == ["s0", "s1", "s2", "s3"]
    # The stress state is the most volatile in realised returns too.
    assert states["vol_pct_per_h"].idxmax() == "s3"
    png = plot_regimes(segment_frame, probs, title="test")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    row = segment_metrics("2025-Q4", model, segment_frame, loglik, regime_recovery(segment_frame, probs))
    assert read_segment_metrics(tmp_path) is None
    write_segment_metrics(tmp_path, row)
    assert read_segment_metrics(tmp_path) == pytest.approx(row)  # JSON keeps every value
    rows = {"2025-Q4": {**row, "test_loglik": -1.0}, "2025-Q2": {**row, "segment": "2025-Q2"},
            "2019-Q1": row}  # not a listed segment: ignored
    table, missing = metrics_table(["2025-Q2", "2025-Q3", "2025-Q4"], rows)
    assert table["segment"].tolist() == ["2025-Q2", "2025-Q4"] and missing == ["2025-Q3"]
    assert list(table.columns) == list(row)  # the columns of one segment's row, in its order
    write_metrics_table(table, tmp_path / "hmm" / METRICS_FILE)
    on_disk = pd.read_csv(tmp_path / "hmm" / METRICS_FILE)
    assert on_disk["segment"].tolist() == ["2025-Q2", "2025-Q4"]
    assert on_disk.loc[1, "test_loglik"] == -1.0
    assert np.isfinite(on_disk.loc[0, ["train_loglik", "test_loglik", "accuracy_test"]].astype(float)).all()
    assert [p.name for p in (tmp_path / "hmm").iterdir()] == [METRICS_FILE]  # no temporary file left
    empty, missing = metrics_table(["2025-Q3"], {})
    assert empty.empty and list(empty.columns) == ["segment"] and missing == ["2025-Q3"]
