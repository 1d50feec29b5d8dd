"""Keep one seed per segment again, by a rule read on the eval month only: an arm that trains nothing.

A run trains two seeds and keeps one (:func:`~cryptorl_core.agent.train.train_policy`): among
those live on the eval month, the one with the highest eval reward, the shaped step utility
that prices size (risk aversion, hold cost). Each seed's kept model scored alone (``python -m
cryptorl_core.experiment --rescore LABEL --checkpoint seeds_kept --average-seeds S``) gives
that seed's eval-month, train and held-out figures. This module keeps, per segment, the seed
that another rule on the eval-month figures prefers, and writes that seed's row under a new
label, to be judged by :mod:`cryptorl_core.arm_decision` like a trained arm::

    python -m cryptorl_core.seed_choice storage/experiments/nested.jsonl seed4_kept_s45 seed5_kept_s45 \\
        --by eval_return --label choose_return_s45

No held-out figure takes part in the choice: the rows' ``heldout_`` keys are copied, never read.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryptorl_core.arm_decision import label_rows, read_rows

#: Eval-month figures a choice ranks by (higher is better), once a seed is live on the eval month.
RANKS = {"eval_return": "agent_total_return_pct", "eval_sharpe": "agent_sharpe"}


def choose_seeds(rows: pd.DataFrame, labels: Sequence[str], by: str, label: str) -> list[dict[str, Any]]:
    """Per segment that every label has, the row of the candidate live on the eval month
    (``agent_collapsed`` false) with the highest ``RANKS[by]``; a tie keeps the earlier label.

    :param rows: the harness's rows (:func:`~cryptorl_core.arm_decision.read_rows`), one
        candidate label per seed; a label's last row of a segment is its row
        (:func:`~cryptorl_core.arm_decision.label_rows`).
    :param labels: the candidates' labels, one per seed.
    :param by: a key of :data:`RANKS`.
    :param label: the label the chosen rows are written under.
    :return: the chosen rows as JSON objects (:func:`json_row`), relabelled, each naming its
        source in ``chosen_from``.
    :raises ValueError: fewer than two labels, an unknown rank, a label without nested rows,
        or no segment shared.
    """
    if len(labels) < 2:
        raise ValueError(f"a choice needs at least two candidate labels, got {list(labels)}")
    if by not in RANKS:
        raise ValueError(f"by must be one of {sorted(RANKS)}, got {by!r}")
    candidates = [label_rows(rows, name) for name in labels]
    shared = sorted(set.intersection(*(set(c.index) for c in candidates)))
    if not shared:
        raise ValueError(f"the labels {list(labels)} share no segment")

    def key(i: int, segment: str) -> tuple[bool, float, int]:
        row = candidates[i].loc[segment]
        return not bool(row["agent_collapsed"]), float(row[RANKS[by]]), -i

    chosen = []
    for segment in shared:
        best = max(range(len(labels)), key=lambda i: key(i, segment))
        chosen.append({**json_row(candidates[best].loc[segment]), "segment": segment, "label": label,
                       "chosen_from": labels[best], "chosen_by": by})
    return chosen


def json_row(row: pd.Series) -> dict[str, Any]:
    """A frame's row as a JSON object: numpy scalars as Python ones, and every missing value left
    out, whether the row's own (a NaN figure) or one a pooled frame gave it from other rows' keys
    (a reader of the rows sees either as missing)."""
    plain = {key: value.item() if isinstance(value, np.generic) else value for key, value in row.items()}
    return {key: value for key, value in plain.items()
            if value is not None and not (isinstance(value, float) and math.isnan(value))}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rows", type=Path, help="the harness's --out file (JSON lines)")
    parser.add_argument("candidates", nargs="+", help="the candidate labels, one per seed")
    parser.add_argument("--by", choices=sorted(RANKS), default="eval_return", help="the eval-month figure ranked")
    parser.add_argument("--label", required=True, help="the label of the chosen rows")
    parser.add_argument("--out", type=Path, default=None, help="append the chosen rows here (default: ROWS)")
    args = parser.parse_args(argv)
    chosen = choose_seeds(read_rows(args.rows), args.candidates, args.by, args.label)
    with open(args.out or args.rows, "a") as fh:
        fh.writelines(json.dumps(row) + "\n" for row in chosen)
    counts = Counter(row["chosen_from"] for row in chosen)
    print(json.dumps({"label": args.label, "by": args.by, "segments": len(chosen), "chosen": dict(counts)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
