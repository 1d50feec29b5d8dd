"""Per-segment feature pipeline: fit (FFD d, normalisation) on train rows, transform all rows.

Usage from a notebook::

    market = generate_synthetic_market()
    seg = walk_forward_segments(market.start, market.end)[-1]
    frame, params = build_segment_frame(market.frame, seg, FeatureConfig())
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from cryptorl_core.features.config import FeatureConfig
from cryptorl_core.features.ffd import min_stationary_d
from cryptorl_core.features.normalization import NormStats
from cryptorl_core.features.technical import compute_technical, is_unscaled
from cryptorl_core.fingerprint import stable_hash
from cryptorl_core.schema import (
    CRYPTO_SYMBOLS,
    PRICE_CLOSE_COL,
    PRICE_OPEN_COL,
    SPLIT_COL,
    TRUE_REGIME_COL,
)
from cryptorl_core.segments import Segment

#: The traded asset: the environment executes on its open and close.
TRADED_SYMBOL = "BTC"


@dataclass
class FeatureParams:
    """Everything fitted on a segment's train rows, stored with the feature asset.

    :param ffd_d: FFD order per crypto symbol (smallest d passing ADF on train rows).
    :param ffd_pvalue: the ADF p-value at that d.
    :param norm: train-row normalisation statistics and their fit window.
    :param config: the feature configuration used.
    """

    ffd_d: dict[str, float]
    ffd_pvalue: dict[str, float]
    norm: NormStats
    config: dict

    def as_dict(self) -> dict:
        return {"ffd_d": self.ffd_d, "ffd_pvalue": self.ffd_pvalue,
                "norm": self.norm.as_dict(), "config": self.config}

    @classmethod
    def from_dict(cls, d: dict) -> FeatureParams:
        return cls(ffd_d=d["ffd_d"], ffd_pvalue=d["ffd_pvalue"],
                   norm=NormStats.from_dict(d["norm"]), config=d["config"])

    def fingerprint(self) -> str:
        """Short hash of the fitted statistics, to tie downstream models to them."""
        return stable_hash(self.as_dict())


def train_mask(index: pd.DatetimeIndex, segment: Segment) -> np.ndarray:
    """Boolean mask of the segment's train rows in ``index``."""
    return np.asarray((index >= segment.train_start) & (index < segment.train_end))


def fit_ffd_orders(market: pd.DataFrame, mask: np.ndarray, cfg: FeatureConfig) -> tuple[dict, dict]:
    """FFD order per crypto symbol, chosen by ADF on the masked (train) rows."""
    d, p = {}, {}
    for sym in CRYPTO_SYMBOLS:
        if f"{sym}_close" in market and sym in cfg.symbols:
            d[sym], p[sym] = min_stationary_d(
                np.log(market[f"{sym}_close"]), mask, cfg.ffd_d_grid, cfg.ffd_threshold,
                cfg.ffd_max_width, cfg.adf_pvalue, cfg.adf_maxlag,
            )
    return d, p


def fit_feature_params(market: pd.DataFrame, segment: Segment, cfg: FeatureConfig) -> tuple[FeatureParams, pd.DataFrame]:
    """Fit FFD orders and normalisation on the segment's train rows.

    :param market: aligned market frame covering the segment and its warm-up.
    :return: the fitted parameters and the raw technical table (reused by the caller).
    """
    mask = train_mask(market.index, segment)
    if not mask.any():
        raise ValueError(f"segment {segment.key}: no train rows in the market data")
    d, p = fit_ffd_orders(market, mask, cfg)
    raw = compute_technical(market, d, cfg)
    scaled = [c for c in raw.columns if not is_unscaled(c)]
    norm = NormStats.fit(raw.loc[mask], scaled, cfg.min_std)
    return FeatureParams(ffd_d=d, ffd_pvalue=p, norm=norm, config=asdict(cfg)), raw


def transform_features(market: pd.DataFrame, params: FeatureParams, cfg: FeatureConfig) -> pd.DataFrame:
    """Normalised technical features of every row of ``market`` with frozen parameters.

    This is the function the look-ahead check truncates: with ``params`` fixed, row t
    depends on rows <= t only.
    """
    return params.norm.apply(compute_technical(market, params.ffd_d, cfg), cfg.clip_sigma)


def build_segment_frame(
    market: pd.DataFrame, segment: Segment, cfg: FeatureConfig
) -> tuple[pd.DataFrame, FeatureParams, dict]:
    """The segment frame (see :mod:`cryptorl_core.schema`) of one walk-forward segment.

    :param market: aligned market frame with at least the warm-up before ``train_start``.
    :param segment: the walk-forward segment.
    :param cfg: feature configuration.
    :return: ``(frame, params, report)``; report counts values filled with the train mean.
    """
    params, raw = fit_feature_params(market, segment, cfg)
    feats = params.norm.apply(raw, cfg.clip_sigma)
    rows = (market.index >= segment.train_start) & (market.index < segment.test_end)
    feats = feats.loc[rows]
    if feats.iloc[0].isna().any():
        missing = feats.columns[feats.iloc[0].isna()].tolist()
        raise ValueError(
            f"segment {segment.key}: features still warming up at train start "
            f"{segment.train_start} (columns {missing[:5]}); provide more history before it"
        )
    # Zero-variance windows (filled gaps) leave isolated NaN: use the train mean (0).
    n_filled = int(feats.isna().sum().sum())
    frame = feats.fillna(0.0).astype(np.float32)
    frame[SPLIT_COL] = segment.split_labels(frame.index)
    sub = market.loc[rows]
    frame[PRICE_OPEN_COL] = sub[f"{TRADED_SYMBOL}_open"].to_numpy()
    frame[PRICE_CLOSE_COL] = sub[f"{TRADED_SYMBOL}_close"].to_numpy()
    if TRUE_REGIME_COL in sub:
        frame[TRUE_REGIME_COL] = sub[TRUE_REGIME_COL].to_numpy()
    frame.index.name = "timestamp"
    return frame, params, {"n_filled_values": n_filled}
