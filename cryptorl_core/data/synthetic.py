"""Deterministic synthetic hourly market: the project's embedded default data (no network).

The generator is a 4-regime Markov-switching process (0 bull, 1 bear, 2 range, 3 crash,
see :data:`~cryptorl_core.schema.REGIME_NAMES`) sampled hourly:

1. **Regimes.** A Markov chain with persistent states: regime ``k`` lasts a geometric
   number of hours with mean ``mean_duration_hours[k]`` (days to weeks; crash is
   short), then jumps to another regime with probabilities ``jump_probs[k]``. This is
   exactly an hourly chain with self-transition ``1 - 1 / mean_duration_hours[k]``
   (:func:`transition_matrix`).
2. **Crypto returns.** BTC log return of bar ``t`` in regime ``k`` is
   ``drift[k] + vol[k] * h_t * z_t`` with ``z_t`` a unit-variance Student-t draw (fat
   tails) and ``h_t`` an EGARCH(1,1)-style volatility multiplier driven by past
   ``|z|`` (volatility clustering on top of the regime level, normalised to unit mean
   variance). ETH loads on the same regime with a higher beta and volatility and a
   shock correlated with BTC's.
3. **Price level.** Log prices mean-revert mildly (half-life of months) towards a
   slowly growing anchor, so seven years of regime drifts never explode or collapse.
4. **Bars.** The open gaps slightly from the previous close; high and low are the
   exact extremes of a Brownian bridge from open to close with the bar's conditional
   volatility, so range-based estimators (Parkinson, Garman-Klass) are informative.
   Volume scales with the regime, the volatility multiplier and the bar's shock.
5. **Macro (SPX, NASDAQ, DXY).** They print bars only in a US session: bars whose
   open time, converted to ``session_tz`` (America/New_York, so DST-aware), falls on a
   weekday at ``session_first_hour..session_last_hour`` (09:00..15:00, seven bars per
   day; exchange holidays are ignored). SPX is a factor with a regime-dependent drift
   and volatility (down and volatile in crashes) and a shock mildly correlated with
   BTC's; NASDAQ loads on it with a beta above one, DXY with a negative beta. The first
   bar of each session day gaps overnight. Outside the session every OHLC field is the
   last session close (or the configured start level before the first session bar),
   volume is 0 and ``{SYM}_is_open`` is 0.0; it is never filled from the future.

The same config (and seed) always gives the identical frame: every component draws
from its own child of ``numpy.random.SeedSequence(seed)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from cryptorl_core.data.market import MarketData
from cryptorl_core.schema import (
    HOURS_PER_YEAR,
    MACRO_SYMBOLS,
    OHLCV,
    REGIME_NAMES,
    TRUE_REGIME_COL,
    raw_column,
)

N_REGIMES = len(REGIME_NAMES)

# Child-stream numbers of SeedSequence(seed).spawn(): one stream per component, so
# changing one component's draws leaves the others untouched.
_STREAM_REGIME, _STREAM_CRYPTO, _STREAM_CRYPTO_BARS, _STREAM_MACRO, _STREAM_MACRO_BARS = range(5)
_N_STREAMS = 5


@dataclass(frozen=True)
class MacroAssetConfig:
    """One macro series, expressed as a loading on the SPX-like macro factor.

    :param symbol: symbol name (one of :data:`~cryptorl_core.schema.MACRO_SYMBOLS`).
    :param start_price: level before the first session bar (the "previous close").
    :param beta: loading on the macro factor's drift and shock (negative: inverse, DXY).
    :param idio_vol_ratio: idiosyncratic volatility as a multiple of the factor's.
    :param anchor_growth_per_year: log growth per year of the mean-reversion anchor.
    :param base_volume: typical volume of one session bar.
    """

    symbol: str
    start_price: float
    beta: float
    idio_vol_ratio: float
    anchor_growth_per_year: float
    base_volume: float


def _default_macro_assets() -> tuple[MacroAssetConfig, ...]:
    return (
        MacroAssetConfig(
            "SPX",
            2_500.0,
            beta=1.0,
            idio_vol_ratio=0.0,
            anchor_growth_per_year=0.08,
            base_volume=3.0e5,
        ),
        MacroAssetConfig(
            "NASDAQ",
            6_600.0,
            beta=1.25,
            idio_vol_ratio=0.6,
            anchor_growth_per_year=0.10,
            base_volume=4.0e5,
        ),
        MacroAssetConfig(
            "DXY",
            96.0,
            beta=-0.25,
            idio_vol_ratio=0.35,
            anchor_growth_per_year=0.0,
            base_volume=1.0e4,
        ),
    )


@dataclass(frozen=True)
class SyntheticMarketConfig:
    """Parameters of the synthetic market. Per-regime tuples are ordered bull, bear, range, crash.

    Returns and volatilities are hourly log-return units.

    :param seed: master seed; every random draw derives from it.
    :param start: first bar open time (UTC).
    :param n_years: calendar years covered; the last bar opens one hour before
        ``start + n_years`` (the default spans 2019-01-01 00:00 to 2025-12-31 23:00).
    :param mean_duration_hours: mean spell length of each regime.
    :param jump_probs: row ``k``: probabilities of the next regime when leaving ``k``
        (zero diagonal, rows sum to one).
    :param initial_regime: regime of the first bar; ``None`` draws it from the
        stationary distribution.
    :param btc_start_price: BTC close before the first bar.
    :param eth_start_price: ETH close before the first bar.
    :param drift: BTC mean hourly log return per regime.
    :param vol: BTC hourly volatility per regime (before the clustering multiplier).
    :param tail_df: degrees of freedom of the Student-t crypto innovations (> 2).
    :param garch_persistence: AR coefficient of the log-variance multiplier (< 1).
    :param garch_shock_weight: weight of the last ``|z|`` surprise in the log variance.
    :param eth_beta: ETH drift as a multiple of BTC's.
    :param eth_vol_ratio: ETH volatility as a multiple of BTC's.
    :param btc_eth_corr: correlation of the BTC and ETH shocks.
    :param mean_reversion_half_life_hours: half-life of log-price deviations from the anchor.
    :param anchor_growth_per_year: log growth per year of the crypto anchors.
    :param gap_vol_fraction: std of the open-vs-previous-close gap, as a fraction of bar vol.
    :param btc_base_volume: typical BTC volume per hour (coins).
    :param eth_base_volume: typical ETH volume per hour (coins).
    :param regime_volume_mult: volume multiplier per regime.
    :param volume_vol_elasticity: exponent of the volatility multiplier in volume.
    :param volume_shock_weight: weight of the bar's ``|z|`` in log volume.
    :param volume_noise: std of the log-normal volume noise.
    :param session_tz: time zone that defines the macro session.
    :param session_first_hour: local open hour of the first session bar.
    :param session_last_hour: local open hour of the last session bar.
    :param macro_drift: macro factor (SPX) drift per session bar and regime.
    :param macro_vol: macro factor (SPX) volatility per session bar and regime.
    :param macro_tail_df: degrees of freedom of the macro Student-t innovations.
    :param macro_crypto_corr: correlation of the macro factor shock with BTC's.
    :param overnight_gap_ratio: std of the first session bar's overnight gap, in bar vols.
    :param macro_mean_reversion_half_life_bars: half-life (session bars) of macro log-price deviations.
    :param macro_assets: the macro series.
    """

    seed: int = 7
    start: str = "2019-01-01"
    n_years: int = 7
    # Regime chain.
    mean_duration_hours: tuple[float, ...] = (336.0, 240.0, 288.0, 96.0)
    jump_probs: tuple[tuple[float, ...], ...] = (
        (0.0, 0.30, 0.50, 0.20),
        (0.30, 0.0, 0.40, 0.30),
        (0.45, 0.40, 0.0, 0.15),
        (0.20, 0.50, 0.30, 0.0),
    )
    initial_regime: int | None = None
    # Crypto returns.
    btc_start_price: float = 10_000.0
    eth_start_price: float = 300.0
    drift: tuple[float, ...] = (9.0e-4, -7.0e-4, 0.0, -2.0e-3)
    vol: tuple[float, ...] = (0.0055, 0.011, 0.003, 0.025)
    tail_df: float = 5.0
    garch_persistence: float = 0.97
    garch_shock_weight: float = 0.07
    eth_beta: float = 1.2
    eth_vol_ratio: float = 1.3
    btc_eth_corr: float = 0.8
    mean_reversion_half_life_hours: float = 24.0 * 120.0
    anchor_growth_per_year: float = 0.2
    # Bars and volume.
    gap_vol_fraction: float = 0.05
    btc_base_volume: float = 1_000.0
    eth_base_volume: float = 10_000.0
    regime_volume_mult: tuple[float, ...] = (1.1, 1.4, 0.7, 3.0)
    volume_vol_elasticity: float = 1.0
    volume_shock_weight: float = 0.3
    volume_noise: float = 0.25
    # Macro session and dynamics.
    session_tz: str = "America/New_York"
    session_first_hour: int = 9
    session_last_hour: int = 15
    macro_drift: tuple[float, ...] = (1.5e-4, -1.5e-4, 0.0, -8.0e-4)
    macro_vol: tuple[float, ...] = (0.0015, 0.0025, 0.0010, 0.0060)
    macro_tail_df: float = 6.0
    macro_crypto_corr: float = 0.2
    overnight_gap_ratio: float = 1.5
    macro_mean_reversion_half_life_bars: float = 7.0 * 250.0
    macro_assets: tuple[MacroAssetConfig, ...] = field(default_factory=_default_macro_assets)

    def __post_init__(self) -> None:
        for name in (
            "mean_duration_hours",
            "drift",
            "vol",
            "regime_volume_mult",
            "macro_drift",
            "macro_vol",
        ):
            if len(getattr(self, name)) != N_REGIMES:
                raise ValueError(f"{name} needs {N_REGIMES} values (one per regime)")
        jump = np.asarray(self.jump_probs, dtype=float)
        if jump.shape != (N_REGIMES, N_REGIMES) or np.any(jump < 0) or np.any(np.diag(jump) != 0):
            raise ValueError("jump_probs must be a 4x4 non-negative matrix with a zero diagonal")
        if not np.allclose(jump.sum(axis=1), 1.0):
            raise ValueError("every row of jump_probs must sum to 1")
        if min(self.mean_duration_hours) <= 1.0:
            raise ValueError("mean_duration_hours must exceed 1 hour")
        if min(self.tail_df, self.macro_tail_df) <= 2.0:
            raise ValueError("Student-t degrees of freedom must exceed 2 (finite variance)")
        if not 0.0 <= self.garch_persistence < 1.0:
            raise ValueError("garch_persistence must be in [0, 1)")
        if not (abs(self.btc_eth_corr) < 1.0 and abs(self.macro_crypto_corr) < 1.0):
            raise ValueError("correlations must be in (-1, 1)")
        if not 0 <= self.session_first_hour <= self.session_last_hour <= 23:
            raise ValueError("session hours must satisfy 0 <= first <= last <= 23")
        if self.initial_regime is not None and not 0 <= self.initial_regime < N_REGIMES:
            raise ValueError("initial_regime must be None or in 0..3")
        if {a.symbol for a in self.macro_assets} - set(MACRO_SYMBOLS):
            raise ValueError(f"macro symbols must be among {MACRO_SYMBOLS}")


# ---------------------------------------------------------------------------
# Regime chain
# ---------------------------------------------------------------------------


def transition_matrix(config: SyntheticMarketConfig) -> np.ndarray:
    """Hourly regime transition matrix implied by the mean durations and jump probabilities.

    :param config: generator configuration.
    :return: ``(4, 4)`` row-stochastic matrix ``P[i, j] = Pr(regime j at t+1 | i at t)``.
    """
    leave = 1.0 / np.asarray(config.mean_duration_hours, dtype=float)
    return np.diag(1.0 - leave) + leave[:, None] * np.asarray(config.jump_probs, dtype=float)


def stationary_distribution(config: SyntheticMarketConfig) -> np.ndarray:
    """Long-run share of time in each regime.

    :param config: generator configuration.
    :return: ``(4,)`` probabilities (left eigenvector of :func:`transition_matrix` for 1).
    """
    vals, vecs = np.linalg.eig(transition_matrix(config).T)
    pi = np.real(vecs[:, np.argmin(np.abs(vals - 1.0))])
    return pi / pi.sum()


def _sample_regimes(
    config: SyntheticMarketConfig, n_hours: int, rng: np.random.Generator
) -> np.ndarray:
    """Hourly regime path, sampled spell by spell (a few hundred spells, not 61k steps).

    Geometric spell lengths with success probability ``1 / mean_duration`` are exactly
    the sojourn times of the hourly chain of :func:`transition_matrix`.
    """
    jump = np.asarray(config.jump_probs, dtype=float)
    leave = 1.0 / np.asarray(config.mean_duration_hours, dtype=float)
    k = config.initial_regime
    if k is None:
        k = int(rng.choice(N_REGIMES, p=stationary_distribution(config)))
    regimes = np.empty(n_hours, dtype=np.int8)
    t = 0
    while t < n_hours:
        length = int(rng.geometric(leave[k]))
        regimes[t : t + length] = k
        t += length
        k = int(rng.choice(N_REGIMES, p=jump[k]))
    return regimes


# ---------------------------------------------------------------------------
# Return building blocks
# ---------------------------------------------------------------------------


def _student_t(rng: np.random.Generator, df: float, size: int) -> np.ndarray:
    """Student-t draws rescaled to unit variance."""
    return rng.standard_t(df, size) * np.sqrt((df - 2.0) / df)


def _vol_multiplier(z: np.ndarray, persistence: float, shock_weight: float) -> np.ndarray:
    """EGARCH(1,1)-style volatility multiplier driven by past standardised shocks.

    ``log g_t = persistence * log g_{t-1} + shock_weight * (|z_{t-1}| - E|z|)``; the
    multiplier ``sqrt(g)`` is normalised to unit mean variance so the regime volatility
    keeps its meaning. Only past shocks enter ``g_t`` (the shock is lagged one bar).

    :param z: standardised shocks, one per bar.
    :param persistence: AR coefficient of ``log g``.
    :param shock_weight: response to a surprise in ``|z|``.
    :return: volatility multiplier per bar (positive, mean square 1).
    """
    surprise = np.abs(z) - np.abs(z).mean()
    drive = np.concatenate(([0.0], shock_weight * surprise[:-1]))
    log_g = lfilter([1.0], [1.0, -persistence], drive)
    g = np.exp(log_g)
    return np.sqrt(g / g.mean())


def _mean_reverting_log_price(
    increments: np.ndarray, log_start: float, growth_per_bar: float, half_life_bars: float
) -> np.ndarray:
    """Log closes from raw log-return increments with mild reversion to a growing anchor.

    The deviation ``y = log price - anchor`` follows ``y_t = (1 - kappa) y_{t-1} + r_t - growth``
    (a linear recursion, so one ``lfilter`` call), starting from ``y = 0`` before bar 0.

    :param increments: raw log returns per bar (drift + shock + gap).
    :param log_start: log close before the first bar (the anchor's start).
    :param growth_per_bar: anchor log growth per bar.
    :param half_life_bars: half-life of deviations from the anchor.
    :return: log close per bar.
    """
    kappa = 1.0 - 0.5 ** (1.0 / half_life_bars)
    deviation = lfilter([1.0], [1.0, -(1.0 - kappa)], increments - growth_per_bar)
    anchor = log_start + growth_per_bar * np.arange(1, len(increments) + 1)
    return anchor + deviation


def _ohlc_from_log_path(
    log_close: np.ndarray,
    log_prev_close: np.ndarray,
    gap: np.ndarray,
    bar_vol: np.ndarray,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Open, high, low and close of bars from their log closes.

    The open is the previous close plus the gap. High and low are the maximum and
    minimum of a Brownian bridge from open to close with the bar's volatility
    (exact inverse-CDF draws), so ``high >= max(open, close)`` and
    ``low <= min(open, close)`` by construction.

    :param log_close: log close per bar.
    :param log_prev_close: log close of the previous bar (or the start level).
    :param gap: log gap between the previous close and this open.
    :param bar_vol: intrabar volatility (std of the open-to-close log return).
    :param rng: random generator.
    :return: dict with ``open``, ``high``, ``low``, ``close`` price arrays.
    """
    log_open = log_prev_close + gap
    body = log_close - log_open
    var = bar_vol**2
    u = rng.random((2, len(body)))
    # Bridge extremes: max = (c + sqrt(c^2 - 2 s^2 ln U)) / 2, min symmetric; 1 - U avoids log(0).
    up = 0.5 * (body + np.sqrt(body**2 - 2.0 * var * np.log1p(-u[0])))
    down = 0.5 * (body - np.sqrt(body**2 - 2.0 * var * np.log1p(-u[1])))
    open_, close = np.exp(log_open), np.exp(log_close)
    # Clamp against float rounding so the OHLC invariants hold exactly.
    high = np.maximum(np.exp(log_open + up), np.maximum(open_, close))
    low = np.minimum(np.exp(log_open + down), np.minimum(open_, close))
    return {"open": open_, "high": high, "low": low, "close": close}


def _volume(
    base: float,
    regime_mult: np.ndarray,
    vol_mult: np.ndarray,
    z: np.ndarray,
    config: SyntheticMarketConfig,
    rng: np.random.Generator,
) -> np.ndarray:
    """Log-normal volume that rises with the regime, the volatility multiplier and the shock."""
    log_v = (
        config.volume_vol_elasticity * np.log(vol_mult)
        + config.volume_shock_weight * (np.abs(z) - np.abs(z).mean())
        + config.volume_noise * rng.standard_normal(len(z))
    )
    return base * regime_mult * np.exp(log_v)


# ---------------------------------------------------------------------------
# Crypto
# ---------------------------------------------------------------------------


def _crypto_bars(
    config: SyntheticMarketConfig, regimes: np.ndarray, ss: list[np.random.SeedSequence]
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """BTC and ETH columns, plus BTC's standardised shock (reused by the macro factor)."""
    rng = np.random.default_rng(ss[_STREAM_CRYPTO])
    bar_rng = np.random.default_rng(ss[_STREAM_CRYPTO_BARS])
    n = len(regimes)
    drift = np.asarray(config.drift)[regimes]
    vol = np.asarray(config.vol)[regimes]
    volume_mult = np.asarray(config.regime_volume_mult)[regimes]

    z_btc = _student_t(rng, config.tail_df, n)
    z_idio = _student_t(rng, config.tail_df, n)
    rho = config.btc_eth_corr
    z_eth = rho * z_btc + np.sqrt(1.0 - rho**2) * z_idio
    # One clustering multiplier for the crypto market: BTC and ETH calm down and flare up together.
    vol_mult = _vol_multiplier(z_btc, config.garch_persistence, config.garch_shock_weight)

    growth = config.anchor_growth_per_year / HOURS_PER_YEAR
    cols: dict[str, np.ndarray] = {}
    assets = (
        ("BTC", 1.0, 1.0, z_btc, config.btc_start_price, config.btc_base_volume),
        (
            "ETH",
            config.eth_beta,
            config.eth_vol_ratio,
            z_eth,
            config.eth_start_price,
            config.eth_base_volume,
        ),
    )
    for symbol, beta, vol_ratio, z, start_price, base_volume in assets:
        bar_vol = vol_ratio * vol * vol_mult
        gap = config.gap_vol_fraction * bar_vol * bar_rng.standard_normal(n)
        increments = beta * drift + bar_vol * z + gap
        log_close = _mean_reverting_log_price(
            increments, np.log(start_price), growth, config.mean_reversion_half_life_hours
        )
        log_prev = np.concatenate(([np.log(start_price)], log_close[:-1]))
        ohlc = _ohlc_from_log_path(log_close, log_prev, gap, bar_vol, bar_rng)
        ohlc["volume"] = _volume(base_volume, volume_mult, vol_mult, z, config, bar_rng)
        cols.update({raw_column(symbol, f): ohlc[f] for f in OHLCV})
    return cols, z_btc


# ---------------------------------------------------------------------------
# Macro
# ---------------------------------------------------------------------------


def session_mask(index: pd.DatetimeIndex, config: SyntheticMarketConfig) -> np.ndarray:
    """Whether each hourly bar belongs to the macro trading session.

    A bar is in session when its open time, converted to ``config.session_tz``
    (DST-aware), is on Monday..Friday and its local hour is in
    ``session_first_hour..session_last_hour``. Exchange holidays are not modelled.

    :param index: tz-aware hourly bar open times.
    :param config: generator configuration.
    :return: boolean array, one per bar.
    """
    local = index.tz_convert(config.session_tz)
    hour = np.asarray(local.hour)
    weekday = np.asarray(local.dayofweek) < 5
    return weekday & (hour >= config.session_first_hour) & (hour <= config.session_last_hour)


def _macro_bars(
    config: SyntheticMarketConfig,
    index: pd.DatetimeIndex,
    regimes: np.ndarray,
    z_btc: np.ndarray,
    ss: list[np.random.SeedSequence],
) -> dict[str, np.ndarray]:
    """Macro columns: session bars simulated on session time, carried forward outside it."""
    rng = np.random.default_rng(ss[_STREAM_MACRO])
    bar_rng = np.random.default_rng(ss[_STREAM_MACRO_BARS])
    is_open = session_mask(index, config)
    pos = np.flatnonzero(is_open)
    n_s = len(pos)
    reg = regimes[pos]
    # First bar of each session day (previous session bar not the previous hour): overnight gap.
    first_of_day = np.concatenate(([True], np.diff(pos) > 1))

    rho = config.macro_crypto_corr
    factor_z = rho * z_btc[pos] + np.sqrt(1.0 - rho**2) * _student_t(rng, config.macro_tail_df, n_s)
    vol_mult = _vol_multiplier(factor_z, config.garch_persistence, config.garch_shock_weight)
    factor_drift = np.asarray(config.macro_drift)[reg]
    factor_vol = np.asarray(config.macro_vol)[reg] * vol_mult
    volume_mult = np.asarray(config.regime_volume_mult)[reg]
    gap_scale = np.where(first_of_day, config.overnight_gap_ratio, config.gap_vol_fraction)
    # Gaps load on a common factor too, so overnight moves are correlated across the macro series.
    factor_gap = bar_rng.standard_normal(n_s)

    # For every hour, the session bar it shows: the last one at or before it (-1: none yet).
    last_bar = np.cumsum(is_open) - 1
    before_first = last_bar < 0
    last_bar = np.maximum(last_bar, 0)

    cols: dict[str, np.ndarray] = {}
    for asset in config.macro_assets:
        idio_z = _student_t(rng, config.macro_tail_df, n_s)
        z = asset.beta * factor_z + asset.idio_vol_ratio * idio_z
        bar_vol = np.sqrt(asset.beta**2 + asset.idio_vol_ratio**2) * factor_vol
        gap = (
            gap_scale
            * factor_vol
            * (asset.beta * factor_gap + asset.idio_vol_ratio * bar_rng.standard_normal(n_s))
        )
        increments = asset.beta * factor_drift + factor_vol * z + gap
        log_start = np.log(asset.start_price)
        log_close = _mean_reverting_log_price(
            increments,
            log_start,
            asset.anchor_growth_per_year / (n_s / config.n_years),
            config.macro_mean_reversion_half_life_bars,
        )
        log_prev = np.concatenate(([log_start], log_close[:-1]))
        ohlc = _ohlc_from_log_path(log_close, log_prev, gap, bar_vol, bar_rng)
        z_norm = z / np.sqrt(asset.beta**2 + asset.idio_vol_ratio**2)
        ohlc["volume"] = _volume(asset.base_volume, volume_mult, vol_mult, z_norm, config, bar_rng)

        # Outside the session every price is the last close (start level before the first bar).
        carried = np.where(before_first, asset.start_price, ohlc["close"][last_bar])
        for f in ("open", "high", "low", "close"):
            full = carried.copy()
            full[pos] = ohlc[f]
            cols[raw_column(asset.symbol, f)] = full
        volume = np.zeros(len(index))
        volume[pos] = ohlc["volume"]
        cols[raw_column(asset.symbol, "volume")] = volume
    for asset in config.macro_assets:
        cols[raw_column(asset.symbol, "is_open")] = is_open.astype(np.float64)
    return cols


# ---------------------------------------------------------------------------
# Public entry point
# ---------------------------------------------------------------------------


def hourly_index(config: SyntheticMarketConfig) -> pd.DatetimeIndex:
    """The contiguous hourly UTC index ``[start, start + n_years)`` named ``timestamp``.

    :param config: generator configuration.
    :return: tz-aware UTC bar open times.
    """
    start = pd.Timestamp(config.start, tz="UTC")
    end = start + pd.DateOffset(years=config.n_years)
    return pd.date_range(start, end, freq="h", inclusive="left", name="timestamp")


def generate_synthetic_market(config: SyntheticMarketConfig | None = None) -> MarketData:
    """Generate the deterministic synthetic hourly market (BTC, ETH, SPX, NASDAQ, DXY).

    See the module docstring for the model. The frame has ``{SYM}_{open,high,low,close,volume}``
    for every symbol, ``{SYM}_is_open`` for the macro symbols and ``true_regime`` (int8,
    0 bull, 1 bear, 2 range, 3 crash) on a contiguous hourly UTC index named ``timestamp``.

    :param config: generator configuration; ``None`` uses the defaults.
    :return: market data with ``source="synthetic"`` and notes describing the run.
    """
    config = config or SyntheticMarketConfig()
    index = hourly_index(config)
    ss = np.random.SeedSequence(config.seed).spawn(_N_STREAMS)
    regimes = _sample_regimes(config, len(index), np.random.default_rng(ss[_STREAM_REGIME]))

    crypto, z_btc = _crypto_bars(config, regimes, ss)
    macro = _macro_bars(config, index, regimes, z_btc, ss)
    frame = pd.DataFrame({**crypto, **macro}, index=index)
    frame[TRUE_REGIME_COL] = regimes

    shares = np.bincount(regimes, minlength=N_REGIMES) / len(regimes)
    notes = [
        f"Synthetic 4-regime Markov-switching market, seed={config.seed}, "
        f"{index[0]} to {index[-1]} ({len(index)} hourly bars).",
        f"Crypto: Student-t (df={config.tail_df:g}) shocks, EGARCH-style clustering, "
        f"BTC/ETH shock corr {config.btc_eth_corr:g}, log-price mean reversion "
        f"(half-life {config.mean_reversion_half_life_hours:g} h).",
        f"Macro session: weekday bars opening {config.session_first_hour:02d}:00.."
        f"{config.session_last_hour:02d}:00 {config.session_tz} (holidays ignored); outside it "
        "OHLC carry the last close, volume 0, is_open 0.",
        "Realised regime shares: "
        + ", ".join(f"{n} {s:.1%}" for n, s in zip(REGIME_NAMES, shares, strict=True)),
    ]
    return MarketData(frame=frame, source="synthetic", notes=notes)
