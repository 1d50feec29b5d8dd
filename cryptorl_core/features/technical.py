"""The raw (un-normalised) technical feature table of an aligned market frame."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cryptorl_core.features import momentum as mom
from cryptorl_core.features import volatility as vol
from cryptorl_core.features.config import FeatureConfig
from cryptorl_core.features.ffd import ffd
from cryptorl_core.schema import CRYPTO_SYMBOLS, MACRO_SYMBOLS

HOURS_PER_DAY = 24
DAYS_PER_WEEK = 7


def crypto_features(frame: pd.DataFrame, sym: str, d: float, cfg: FeatureConfig) -> dict[str, pd.Series]:
    """The per-symbol block: FFD, returns, z-scores, volatility, volume, oscillators."""
    o, h, lo, c, v = (frame[f"{sym}_{f}"] for f in ("open", "high", "low", "close", "volume"))
    logc = np.log(c)
    r1 = mom.log_return(logc, 1)
    out: dict[str, pd.Series] = {f"{sym}_ffd_close": ffd(logc, d, cfg.ffd_threshold, cfg.ffd_max_width)}
    for hrs in cfg.return_horizons:
        out[f"{sym}_ret_{hrs}h"] = mom.log_return(logc, hrs)
    for w in cfg.zscore_windows:
        out[f"{sym}_zclose_{w}"] = mom.rolling_zscore(logc, w, cfg.min_std)
    w = cfg.vol_window
    out[f"{sym}_vol_park_{w}"] = vol.parkinson(h, lo, w)
    out[f"{sym}_vol_gk_{w}"] = vol.garman_klass(o, h, lo, c, w)
    out[f"{sym}_vol_rs_{w}"] = vol.rogers_satchell(o, h, lo, c, w)
    for w in cfg.rv_windows:
        out[f"{sym}_vol_rv_{w}"] = vol.realised(r1, w)
    out[f"{sym}_range_hl"] = np.log(h / lo)
    out[f"{sym}_body"] = np.log(c / o)
    logv = np.log1p(v)
    for w in cfg.volume_windows:
        out[f"{sym}_volume_z_{w}"] = mom.rolling_zscore(logv, w, cfg.min_std)
    out[f"{sym}_dvolume_24"] = logv - logv.shift(HOURS_PER_DAY)
    out[f"{sym}_rsi_{cfg.rsi_period}"] = mom.rsi(c, cfg.rsi_period)
    out[f"{sym}_ema_gap_{cfg.ema_fast}_{cfg.ema_slow}"] = mom.ema_gap(c, cfg.ema_fast, cfg.ema_slow)
    out[f"{sym}_macd_hist"] = mom.macd_hist(c, cfg.ema_fast, cfg.macd_slow, cfg.macd_signal)
    return out


def cross_asset_features(frame: pd.DataFrame, cfg: FeatureConfig) -> dict[str, pd.Series]:
    """ETH/BTC ratio features and the rolling BTC/ETH return correlation (needs both)."""
    if "ETH_close" not in frame or "BTC_close" not in frame:
        return {}
    ratio = np.log(frame["ETH_close"] / frame["BTC_close"])
    w = cfg.cross_window
    r_btc = np.log(frame["BTC_close"]).diff()
    r_eth = np.log(frame["ETH_close"]).diff()
    return {
        "ETHBTC_ret_24h": mom.log_return(ratio, HOURS_PER_DAY),
        f"ETHBTC_z_{w}": mom.rolling_zscore(ratio, w, cfg.min_std),
        f"BTCETH_corr_{w}": r_btc.rolling(w).corr(r_eth).clip(-1.0, 1.0),
    }


def macro_features(frame: pd.DataFrame, cfg: FeatureConfig) -> dict[str, pd.Series]:
    """Macro returns over the forward-filled close, and the is-open flags."""
    out: dict[str, pd.Series] = {}
    for sym in MACRO_SYMBOLS:
        if f"{sym}_close" not in frame:
            continue
        out[f"{sym}_ret_{cfg.macro_return_hours}h"] = mom.log_return(np.log(frame[f"{sym}_close"]), cfg.macro_return_hours)
        out[f"{sym}_is_open"] = frame[f"{sym}_is_open"].astype(float)
    return out


def calendar_features(index: pd.DatetimeIndex) -> dict[str, pd.Series]:
    """Hour-of-day and day-of-week on the unit circle (known in advance, no leak)."""
    hour = 2 * np.pi * index.hour.to_numpy() / HOURS_PER_DAY
    dow = 2 * np.pi * index.dayofweek.to_numpy() / DAYS_PER_WEEK
    return {
        "hour_sin": pd.Series(np.sin(hour), index=index),
        "hour_cos": pd.Series(np.cos(hour), index=index),
        "dow_sin": pd.Series(np.sin(dow), index=index),
        "dow_cos": pd.Series(np.cos(dow), index=index),
    }


def compute_technical(frame: pd.DataFrame, ffd_d: dict[str, float], cfg: FeatureConfig) -> pd.DataFrame:
    """All raw technical columns for every symbol present in ``frame``.

    :param frame: an aligned market frame (``{SYM}_{field}`` columns).
    :param ffd_d: FFD order per crypto symbol (fitted on train rows by the caller).
    :param cfg: feature configuration.
    :return: float64 frame on ``frame.index``; leading rows are NaN until windows fill.
    """
    cols: dict[str, pd.Series] = {}
    for sym in CRYPTO_SYMBOLS:
        if f"{sym}_close" in frame and sym in cfg.symbols:
            cols.update(crypto_features(frame, sym, ffd_d[sym], cfg))
    if {"BTC", "ETH"} <= set(cfg.symbols):
        cols.update(cross_asset_features(frame, cfg))
    cols.update(macro_features(frame, cfg))
    cols.update(calendar_features(frame.index))
    return pd.DataFrame(select_columns(cols, cfg.columns), index=frame.index)


def select_columns(cols: dict[str, pd.Series], keep: tuple[str, ...]) -> dict[str, pd.Series]:
    """The ``keep`` columns of ``cols`` in that order (all of them when ``keep`` is empty).

    :param cols: computed columns by name.
    :param keep: names to keep (``FeatureConfig.columns``).
    :raises KeyError: a kept name was not computed.
    """
    if not keep:
        return cols
    missing = [c for c in keep if c not in cols]
    if missing:
        raise KeyError(f"FeatureConfig.columns names columns the market data does not produce: {missing}")
    return {c: cols[c] for c in keep}


def is_unscaled(column: str) -> bool:
    """Columns already on a bounded, meaningful scale are not z-scored."""
    return column.endswith("_is_open") or column.startswith(("hour_", "dow_"))
