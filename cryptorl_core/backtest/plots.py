"""Backtest charts as PNG bytes (matplotlib Agg, no display, no pyplot global state).

Figures are small (``BacktestConfig.plot_figsize`` at ``plot_dpi``) so that a chart embedded
as a base64 data URI (:func:`png_to_markdown`, for Dagster's markdown metadata) stays
well under ~150 kB.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from cryptorl_core.backtest.config import BacktestConfig
from cryptorl_core.backtest.metrics import drawdown
from cryptorl_core.plotting import figure_png, new_figure

ArrayLike = np.ndarray | pd.Series | Sequence[float]

#: Name of the series drawn on top, thicker, in the multi-strategy charts.
AGENT = "agent"


def _figure(config: BacktestConfig | None, nrows: int = 1, **kw) -> tuple[Figure, np.ndarray]:
    cfg = config or BacktestConfig()
    return new_figure(cfg.plot_figsize, cfg.plot_dpi, nrows, **kw)


def _x(series: ArrayLike) -> np.ndarray | pd.Index:
    return series.index if isinstance(series, pd.Series) else np.arange(len(series))


def _style(name: str) -> dict:
    return {"lw": 1.8, "zorder": 3, "color": "black"} if name == AGENT else {"lw": 1.0}


def equity_curve_png(
    navs: Mapping[str, ArrayLike],
    path: str | Path | None = None,
    title: str = "Equity (growth of 1)",
    config: BacktestConfig | None = None,
) -> bytes:
    """Equity curves of several strategies, each rebased to 1 at the window start.

    :param navs: strategy name to NAV path (Series with a time index, or arrays); the
        ``"agent"`` entry is drawn thicker, on top.
    :param path: also write the PNG there when given.
    :param title: chart title.
    :param config: figure size and dpi.
    :return: the PNG bytes.
    """
    fig, (ax,) = _figure(config)
    for name, nav in navs.items():
        v = np.asarray(nav, dtype=float)
        ax.plot(_x(nav), v / v[0], label=name, **_style(name))
    ax.axhline(1.0, color="grey", lw=0.6, ls="--")
    ax.set_title(title)
    if navs:
        ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)
    return figure_png(fig, path)


def drawdown_png(
    navs: Mapping[str, ArrayLike],
    path: str | Path | None = None,
    title: str = "Drawdown (%)",
    config: BacktestConfig | None = None,
) -> bytes:
    """Drawdown curves (% below the running peak) of several strategies.

    :param navs: strategy name to NAV path.
    :param path: also write the PNG there when given.
    :param title: chart title.
    :param config: figure size and dpi.
    :return: the PNG bytes.
    """
    fig, (ax,) = _figure(config)
    for name, nav in navs.items():
        dd = 100.0 * drawdown(nav)
        line = ax.plot(_x(nav), dd, label=name, **_style(name))[0]
        if name == AGENT:
            ax.fill_between(_x(nav), dd, 0.0, color=line.get_color(), alpha=0.15)
    ax.set_title(title)
    ax.legend(loc="lower left", fontsize="small")
    ax.grid(alpha=0.3)
    return figure_png(fig, path)


def position_png(
    prices: ArrayLike,
    positions: ArrayLike,
    path: str | Path | None = None,
    title: str = "Price and position",
    config: BacktestConfig | None = None,
) -> bytes:
    """Price with long/short periods shaded (top) and the position (bottom), shared x axis.

    :param prices: closes of the traded asset.
    :param positions: positions aligned with ``prices``.
    :param path: also write the PNG there when given.
    :param title: chart title.
    :param config: figure size and dpi.
    :return: the PNG bytes.
    """
    px, pos = np.asarray(prices, dtype=float), np.asarray(positions, dtype=float)
    if px.shape != pos.shape:
        raise ValueError(f"prices {px.shape} and positions {pos.shape} differ")
    x = _x(prices)
    fig, (ax_p, ax_q) = _figure(config, nrows=2, sharex=True, height_ratios=(2, 1))
    ax_p.plot(x, px, color="black", lw=1.0)
    band = ax_p.get_xaxis_transform()  # y in axes units: shade the full height
    ax_p.fill_between(
        x,
        0,
        1,
        where=pos > 0,
        transform=band,
        color="tab:green",
        alpha=0.15,
        step="post",
        label="long",
    )
    ax_p.fill_between(
        x,
        0,
        1,
        where=pos < 0,
        transform=band,
        color="tab:red",
        alpha=0.15,
        step="post",
        label="short",
    )
    ax_p.set_title(title)
    ax_p.legend(loc="upper left", fontsize="small")
    ax_p.grid(alpha=0.3)
    ax_q.step(x, pos, where="post", color="tab:blue", lw=1.0)
    ax_q.axhline(0.0, color="grey", lw=0.6)
    ax_q.set_ylim(-1.1, 1.1)
    ax_q.set_ylabel("position")
    ax_q.grid(alpha=0.3)
    return figure_png(fig, path)


def png_to_markdown(png: bytes, alt: str = "chart") -> str:
    """Markdown image tag embedding the PNG as a base64 data URI.

    :param png: PNG bytes.
    :param alt: alt text.
    :return: ``![alt](data:image/png;base64,...)``.
    """
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"
