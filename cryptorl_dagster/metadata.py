"""Small helpers that turn core results into Dagster metadata a person reads."""

from __future__ import annotations

import dagster as dg
import pandas as pd

from cryptorl_core.backtest.plots import png_to_markdown


def markdown_table(frame: pd.DataFrame, floatfmt: str = ".4g") -> dg.MetadataValue:
    """A DataFrame as a markdown table (no extra dependency)."""
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join([frame.index.name or ""] + cols) + " |",
             "|" + "---|" * (len(cols) + 1)]
    for idx, row in frame.iterrows():
        cells = [format(v, floatfmt) if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join([str(idx)] + cells) + " |")
    return dg.MetadataValue.md("\n".join(lines))


def png_markdown(png: bytes, alt: str = "plot") -> dg.MetadataValue:
    """A PNG embedded as a base64 data URI, so it renders in the Dagster UI."""
    return dg.MetadataValue.md(png_to_markdown(png, alt))
