"""Features: names, normalisation on train rows only, FFD, volatility estimators, and
the look-ahead analysis catching planted leaks while passing the real feature set."""

import numpy as np
import pandas as pd
import pytest

from cryptorl_core.features import volatility as vol
from cryptorl_core.features.config import FeatureConfig
from cryptorl_core.features.ffd import ffd, ffd_weights, min_stationary_d
from cryptorl_core.features.pipeline import (
    build_segment_frame,
    fit_feature_params,
    transform_features,
)
from cryptorl_core.features.technical import is_unscaled
from cryptorl_core.lookahead import find_lookahead
from cryptorl_core.schema import PRICE_CLOSE_COL, SPLIT_COL, TRAIN, TRUE_REGIME_COL, feature_columns

CFG = FeatureConfig()


def expected_feature_columns(cfg: FeatureConfig) -> list[str]:
    """Every technical column the config yields for BTC, ETH and the three macro symbols."""
    cols = []
    for sym in ("BTC", "ETH"):
        cols += [f"{sym}_ffd_close", *(f"{sym}_ret_{h}h" for h in cfg.return_horizons),
                 *(f"{sym}_zclose_{w}" for w in cfg.zscore_windows),
                 *(f"{sym}_vol_{kind}_{cfg.vol_window}" for kind in ("park", "gk", "rs")),
                 *(f"{sym}_vol_rv_{w}" for w in cfg.rv_windows), f"{sym}_range_hl", f"{sym}_body",
                 *(f"{sym}_volume_z_{w}" for w in cfg.volume_windows), f"{sym}_dvolume_24",
                 f"{sym}_rsi_{cfg.rsi_period}", f"{sym}_ema_gap_{cfg.ema_fast}_{cfg.ema_slow}", f"{sym}_macd_hist"]
    cols += ["ETHBTC_ret_24h", f"ETHBTC_z_{cfg.cross_window}", f"BTCETH_corr_{cfg.cross_window}"]
    for sym in ("SPX", "NASDAQ", "DXY"):
        cols += [f"{sym}_ret_{cfg.macro_return_hours}h", f"{sym}_is_open"]
    return [*cols, "hour_sin", "hour_cos", "dow_sin", "dow_cos"]


def test_segment_frame_layout(segment_frame, raw_slice, latest_segment):
    cols = feature_columns(segment_frame)
    assert cols == expected_feature_columns(CFG)
    assert len(cols) == 2 * 22 + 3 + 3 * 2 + 4 == 57  # per crypto symbol, cross-asset, macro, calendar
    assert {"BTC_ffd_close", "BTC_vol_park_24", "BTC_vol_gk_24", "BTC_vol_rs_24", "ETHBTC_ret_24h",
            "SPX_is_open", "DXY_ret_24h", "hour_sin"} <= set(cols)
    assert segment_frame.index[0] == latest_segment.train_start
    assert segment_frame.index[-1] == latest_segment.test_end - pd.Timedelta(hours=1)
    assert (segment_frame[cols].dtypes == np.float32).all()
    assert not segment_frame[cols].isna().any().any()
    assert set(segment_frame[SPLIT_COL]) == {"train", "eval", "test", "purged"}
    np.testing.assert_allclose(segment_frame[PRICE_CLOSE_COL], raw_slice.loc[segment_frame.index, "BTC_close"])
    assert TRUE_REGIME_COL in segment_frame


def test_columns_are_stable_across_segments(synthetic_market):
    from cryptorl_core.segments import walk_forward_segments

    segs = walk_forward_segments(synthetic_market.start, synthetic_market.end)
    a, _, _ = build_segment_frame(synthetic_market.frame, segs[0], CFG)
    b, _, _ = build_segment_frame(synthetic_market.frame, segs[-1], CFG)
    assert feature_columns(a) == feature_columns(b)


def test_train_rows_are_standardised(segment_frame):
    train = segment_frame[segment_frame[SPLIT_COL] == TRAIN]
    scaled = [c for c in feature_columns(segment_frame) if not is_unscaled(c)]
    # Clipping at 10 sigma moves the moments a little; unclipped they are exactly 0 and 1.
    assert np.abs(train[scaled].mean()).max() < 0.05
    assert np.abs(train[scaled].std() - 1).max() < 0.1


def test_fit_ignores_everything_after_train(raw_slice, latest_segment):
    params, _ = fit_feature_params(raw_slice, latest_segment, CFG)
    tampered = raw_slice.copy()
    after = tampered.index >= latest_segment.train_end
    tampered.loc[after, [c for c in tampered.columns if c.endswith(("_close", "_open", "_high", "_low"))]] *= 3.0
    params2, _ = fit_feature_params(tampered, latest_segment, CFG)
    assert params.ffd_d == params2.ffd_d
    assert params.norm.mean == params2.norm.mean and params.norm.std == params2.norm.std
    assert params.norm.fit_start == str(latest_segment.train_start)
    assert params.norm.fit_end == str(latest_segment.train_end - pd.Timedelta(hours=1))


def test_ffd_weights_match_closed_form():
    np.testing.assert_allclose(ffd_weights(1.0, 1e-5, 100), [1.0, -1.0])
    np.testing.assert_allclose(ffd_weights(0.5, 1e-3, 100)[:3], [1.0, -0.5, -0.125])
    x = pd.Series(np.arange(10.0))
    np.testing.assert_allclose(ffd(x, 1.0, 1e-5, 100).to_numpy()[1:], np.ones(9))
    assert np.isnan(ffd(x, 1.0, 1e-5, 100).iloc[0])


def test_min_stationary_d_picks_small_d_for_random_walk():
    rng = np.random.default_rng(0)
    walk = pd.Series(np.cumsum(rng.normal(0, 0.01, 6000)))
    mask = np.ones(len(walk), bool)
    d, p = min_stationary_d(walk, mask, CFG.ffd_d_grid, CFG.ffd_threshold, CFG.ffd_max_width, 0.05, 1)
    assert 0.0 < d <= 1.0 and p < 0.05
    # The next smaller d on the grid fails the test: d is the smallest passing one.
    smaller = [g for g in CFG.ffd_d_grid if g < d]
    assert smaller, "a random walk needs some differencing"
    _, p_smaller = min_stationary_d(walk, mask, (smaller[-1],), CFG.ffd_threshold, CFG.ffd_max_width, 0.05, 1)
    assert p_smaller >= 0.05


def test_volatility_estimators_on_known_bars():
    n = 30
    o = pd.Series(np.full(n, 100.0))
    c = o * np.exp(0.002)
    h = o * np.exp(0.01)
    lo = o * np.exp(-0.01)
    park = vol.parkinson(h, lo, 24).iloc[-1]
    assert park == pytest.approx(np.sqrt(0.02**2 / (4 * np.log(2))))
    gk = vol.garman_klass(o, h, lo, c, 24).iloc[-1]
    assert gk == pytest.approx(np.sqrt(0.5 * 0.02**2 - (2 * np.log(2) - 1) * 0.002**2))
    rs = vol.rogers_satchell(o, h, lo, c, 24).iloc[-1]
    assert rs == pytest.approx(np.sqrt(0.008 * 0.01 + (-0.012) * (-0.01)))
    assert vol.parkinson(h, lo, 24).iloc[:23].isna().all()  # undefined until the window fills


def test_missing_symbols_drop_their_columns(raw_slice, latest_segment):
    btc_only = raw_slice[[c for c in raw_slice.columns if c.startswith("BTC_")]]
    frame, _, _ = build_segment_frame(btc_only, latest_segment, CFG)
    cols = feature_columns(frame)
    assert all(c.startswith("BTC_") or c.startswith(("hour_", "dow_")) for c in cols)
    assert not frame[cols].isna().any().any()


# ---- look-ahead analysis -------------------------------------------------------------

@pytest.fixture(scope="module")
def real_compute(raw_slice, latest_segment):
    params, _ = fit_feature_params(raw_slice, latest_segment, CFG)
    return lambda d: transform_features(d, params, CFG)


def test_real_feature_set_has_no_lookahead(real_compute, raw_slice):
    report = find_lookahead(real_compute, raw_slice, n_cuts=15, start=1440)
    assert report.ok, report.summary()
    assert len(report.cut_points) == 15


def _planted(real_compute, leak):
    def compute(d):
        out = real_compute(d)
        out["leaky"] = leak(d["BTC_close"])
        return out
    return compute


@pytest.mark.parametrize("name,leak", [
    ("shift(-1)", lambda c: np.log(c).diff().shift(-1)),
    ("centred rolling", lambda c: c.rolling(25, center=True, min_periods=1).mean()),
    ("full-sample normalisation", lambda c: (c - c.mean()) / c.std()),
])
def test_planted_leaks_are_caught(real_compute, raw_slice, name, leak):
    report = find_lookahead(_planted(real_compute, leak), raw_slice, n_cuts=8, start=1440)
    assert not report.ok, name
    assert report.biased_columns == ["leaky"]
    assert report.max_abs_diff["leaky"] > 0


def test_lookahead_rejects_too_short_data(real_compute, raw_slice):
    with pytest.raises(ValueError, match="too short"):
        find_lookahead(real_compute, raw_slice.iloc[:10], n_cuts=5, start=20)
