"""``raw_market_data``: the aligned hourly market slice a segment needs."""


import dagster as dg
import pandas as pd

from cryptorl_core.data.market import MarketData
from cryptorl_core.segments import HOUR, Segment
from cryptorl_dagster.metadata import markdown_table
from cryptorl_dagster.partitions import segment_for_key, segment_partitions
from cryptorl_dagster.resources import MarketSource, ProfileResource

PREVIEW_ROWS = 5


def segment_slice(market: MarketData, segment: Segment, warmup_hours: int) -> pd.DataFrame:
    """Rows from the warm-up before train start to the end of the test window."""
    start = segment.train_start - warmup_hours * HOUR
    frame = market.frame.loc[(market.frame.index >= start) & (market.frame.index < segment.test_end)]
    expected = int((segment.test_end - start) / HOUR)
    if len(frame) != expected:
        raise ValueError(
            f"segment {segment.key}: market data from {market.source} covers {len(frame)} of the "
            f"{expected} hours from {start} to {segment.test_end}"
        )
    return frame


def gap_table(market: MarketData) -> pd.DataFrame:
    rows = [g.as_dict() for g in market.gaps.values()]
    return pd.DataFrame(rows).set_index("symbol") if rows else pd.DataFrame()


@dg.asset(
    partitions_def=segment_partitions,
    io_manager_key="frame_io_manager",
    group_name="market",
    kinds={"pandas"},
)
def raw_market_data(
    context: dg.AssetExecutionContext, market_source: MarketSource, profile: ProfileResource
) -> dg.Output[pd.DataFrame]:
    """Hourly OHLCV (UTC) of BTC, ETH and the macro context for one walk-forward segment,
    from the warm-up before its train window to the end of its test window."""
    segment = segment_for_key(context.partition_key)
    market = market_source.load()
    frame = segment_slice(market, segment, profile.pipeline().windows.warmup_hours)
    frame.attrs = {"source": market.source, "segment": segment.as_dict(), "notes": market.notes,
                   "gaps": {s: g.as_dict() for s, g in market.gaps.items()}}
    gaps = gap_table(market)
    metadata = {
        "source": market.source,
        "symbols": ", ".join(market.symbols),
        "rows": len(frame),
        "first_bar": str(frame.index[0]),
        "last_bar": str(frame.index[-1]),
        "segment": dg.MetadataValue.json(segment.as_dict()),
        "notes": dg.MetadataValue.md("\n".join(f"- {n}" for n in market.notes) or "none"),
        "preview": markdown_table(frame.tail(PREVIEW_ROWS).filter(like="_close")),
    }
    if not gaps.empty:
        metadata["gap_report"] = markdown_table(gaps)
        metadata["missing_hours_filled"] = int(gaps["n_missing_hours"].sum())
    return dg.Output(frame, metadata=metadata)
