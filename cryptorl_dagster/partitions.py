"""Walk-forward segments as Dagster partitions, listed as soon as the definitions load.

The segments come from the coverage of the same market source the assets read
(``MarketSource`` with ``$CRYPTORL_DATA_DIR`` / ``$CRYPTORL_DEDUP`` from ``cryptorl_core.settings``).
"""

from __future__ import annotations

from functools import lru_cache

import dagster as dg

from cryptorl_core.segments import Segment, WindowConfig, segment_by_key, walk_forward_segments
from cryptorl_dagster.resources.market import MarketSource, synthetic_coverage

__all__ = ["segment_for_key", "segment_partitions", "segments", "synthetic_coverage"]


@lru_cache(maxsize=1)
def segments() -> tuple[Segment, ...]:
    """Segments of the configured data source (``$CRYPTORL_DATA_DIR`` or synthetic)."""
    start, end = MarketSource.from_settings().coverage()
    return tuple(walk_forward_segments(start, end, WindowConfig()))


def segment_for_key(key: str) -> Segment:
    """The segment of a partition key, with a clear error for unknown keys."""
    return segment_by_key(list(segments()), key)


segment_partitions = dg.StaticPartitionsDefinition([s.key for s in segments()])
