"""Tests of the deterministic synthetic market generator."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pandas as pd
import pytest
from scipy.stats import kurtosis

from cryptorl_core.data.market import MarketData
from cryptorl_core.data.synthetic import (
    SyntheticMarketConfig,
    generate_synthetic_market,
    stationary_distribution,
    transition_matrix,
)
from cryptorl_core.features import volatility as vol
from cryptorl_core.schema import CRYPTO_SYMBOLS, MACRO_SYMBOLS, OHLCV, TRUE_REGIME_COL

SYMBOLS = (*CRYPTO_SYMBOLS, *MACRO_SYMBOLS)
BULL, BEAR, RANGE, CRASH = range(4)


@pytest.fixture(scope="module")
def market() -> MarketData:
    return generate_synthetic_market()


@pytest.fixture(scope="module")
def frame(market: MarketData) -> pd.DataFrame:
    return market.frame


@pytest.fixture(scope="module")
def btc_ret(frame: pd.DataFrame) -> pd.Series:
    return np.log(frame["BTC_close"]).diff()


def _spells(regimes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Label and length of each run of equal regimes."""
    starts = np.r_[0, np.flatnonzero(np.diff(regimes)) + 1]
    lengths = np.diff(np.r_[starts, len(regimes)])
    return regimes[starts], lengths


def test_deterministic_and_seed_sensitive(frame: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(generate_synthetic_market().frame, frame)
    other = generate_synthetic_market(SyntheticMarketConfig(seed=8)).frame
    assert not np.allclose(other["BTC_close"], frame["BTC_close"])


def test_generation_is_fast() -> None:
    t0 = time.perf_counter()
    generate_synthetic_market()
    assert time.perf_counter() - t0 < 2.0


def test_index_columns_and_metadata(market: MarketData, frame: pd.DataFrame) -> None:
    idx = frame.index
    assert isinstance(idx, pd.DatetimeIndex) and idx.name == "timestamp"
    assert str(idx.tz) == "UTC"
    assert idx[0] == pd.Timestamp("2019-01-01 00:00", tz="UTC")
    assert idx[-1] == pd.Timestamp("2025-12-31 23:00", tz="UTC")
    assert ((idx[1:] - idx[:-1]) == pd.Timedelta(hours=1)).all()

    expected = {f"{s}_{f}" for s in SYMBOLS for f in OHLCV}
    expected |= {f"{s}_is_open" for s in MACRO_SYMBOLS} | {TRUE_REGIME_COL}
    assert set(frame.columns) == expected and len(frame.columns) == len(expected)
    assert frame[TRUE_REGIME_COL].dtype == np.int8
    assert set(np.unique(frame[TRUE_REGIME_COL])) == {0, 1, 2, 3}
    assert not frame.isna().any().any()

    assert market.source == "synthetic"
    assert market.symbols == list(SYMBOLS)
    assert any("seed=7" in note for note in market.notes)


def test_ohlcv_valid(frame: pd.DataFrame, btc_ret: pd.Series) -> None:
    for s in SYMBOLS:
        open_, high, low, close, volume = (frame[f"{s}_{f}"].to_numpy() for f in OHLCV)
        assert (np.minimum.reduce([open_, high, low, close]) > 0).all(), s
        assert (high >= np.maximum(open_, close)).all(), s
        assert (low <= np.minimum(open_, close)).all(), s
        assert (volume >= 0).all(), s
    # Crypto opens sit close to the previous close: gaps are small next to the bar moves.
    gap = np.log(frame["BTC_open"] / frame["BTC_close"].shift()).abs()
    assert gap.median() < 0.1 * btc_ret.abs().median()


def test_range_estimators_are_informative(frame: pd.DataFrame, btc_ret: pd.Series) -> None:
    """The feature code's range estimators track realised volatility on the synthetic bars."""
    o, h, lo, c = (frame[f"BTC_{f}"] for f in ("open", "high", "low", "close"))
    realised = vol.realised(btc_ret, 24)
    for estimate in (vol.parkinson(h, lo, 24), vol.garman_klass(o, h, lo, c, 24), vol.rogers_satchell(o, h, lo, c, 24)):
        assert estimate.corr(realised) > 0.9
        assert 0.8 < (estimate / realised).median() < 1.25


def test_macro_session_hours(frame: pd.DataFrame) -> None:
    local = frame.index.tz_convert("America/New_York")
    in_session = (local.dayofweek < 5) & (local.hour >= 9) & (local.hour <= 15)
    for s in MACRO_SYMBOLS:
        is_open = frame[f"{s}_is_open"].to_numpy()
        assert set(np.unique(is_open)) == {0.0, 1.0}
        np.testing.assert_array_equal(is_open == 1.0, in_session)
        volume = frame[f"{s}_volume"].to_numpy()
        assert (volume[in_session] > 0).all() and (volume[~in_session] == 0).all()
    # DST-aware: 09:00 New York is 14:00 UTC in winter and 13:00 UTC in summer.
    is_open = frame["SPX_is_open"]
    assert is_open[pd.Timestamp("2019-01-07 14:00", tz="UTC")] == 1.0
    assert is_open[pd.Timestamp("2019-01-07 13:00", tz="UTC")] == 0.0
    assert is_open[pd.Timestamp("2019-07-08 13:00", tz="UTC")] == 1.0
    assert is_open[pd.Timestamp("2019-07-08 20:00", tz="UTC")] == 0.0
    assert frame.loc["2019-01-05", "SPX_is_open"].eq(0.0).all()  # a Saturday
    # Seven bars on every weekday covered by the frame.
    weekdays = pd.date_range("2019-01-01", "2025-12-31", freq="D")
    assert int(is_open.sum()) == 7 * int((weekdays.dayofweek < 5).sum())


def test_macro_forward_filled_from_past_only(frame: pd.DataFrame) -> None:
    config = SyntheticMarketConfig()
    start_price = {a.symbol: a.start_price for a in config.macro_assets}
    for s in MACRO_SYMBOLS:
        is_open = frame[f"{s}_is_open"].to_numpy() == 1.0
        close = frame[f"{s}_close"].to_numpy()
        # Expected carried value: the last session close at or before each hour.
        last_close = (
            pd.Series(np.where(is_open, close, np.nan)).ffill().fillna(start_price[s]).to_numpy()
        )
        for f in ("open", "high", "low", "close"):
            np.testing.assert_array_equal(
                frame[f"{s}_{f}"].to_numpy()[~is_open], last_close[~is_open]
            )
        # Before the first session bar only the configured level is known (no back-fill).
        first = np.argmax(is_open)
        assert first > 0 and (close[:first] == start_price[s]).all()
        assert close[first] != start_price[s]


def test_regimes_persistent_and_all_present(frame: pd.DataFrame) -> None:
    config = SyntheticMarketConfig()
    regimes = frame[TRUE_REGIME_COL].to_numpy()
    shares = np.bincount(regimes, minlength=4) / len(regimes)
    assert (shares > 0.02).all() and (shares < 0.6).all()
    assert shares[CRASH] < min(shares[BULL], shares[BEAR], shares[RANGE])
    labels, lengths = _spells(regimes)
    mean_duration = np.array([lengths[labels == k].mean() for k in range(4)])
    assert (mean_duration > 48).all()  # days to weeks, not hours
    assert mean_duration[CRASH] < mean_duration[[BULL, BEAR, RANGE]].min()
    ratio = mean_duration / np.asarray(config.mean_duration_hours)
    assert ((ratio > 0.5) & (ratio < 2.0)).all()


def test_transition_matrix_and_stationary_distribution(frame: pd.DataFrame) -> None:
    config = SyntheticMarketConfig()
    p = transition_matrix(config)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_allclose(np.diag(p), 1.0 - 1.0 / np.asarray(config.mean_duration_hours))
    pi = stationary_distribution(config)
    np.testing.assert_allclose(pi @ p, pi, atol=1e-12)
    shares = np.bincount(frame[TRUE_REGIME_COL], minlength=4) / len(frame)
    assert np.abs(shares - pi).max() < 0.15


def test_per_regime_btc_statistics(frame: pd.DataFrame, btc_ret: pd.Series) -> None:
    regimes = frame[TRUE_REGIME_COL]
    mean = btc_ret.groupby(regimes).mean()
    vol = btc_ret.groupby(regimes).std()
    assert vol[CRASH] > vol[BEAR] > vol[BULL] > vol[RANGE]
    assert 0.0025 < vol[RANGE] and vol[CRASH] < 0.03  # ~0.3% .. ~2% hourly
    assert mean[BULL] > 3e-4 and mean[BEAR] < -3e-4 and mean[CRASH] < mean[BEAR]
    assert abs(mean[RANGE]) < 1e-4
    volume = frame["BTC_volume"].groupby(regimes).mean()
    assert volume[CRASH] > volume[BEAR] > volume[RANGE]


def test_fat_tails(frame: pd.DataFrame, btc_ret: pd.Series) -> None:
    assert kurtosis(btc_ret.dropna()) > 5.0
    # Tails are fat inside one regime too, not only from mixing regime volatilities.
    in_range = btc_ret[frame[TRUE_REGIME_COL] == RANGE].dropna()
    assert kurtosis(in_range) > 1.0


def test_volatility_clustering(frame: pd.DataFrame, btc_ret: pd.Series) -> None:
    a = btc_ret.abs().to_numpy()[1:]
    acf = [np.corrcoef(a[:-lag], a[lag:])[0, 1] for lag in range(1, 25)]
    assert min(acf) > 0.1
    # Within a single regime the GARCH-style multiplier still clusters volatility.
    regimes = frame[TRUE_REGIME_COL].to_numpy()[1:]
    both = (regimes[:-1] == RANGE) & (regimes[1:] == RANGE)
    assert np.corrcoef(a[:-1][both], a[1:][both])[0, 1] > 0.02


def test_btc_eth_correlated(frame: pd.DataFrame, btc_ret: pd.Series) -> None:
    eth_ret = np.log(frame["ETH_close"]).diff()
    assert 0.7 < btc_ret.corr(eth_ret) < 0.9
    assert eth_ret.std() > btc_ret.std()


def test_macro_linked_to_regime(frame: pd.DataFrame) -> None:
    session = frame["SPX_is_open"] == 1.0
    regimes = frame.loc[session, TRUE_REGIME_COL]
    rets = {s: np.log(frame.loc[session, f"{s}_close"]).diff() for s in MACRO_SYMBOLS}
    spx_mean = rets["SPX"].groupby(regimes).mean()
    assert spx_mean[CRASH] < 0 < spx_mean[BULL]
    assert rets["SPX"].groupby(regimes).std()[CRASH] == rets["SPX"].groupby(regimes).std().max()
    assert rets["DXY"].groupby(regimes).mean()[CRASH] > 0
    assert rets["NASDAQ"].corr(rets["SPX"]) > 0.8
    assert rets["DXY"].corr(rets["SPX"]) < -0.3


def test_prices_in_sane_range(frame: pd.DataFrame) -> None:
    bounds = {
        "BTC": (500, 1e6),
        "ETH": (10, 1e5),
        "SPX": (500, 2e4),
        "NASDAQ": (1e3, 5e4),
        "DXY": (50, 200),
    }
    for s, (lo, hi) in bounds.items():
        close = frame[f"{s}_close"]
        assert lo < close.min() and close.max() < hi, s
    assert 9_000 < frame["BTC_close"].iloc[0] < 11_000


def test_hmm_recovers_regimes(frame: pd.DataFrame, btc_ret: pd.Series) -> None:
    hmm = pytest.importorskip("hmmlearn.hmm")
    threadpoolctl = pytest.importorskip("threadpoolctl")
    obs = pd.concat([btc_ret.rolling(24).sum(), np.log(btc_ret.rolling(24).std())], axis=1).dropna()
    truth = frame.loc[obs.index, TRUE_REGIME_COL].to_numpy()
    x = ((obs - obs.mean()) / obs.std()).to_numpy()
    fit_rows = x[::8]  # every 8th hour is plenty to fit and keeps the test fast
    # A few EM restarts, keeping the best likelihood, as the regime stage does.
    # One BLAS thread: the 2x2 covariance algebra is slowed ~20x by thread oversubscription.
    with threadpoolctl.threadpool_limits(1):
        models = [
            hmm.GaussianHMM(4, covariance_type="full", n_iter=30, tol=1e-2, random_state=seed).fit(
                fit_rows
            )
            for seed in range(3)
        ]
        states = max(models, key=lambda m: m.score(fit_rows)).predict(x)
    accuracy = max(
        np.mean(np.asarray(perm)[states] == truth) for perm in itertools.permutations(range(4))
    )
    assert accuracy > 0.75


@pytest.mark.parametrize(
    "bad",
    [
        {"drift": (0.0, 0.0, 0.0)},
        {
            "jump_probs": (
                (0.5, 0.5, 0, 0),
                (0.3, 0, 0.4, 0.3),
                (0.45, 0.4, 0, 0.15),
                (0.2, 0.5, 0.3, 0),
            )
        },
        {"tail_df": 2.0},
        {"btc_eth_corr": 1.0},
        {"mean_duration_hours": (336.0, 240.0, 288.0, 1.0)},
    ],
)
def test_config_validation(bad: dict) -> None:
    with pytest.raises(ValueError):
        SyntheticMarketConfig(**bad)


def test_momentum_rule_profits(btc_ret: pd.Series) -> None:
    # A trader reading recent returns can profit: long/short the sign of the last 72 h,
    # acting at the next bar and paying 5 bps per unit of position change.
    lookback, cost = 72, 5e-4
    position = np.sign(btc_ret.rolling(lookback).sum()).fillna(0.0)
    pnl = position.shift(1) * btc_ret - cost * position.diff().abs().shift(1)
    pnl = pnl.dropna()
    assert pnl.sum() > 0
    assert pnl.mean() / pnl.std() * np.sqrt(24 * 365) > 1.0  # annualised Sharpe
