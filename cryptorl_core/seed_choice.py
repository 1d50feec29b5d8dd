"""Keep one seed per segment again, by a rule read on the eval month only: an arm that trains nothing.

A run trains two seeds and keeps one (:func:`~cryptorl_core.agent.train.train_policy`): among
those live on the eval month, the one with the highest eval reward, the shaped step utility
that prices size (risk aversion, hold cost). Each seed's kept model scored alone (``python -m
cryptorl_core.experiment --rescore LABEL --checkpoint seeds_kept --average-seeds S``) gives
that seed's eval-month, train and held-out figures. This module keeps, per segment, the seed
that another rule on the eval-month figures prefers, and writes that seed's row under a new
label, to be judged by :mod:`cryptorl_core.arm_decision` like a trained arm::

    python -m cryptorl_core.seed_choice storage/experiments/nested.jsonl seed4_s45 seed5_s45 \\
        --by eval_return --label choose_return_s45

No held-out figure takes part in the choice: the rows' ``heldout_`` keys are copied, never read.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptorl_core.experiment import HELD_OUT_PREFIX as HELD

#: Eval-month figures a choice ranks by (higher is better), once a seed is live on the eval month.
RANKS = {"eval_return": "agent_total_return_pct", "eval_sharpe": "agent_sharpe"}


def latest_rows(records: Sequence[dict[str, Any]], label: str) -> dict[str, dict[str, Any]]:
    """The nested rows of one label by segment, the last one written winning.

    :raises ValueError: the label has no nested row.
    """
    rows = {r["segment"]: r for r in records
            if r.get("label") == label and "segment" in r and f"{HELD}agent_sharpe" in r}
    if not rows:
        raise ValueError(f"no nested rows labelled {label!r}")
    return rows


def choose_seeds(records: Sequence[dict[str, Any]], labels: Sequence[str], by: str,
                 label: str) -> list[dict[str, Any]]:
    """Per segment that every label has, the row of the candidate live on the eval month
    (``agent_collapsed`` false) with the highest ``RANKS[by]``; a tie keeps the earlier label.

    :param records: the harness's rows (one candidate label per seed).
    :param labels: the candidates' labels, one per seed.
    :param by: a key of :data:`RANKS`.
    :param label: the label the chosen rows are written under.
    :return: the chosen rows, relabelled, each naming its source in ``chosen_from``.
    :raises ValueError: fewer than two labels, an unknown rank, or no segment shared.
    """
    if len(labels) < 2:
        raise ValueError(f"a choice needs at least two candidate labels, got {list(labels)}")
    if by not in RANKS:
        raise ValueError(f"by must be one of {sorted(RANKS)}, got {by!r}")
    candidates = [latest_rows(records, name) for name in labels]
    shared = sorted(set.intersection(*(set(c) for c in candidates)))
    if not shared:
        raise ValueError(f"the labels {list(labels)} share no segment")

    def key(i: int, segment: str) -> tuple[bool, float, int]:
        row = candidates[i][segment]
        return not bool(row["agent_collapsed"]), float(row[RANKS[by]]), -i

    chosen = []
    for segment in shared:
        best = max(range(len(labels)), key=lambda i: key(i, segment))
        chosen.append({**candidates[best][segment], "label": label, "chosen_from": labels[best],
                       "chosen_by": by})
    return chosen


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rows", type=Path, help="the harness's --out file (JSON lines)")
    parser.add_argument("candidates", nargs="+", help="the candidate labels, one per seed")
    parser.add_argument("--by", choices=sorted(RANKS), default="eval_return", help="the eval-month figure ranked")
    parser.add_argument("--label", required=True, help="the label of the chosen rows")
    parser.add_argument("--out", type=Path, default=None, help="append the chosen rows here (default: ROWS)")
    args = parser.parse_args(argv)
    with open(args.rows) as fh:
        records = [json.loads(line) for line in fh if line.strip()]
    chosen = choose_seeds(records, args.candidates, args.by, args.label)
    with open(args.out or args.rows, "a") as fh:
        fh.writelines(json.dumps(row) + "\n" for row in chosen)
    counts = Counter(row["chosen_from"] for row in chosen)
    print(json.dumps({"label": args.label, "by": args.by, "segments": len(chosen), "chosen": dict(counts)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
