"""Baseline target-position generators (price rules, vol target, regime rule, oracle):
hand-computed cases and causality."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cryptorl_core.backtest.baselines import (
    baseline_positions,
    buy_and_hold,
    flat,
    momentum,
    segment_baseline_positions,
    sma_crossover,
    trailing_mean,
)
from cryptorl_core.backtest.config import BacktestConfig
from cryptorl_core.backtest.regime_baselines import (
    BEAR,
    BULL,
    CRASH,
    DOWN,
    FLAT,
    RANGE,
    STRESS,
    UP,
    regime_oracle_positions,
    regime_rule_positions,
)
from cryptorl_core.lookahead import find_lookahead
from cryptorl_core.regime.model import stable_order
from cryptorl_core.schema import HMM_PROB_COLUMNS
from cryptorl_core.vol_target import trailing_volatility, vol_target, vol_target_level

TENT = [1.0, 2.0, 3.0, 4.0, 5.0, 4.0, 3.0, 2.0, 1.0]


def test_constant_baselines():
    px = pd.Series([3.0, 2.0, 5.0])
    np.testing.assert_array_equal(buy_and_hold(px), [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(flat(px), [0.0, 0.0, 0.0])


def test_trailing_mean_hand():
    # window 3 over [1, 2, 3, 4, 5]: NaN, NaN, 2, 3, 4
    np.testing.assert_allclose(trailing_mean([1, 2, 3, 4, 5], 3), [np.nan, np.nan, 2, 3, 4])
    assert np.isnan(trailing_mean([1, 2], 3)).all()


def test_sma_crossover_hand():
    # fast (2): -, 1.5, 2.5, 3.5, 4.5, 4.5, 3.5, 2.5, 1.5
    # slow (4): -, -, -, 2.5, 3.5, 4.0, 4.0, 3.5, 2.5
    # fast > slow at t = 3, 4, 5; below at t = 6, 7, 8; no slow SMA before t = 3
    np.testing.assert_array_equal(sma_crossover(TENT, 2, 4), [0, 0, 0, 1, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(
        sma_crossover(TENT, 2, 4, allow_short=True), [0, 0, 0, 1, 1, 1, -1, -1, -1]
    )
    # equal SMAs (constant prices) are not "fast above slow", whatever the float rounding
    np.testing.assert_array_equal(sma_crossover([0.1] * 10, 3, 7), np.zeros(10))
    with pytest.raises(ValueError):
        sma_crossover(TENT, 4, 4)


def test_momentum_hand():
    px = [100.0, 101.0, 99.0, 102.0, 102.0, 98.0, 102.0]
    # lookback 2: t2 99/100 -> -1, t3 102/101 -> +1, t4 102/99 -> +1, t5 98/102 -> -1,
    # t6 102/102 -> 0 (no move, no position)
    np.testing.assert_array_equal(momentum(px, 2, long_only=False), [0, 0, -1, 1, 1, -1, 0])
    np.testing.assert_array_equal(momentum(px, 2, long_only=True), [0, 0, 0, 1, 1, 0, 0])
    np.testing.assert_array_equal(momentum(px[:2], 2), [0, 0])  # not enough history


@pytest.mark.parametrize("cut", [1, 5, 47, 48, 49, 100, 333, 599])
def test_baselines_are_causal(cut):
    """Truncating the input, or changing the future, never changes earlier decisions."""
    rng = np.random.default_rng(7)
    px = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 600)))
    other_future = px.copy()
    other_future[cut:] *= np.exp(rng.normal(0, 0.05, 600 - cut))
    gens = {
        "sma": lambda p: sma_crossover(p, 12, 48),
        "sma_short": lambda p: sma_crossover(p, 12, 48, allow_short=True),
        "mom": lambda p: momentum(p, 24, long_only=False),
        "mom_long": lambda p: momentum(p, 24),
        "bh": buy_and_hold,
        "flat": flat,
    }
    for name, gen in gens.items():
        full = gen(px)
        assert len(full) == len(px), name
        np.testing.assert_array_equal(gen(px[:cut]), full[:cut], err_msg=name)
        np.testing.assert_array_equal(gen(other_future)[:cut], full[:cut], err_msg=name)


def test_baseline_positions_from_config():
    px = np.linspace(100.0, 200.0, 300)  # steady uptrend
    out = baseline_positions(px, BacktestConfig.quick())  # sma 12/48, momentum 24
    assert set(out) == {"buy_and_hold", "flat", "sma_crossover", "momentum"}
    assert all(len(v) == 300 for v in out.values())
    # in an uptrend the fast SMA is above the slow one once both exist (t >= 47)
    np.testing.assert_array_equal(out["sma_crossover"][:47], 0.0)
    np.testing.assert_array_equal(out["sma_crossover"][47:], 1.0)
    np.testing.assert_array_equal(out["momentum"][:24], 0.0)
    np.testing.assert_array_equal(out["momentum"][24:], 1.0)


# ---------------------------------------------------------------------------------------
# vol_target, regime_rule, regime_oracle
# ---------------------------------------------------------------------------------------


def test_trailing_volatility_hand():
    px = np.exp(np.cumsum([0.0, 0.01, -0.02, 0.03, 0.0]))  # log returns 0.01, -0.02, 0.03, 0.0
    vol = trailing_volatility(px, 3)
    assert np.isnan(vol[:3]).all()
    assert vol[3] == pytest.approx(np.std([0.01, -0.02, 0.03], ddof=1))
    assert vol[4] == pytest.approx(np.std([-0.02, 0.03, 0.0], ddof=1))
    with pytest.raises(ValueError):
        trailing_volatility(px, 1)


def test_vol_target_scales_inversely_and_caps():
    # Two calm returns of size 0.01 then loud ones of size 0.04 (alternating sign).
    rets = [0.0, 0.01, -0.01, 0.01, -0.01, 0.04, -0.04, 0.04, -0.04]
    px = 100 * np.exp(np.cumsum(rets))
    calm = np.std([0.01, -0.01], ddof=1)
    pos = vol_target(px, 2, target_vol=calm)
    np.testing.assert_array_equal(pos[:2], 0.0)  # no full window yet
    np.testing.assert_allclose(pos[2:5], 1.0)  # calm: at target, capped at 1
    np.testing.assert_allclose(pos[6:], calm / np.std([0.04, -0.04], ddof=1))  # loud: a quarter
    assert pos[6] == pytest.approx(0.25)
    # Capped at max_position, never below 0, full position on zero volatility.
    assert vol_target(px, 2, target_vol=1.0, max_position=0.6)[2:].max() == pytest.approx(0.6)
    np.testing.assert_array_equal(vol_target(np.full(6, 50.0), 2, target_vol=0.01)[2:], 1.0)
    assert (pos >= 0).all()


def test_vol_target_level_is_the_median_over_fit_rows_only():
    vol = np.array([np.nan, 1.0, 2.0, 9.0, 100.0, 200.0])
    train = np.array([True, True, True, True, False, False])
    assert vol_target_level(vol, train) == 2.0  # median of 1, 2, 9; later rows ignored
    with pytest.raises(ValueError):
        vol_target_level(vol, np.array([True, False, False, False, False, False]))


def test_regime_rule_formula_on_hand_probabilities():
    probs = pd.DataFrame(
        [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0],
         [0.5, 0.2, 0.2, 0.1], [0.1, 0.2, 0.3, 0.4]],
        columns=list(HMM_PROB_COLUMNS),
    )
    # p(up) - p(down) - p(stress): up +1, flat 0, down -1, stress -1, mixes in between.
    np.testing.assert_allclose(regime_rule_positions(probs), [1, 0, -1, -1, 0.2, -0.6])
    np.testing.assert_allclose(regime_rule_positions(probs, long_only=True), [1, 0, 0, 0, 0.2, 0])
    # An array with the entropy as a fifth column works the same; weights are configurable.
    arr = np.column_stack([probs.to_numpy(), np.zeros(len(probs))])
    np.testing.assert_allclose(regime_rule_positions(arr), regime_rule_positions(probs))
    np.testing.assert_allclose(regime_rule_positions(probs, weights=(1, 0, 0, 0)), probs["hmm_p0"])
    with pytest.raises(ValueError):
        regime_rule_positions(probs.drop(columns=["hmm_p3"]))


def test_regime_state_order_matches_the_regime_stage():
    """UP, FLAT, DOWN, STRESS are the regime stage's stable order: stress = highest volatility,
    then by mean return, descending."""
    means = np.array([[-0.5, 1.0], [0.1, 0.5], [0.8, 0.7], [-2.0, 3.0]])  # (return, volatility)
    order = stable_order(means)  # order[stable] = original
    assert order[UP] == 2 and order[FLAT] == 1 and order[DOWN] == 0 and order[STRESS] == 3


def test_regime_oracle_mapping():
    true = np.array([BULL, BEAR, RANGE, CRASH, BULL], dtype=np.int8)
    np.testing.assert_array_equal(regime_oracle_positions(true), [1, -1, 0, -1, 1])
    np.testing.assert_array_equal(regime_oracle_positions(true, (0.5, 0, 0, 0)), [0.5, 0, 0, 0, 0.5])
    with pytest.raises(ValueError):
        regime_oracle_positions(np.array([0, 4]))
    with pytest.raises(ValueError):
        regime_oracle_positions(np.array([0.0, 1.0]))  # codes, not floats


@pytest.mark.parametrize("cut", [170, 171, 250, 333, 599])
def test_vol_target_is_causal(cut):
    """With its fitted target volatility fixed, truncating or changing the future never changes
    an earlier vol_target decision."""
    rng = np.random.default_rng(3)
    px = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 600) * np.repeat([1.0, 3.0, 0.5], 200)))
    other_future = px.copy()
    other_future[cut:] *= np.exp(np.cumsum(rng.normal(0, 0.05, 600 - cut)))
    full = vol_target(px, 168, target_vol=0.01)
    assert 0 < full[168:].min() < full[168:].max() <= 1.0  # it does move
    np.testing.assert_array_equal(vol_target(px[:cut], 168, 0.01), full[:cut])
    np.testing.assert_array_equal(vol_target(other_future, 168, 0.01)[:cut], full[:cut])


@pytest.fixture(scope="module")
def regime_model(segment_frame):
    from cryptorl_core.regime import HMMConfig, fit_regime_model

    return fit_regime_model(segment_frame, HMMConfig.quick())


def test_regime_rule_is_causal_on_the_fitted_hmm(segment_frame, regime_model):
    """Truncation test of the regime rules through the real forward filter: row t's decision
    is the same whether the frame ends at t or runs on."""

    def rules(data: pd.DataFrame) -> pd.DataFrame:
        context = regime_model.context(data)
        return pd.DataFrame({"rule": regime_rule_positions(context),
                             "long_only": regime_rule_positions(context, long_only=True)}, index=data.index)

    full = rules(segment_frame)
    assert full["rule"].min() < -0.5 and full["rule"].max() > 0.5  # the rule really switches
    report = find_lookahead(rules, segment_frame, n_cuts=25, atol=1e-9)
    assert report.ok, report.summary()


def test_every_segment_baseline_is_causal_after_the_train_window(segment_frame, regime_model):
    """All baselines of a segment, the regime rules on the model's own context and the oracle
    included: truncating the frame anywhere after the train rows (whose statistics fit the
    vol target) never changes an earlier decision."""
    cfg = BacktestConfig()

    def all_targets(data: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(segment_baseline_positions(data, cfg, regime_model), index=data.index)

    full = all_targets(segment_frame)
    assert list(full.columns) == ["buy_and_hold", "flat", "sma_crossover", "momentum", "vol_target",
                                  "regime_rule", "regime_rule_long_only", "regime_oracle"]
    first_after_train = int(np.flatnonzero(segment_frame["split"].to_numpy() == "train")[-1]) + 1
    report = find_lookahead(all_targets, segment_frame, n_cuts=12, start=first_after_train)
    assert report.ok, report.summary()


def test_segment_baselines_depend_on_their_inputs(segment_frame, regime_model):
    cfg = BacktestConfig()
    without = segment_baseline_positions(segment_frame.drop(columns=["true_regime"]), cfg)
    assert set(without) == {"buy_and_hold", "flat", "sma_crossover", "momentum", "vol_target"}
    out = segment_baseline_positions(segment_frame, cfg, regime_model.context(segment_frame))
    np.testing.assert_array_equal(out["regime_oracle"], regime_oracle_positions(segment_frame["true_regime"]))
    np.testing.assert_allclose(out["regime_rule"], regime_rule_positions(regime_model, frame=segment_frame))
    # vol_target's level is the train rows' median: scaling the test prices' moves changes only test rows.
    closes = segment_frame["price_close"].to_numpy()
    train = segment_frame["split"].to_numpy() == "train"
    level = vol_target_level(trailing_volatility(closes, cfg.vol_target_window_h), train)
    np.testing.assert_allclose(out["vol_target"], vol_target(closes, cfg.vol_target_window_h, level))
    assert 0.0 <= out["vol_target"].min() and out["vol_target"].max() <= 1.0
    louder = segment_frame.copy()
    rets = np.diff(np.log(closes))
    test_rows = np.flatnonzero(~train)
    rets[test_rows[0]:] *= 3.0
    louder["price_close"] = closes[0] * np.exp(np.concatenate([[0.0], np.cumsum(rets)]))
    moved = segment_baseline_positions(louder, cfg)["vol_target"]
    np.testing.assert_allclose(moved[train], out["vol_target"][train], rtol=1e-12)  # rebuilt closes: rounding only
    assert moved[test_rows[-1]] < out["vol_target"][test_rows[-1]]
