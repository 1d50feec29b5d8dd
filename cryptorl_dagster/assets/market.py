"""``raw_market_data``: the aligned hourly market slice a segment needs."""


import dagster as dg
import pandas as pd

from cryptorl_core.data.market import MarketData
from cryptorl_core.segments import segment_slice
from cryptorl_dagster.metadata import markdown_table
from cryptorl_dagster.partitions import segment_for_key, segment_partitions
from cryptorl_dagster.resources import MarketSource, ProfileResource

PREVIEW_ROWS = 5


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
    frame = segment_slice(market.frame, segment, profile.pipeline().windows.warmup_hours, market.source)
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
