"""Headless matplotlib figures rendered to PNG bytes (for files and Dagster metadata).

A bare :class:`~matplotlib.figure.Figure` with an Agg canvas never opens a window and
touches no pyplot global state, so it is safe in run workers and threads.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def new_figure(figsize: tuple[float, float], dpi: int = 80, nrows: int = 1, **subplot_kw) -> tuple[Figure, np.ndarray]:
    """A figure with ``nrows`` stacked axes (returned as a 1-D array)."""
    fig = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, 1, squeeze=False, **subplot_kw)[:, 0]


def figure_png(fig: Figure, path: str | Path | None = None) -> bytes:
    """Render ``fig`` to PNG bytes, also writing them to ``path`` when given."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    png = buf.getvalue()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(png)
    return png
