"""Feature configuration."""

from __future__ import annotations

from dataclasses import dataclass

from cryptorl_core.config_base import ConfigBase
from cryptorl_core.schema import CRYPTO_SYMBOLS

#: Seed 004's plan B "V7 ultra-simple" inputs: 12 BTC-only technical columns (returns, a price
#: z-score, two volatility estimators, range, volume, three oscillators), among them the HMM's
#: two inputs (``BTC_ret_72h``, ``BTC_vol_gk_24``).
SIMPLE_COLUMNS = (
    "BTC_ret_1h", "BTC_ret_4h", "BTC_ret_24h", "BTC_ret_72h", "BTC_zclose_24", "BTC_vol_gk_24",
    "BTC_vol_rv_24", "BTC_range_hl", "BTC_volume_z_24", "BTC_rsi_14", "BTC_ema_gap_12_48",
    "BTC_macd_hist",
)


@dataclass(frozen=True)
class FeatureConfig(ConfigBase):
    """Feature windows, FFD search and normalisation.

    :param return_horizons: log-return horizons in hours.
    :param zscore_windows: rolling z-score windows of the log close, in hours.
    :param vol_window: window of the range-based volatility estimators.
    :param rv_windows: windows of realised volatility (std of hourly log returns).
    :param volume_windows: windows of the log-volume z-scores.
    :param rsi_period: RSI period (Wilder smoothing).
    :param ema_fast: fast EMA span (EMA gap and MACD).
    :param ema_slow: slow EMA span of the EMA gap.
    :param macd_slow: slow EMA span of MACD.
    :param macd_signal: signal EMA span of MACD.
    :param cross_window: window of the ETH/BTC z-score and the BTC/ETH correlation.
    :param macro_return_hours: macro return horizon.
    :param ffd_d_grid: candidate FFD orders, searched in increasing order.
    :param ffd_threshold: FFD weights smaller than this are dropped (fixed-width window).
    :param ffd_max_width: cap on the FFD window length, hours (must not exceed warm-up).
    :param adf_pvalue: ADF p-value below which an FFD series counts as stationary.
    :param adf_maxlag: fixed ADF lag order (fast and deterministic).
    :param clip_sigma: z-scored features are clipped to +/- this many train std.
    :param min_std: floor on a train std so constant columns do not blow up.
    :param symbols: crypto symbols whose blocks are computed (and FFD-fitted); the cross-asset
        block needs BTC and ETH.
    :param columns: keep only these technical columns, in this order (empty: every column);
        a name the market data does not produce is an error.

    Profiles: every one but ``simple`` (seed 004's plan B) is the defaults (every symbol and column).
    """

    return_horizons: tuple[int, ...] = (1, 4, 12, 24, 72, 168)
    zscore_windows: tuple[int, ...] = (24, 168)
    vol_window: int = 24
    rv_windows: tuple[int, ...] = (24, 168)
    volume_windows: tuple[int, ...] = (24, 168)
    rsi_period: int = 14
    ema_fast: int = 12
    ema_slow: int = 48
    macd_slow: int = 26
    macd_signal: int = 9
    cross_window: int = 168
    macro_return_hours: int = 24
    ffd_d_grid: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(1, 21))
    ffd_threshold: float = 1e-4
    ffd_max_width: int = 1000
    adf_pvalue: float = 0.05
    adf_maxlag: int = 1
    clip_sigma: float = 10.0
    min_std: float = 1e-8
    symbols: tuple[str, ...] = CRYPTO_SYMBOLS
    columns: tuple[str, ...] = ()

    @classmethod
    def simple(cls) -> FeatureConfig:
        """Seed 004's "V7 ultra-simple": one asset (BTC), the 12 :data:`SIMPLE_COLUMNS`."""
        return cls(symbols=("BTC",), columns=SIMPLE_COLUMNS)
