"""Walk-forward segments as Dagster partitions, listed as soon as the definitions load."""

from __future__ import annotations

import os
from functools import lru_cache

import dagster as dg
import pandas as pd

from cryptorl_core.segments import Segment, WindowConfig, segment_by_key, walk_forward_segments
from cryptorl_dagster.resources.market import DATA_DIR_ENV, DEDUP_ENV, load_market


def synthetic_coverage() -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last bar of the synthetic market, without generating it."""
    from cryptorl_core.data.synthetic import SyntheticMarketConfig

    cfg = SyntheticMarketConfig()
    start = pd.Timestamp(cfg.start, tz="UTC") if pd.Timestamp(cfg.start).tzinfo is None else pd.Timestamp(cfg.start)
    end = start + pd.DateOffset(years=cfg.n_years) - pd.Timedelta(hours=1)
    return start, pd.Timestamp(end)


@lru_cache(maxsize=1)
def segments() -> tuple[Segment, ...]:
    """Segments of the configured data source (``$CRYPTORL_DATA_DIR`` or synthetic)."""
    data_dir = os.environ.get(DATA_DIR_ENV, "")
    if data_dir:
        market = load_market(data_dir, os.environ.get(DEDUP_ENV, ""))
        start, end = market.start, market.end
    else:
        start, end = synthetic_coverage()
    return tuple(walk_forward_segments(start, end, WindowConfig()))


def segment_for_key(key: str) -> Segment:
    """The segment of a partition key, with a clear error for unknown keys."""
    return segment_by_key(list(segments()), key)


segment_partitions = dg.StaticPartitionsDefinition([s.key for s in segments()])
