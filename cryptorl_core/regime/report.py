"""What a person reads about a segment's regime model: tables, a chart, a cross-segment CSV."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cryptorl_core.plotting import figure_png, new_figure
from cryptorl_core.regime.model import RegimeModel
from cryptorl_core.schema import EVAL, HOURS_PER_YEAR, PRICE_CLOSE_COL, SPLIT_COL, TEST, TRAIN

#: The cross-segment table (one row per segment, :func:`metrics_table`).
METRICS_FILE = "hmm_wfo_metrics.csv"
#: One segment's row of that table (:func:`segment_metrics`), published beside its model.
SEGMENT_METRICS_FILE = "segment_metrics.json"
STATE_LABELS = tuple(f"s{i}" for i in range(4))
#: What the stable order means (see :func:`~cryptorl_core.regime.model.stable_order`).
STATE_MEANINGS = ("up", "flat", "down", "stress")
#: Colours of the stable states (up, flat, down, stress).
STATE_COLOURS = ("#2ca02c", "#7f7f7f", "#ff7f0e", "#d62728")


def transition_table(model: RegimeModel) -> pd.DataFrame:
    """Hourly transition matrix with readable labels (row: from, column: to)."""
    labels = list(STATE_LABELS[: model.n_states])
    table = pd.DataFrame(model.transmat, index=labels, columns=labels)
    table.index.name = "from \\ to"
    return table


def split_loglik(frame: pd.DataFrame, loglik: np.ndarray) -> dict[str, float]:
    """Mean one-step predictive log-likelihood per row of train, eval and test."""
    split = frame[SPLIT_COL].to_numpy()
    return {name: float(loglik[split == name].mean()) if (split == name).any() else float("nan")
            for name in (TRAIN, EVAL, TEST)}


def state_summary(model: RegimeModel, frame: pd.DataFrame, probs: np.ndarray) -> pd.DataFrame:
    """Per stable state: duration, train occupancy, emission means and the realised
    hourly return and volatility of the traded asset over train hours assigned to it
    (filtered argmax).

    :param probs: filtered probabilities of every row of ``frame``.
    """
    train = frame[SPLIT_COL].to_numpy() == TRAIN
    log_ret = np.log(frame[PRICE_CLOSE_COL].to_numpy(dtype=float))
    log_ret = np.diff(log_ret, prepend=np.nan)
    state = probs.argmax(axis=1)
    rows = []
    for s in range(model.n_states):
        r = log_ret[train & (state == s)]
        r = r[np.isfinite(r)]
        row = {"mean_duration_h": model.mean_durations()[s],
               "train_occupancy": probs[train, s].mean(),
               "train_hours_argmax": int(len(r)),
               "mean_ret_bp_per_h": 1e4 * r.mean() if len(r) else np.nan,
               "vol_pct_per_h": 100 * r.std() if len(r) > 1 else np.nan,
               "ann_vol_pct": 100 * r.std() * np.sqrt(HOURS_PER_YEAR) if len(r) > 1 else np.nan}
        row.update({f"mean_{c}": model.means[s, i] for i, c in enumerate(model.columns)})
        rows.append(row)
    table = pd.DataFrame(rows, index=list(STATE_LABELS[: model.n_states]))
    table.index.name = "state"
    return table


def segment_metrics(key: str, model: RegimeModel, frame: pd.DataFrame, loglik: np.ndarray,
                    recovery: dict | None = None) -> dict:
    """One row of the cross-segment table.

    :param key: segment key.
    :param loglik: one-step predictive log-likelihood of every row of ``frame``.
    :param recovery: :func:`~cryptorl_core.regime.recovery.regime_recovery` output, if any.
    """
    ll = split_loglik(frame, loglik)
    row = {"segment": key, "fit_start": model.fit_window["start"], "fit_end": model.fit_window["end"],
           "n_fit_rows": model.fit_window["n_fit_rows"], "best_seed": model.best_seed,
           "converged": model.diagnostics.get("converged"),
           "n_warnings": len(model.diagnostics.get("warnings", [])),
           "train_loglik": ll[TRAIN], "eval_loglik": ll[EVAL], "test_loglik": ll[TEST]}
    for s, d in enumerate(model.mean_durations()):
        row[f"duration_s{s}_h"] = float(d)
    for s, occ in enumerate(model.diagnostics.get("occupancy", [])):
        row[f"occupancy_s{s}"] = float(occ)
    if recovery:
        row.update({k: recovery[k] for k in ("accuracy_test", "ari_test", "accuracy_all", "ari_all")})
    return row


def _plain(value: object) -> object:
    """A numpy scalar as the Python value JSON can hold."""
    return value.item() if hasattr(value, "item") else str(value)


def write_segment_metrics(directory: str | Path, row: dict) -> Path:
    """Write one segment's row (:func:`segment_metrics`) as ``<directory>/segment_metrics.json``."""
    path = Path(directory) / SEGMENT_METRICS_FILE
    path.write_text(json.dumps(row, indent=1, default=_plain))
    return path


def read_segment_metrics(directory: str | Path) -> dict | None:
    """The row :func:`write_segment_metrics` left in ``directory``, or None if there is none."""
    path = Path(directory) / SEGMENT_METRICS_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def metrics_table(keys: Sequence[str], rows: Mapping[str, dict]) -> tuple[pd.DataFrame, list[str]]:
    """The cross-segment table: one row per segment of ``keys`` that has one, in that order.

    :param keys: every segment key, in order.
    :param rows: :func:`segment_metrics` rows by segment key (keys not in ``keys`` are ignored).
    :return: the table (columns as in the rows, ``segment`` first; empty with only ``segment``
        when no row is present) and the keys without a row.
    """
    present = [k for k in keys if k in rows]
    table = pd.DataFrame([{**rows[k], "segment": k} for k in present])
    if table.empty:
        return pd.DataFrame(columns=["segment"]), list(keys)
    table = table[["segment", *(c for c in table.columns if c != "segment")]]
    return table, [k for k in keys if k not in rows]


def write_metrics_table(table: pd.DataFrame, path: str | Path) -> Path:
    """Write the cross-segment table as CSV, atomically (temporary file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    table.to_csv(tmp, index=False)
    os.replace(tmp, path)
    return path


def _split_boundaries(frame: pd.DataFrame) -> list[tuple[pd.Timestamp, str]]:
    """First timestamp of each train / eval / test block."""
    split = frame[SPLIT_COL]
    return [(split.index[split.to_numpy() == name][0], name)
            for name in (TRAIN, EVAL, TEST) if (split == name).any()]


def plot_regimes(frame: pd.DataFrame, probs: np.ndarray, title: str = "") -> bytes:
    """PNG: price shaded by the most probable filtered state, split starts marked, and
    the stacked filtered probabilities below.

    :param probs: filtered probabilities of every row of ``frame`` (stable order).
    """
    idx = frame.index
    state = probs.argmax(axis=1)
    fig, (ax, axp) = new_figure((13, 6), 80, 2, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.plot(idx, frame[PRICE_CLOSE_COL].to_numpy(), color="black", lw=0.7)
    ax.set_yscale("log")
    band = ax.get_xaxis_transform()  # x in data, y in axes fraction: full-height shading
    for s in range(probs.shape[1]):
        ax.fill_between(idx, 0, 1, where=state == s, transform=band, step="post",
                        color=STATE_COLOURS[s], alpha=0.25, lw=0,
                        label=f"{STATE_LABELS[s]} {STATE_MEANINGS[s]}")
    axp.stackplot(idx, probs.T, colors=STATE_COLOURS[: probs.shape[1]], alpha=0.8)
    for a in (ax, axp):
        for ts, name in _split_boundaries(frame):
            a.axvline(ts, color="navy", ls="--", lw=1)
            if a is ax:
                a.text(ts, 0.98, f" {name}", transform=band, va="top", color="navy")
    ax.set_ylabel("price_close (log)")
    axp.set_ylabel("P(state | past)")
    axp.set_ylim(0, 1)
    ax.legend(loc="lower left", ncol=4, fontsize=8)
    ax.set_title(title or "filtered regimes")
    return figure_png(fig)
