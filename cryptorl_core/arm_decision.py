"""The decision rules for a nested experiment arm against its baseline, as code.

A change to the agent goes into the profiles only when its nested arm (``python -m
cryptorl_core.experiment --nested``) passes the rule ``docs/EXPERIMENTS.md`` fixed before the
arm ran. Held-out months are the nested runs' months that no choice saw; the test quarters are
not in those rows at all. Three rules, computed from the rows the harness wrote:

- ``level-or-ahead`` (the default): level with or ahead of the baseline on every held-out
  figure below and ahead on at least one, with no more collapsed train quarters.
- ``collapse-first``: collapse halved (train quarters plus held-out months, neither part worse),
  while the other figures slip by no more than the seeds' own spread (:data:`SEED_SPREAD`).
  For an arm aimed at the one issue 11 target the profile misses.
- ``sizing``: for an arm run on several seed pairs (``--pair``), each against the baseline on its
  own seeds. The mean held-out alpha, where the size held in falling months shows, must be ahead
  on every pair and by at least the baselines' spread on average; collapse no worse, and the
  count and median alpha slipping by no more than that spread (:data:`SIZING_SPREAD`).

::

    python -m cryptorl_core.arm_decision storage/exp12/nested.jsonl nest_hold1_s23 nest_last_s23
    python -m cryptorl_core.arm_decision --rule collapse-first nested.jsonl nest_hold1_s45 nest_last_s45
    python -m cryptorl_core.arm_decision --rule sizing nested.jsonl arm_s45 base_s45 --pair arm_s67 base_s67

Both arms are read on the segments they share (the last row of a label and segment wins, so a
re-run segment replaces the earlier one). A label may name several, comma-separated, pooled: a
baseline run in two halves (``nest_gain1_s45_x,nest_gain1_s45_y``) is one arm of 22 segments.

Read a verdict against the seeds' own spread: the profile run again with other seeds moved the
count by 3 months, the median alpha by 1.6 pp and the collapsed months by 1 on the same 22
held-out months, and the level-or-ahead rule would have rejected it (``docs/EXPERIMENTS.md``, "The profile
against itself").
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from cryptorl_core.experiment import HELD_OUT_PREFIX as HELD


@dataclass(frozen=True)
class HeldOutFigures:
    """One arm's figures over the shared held-out months.

    :param n_segments: held-out months read.
    :param n_ge_hold: months with the kept policy's Sharpe at or above buy-and-hold's.
    :param median_alpha_pp: median of the policy's return minus buy-and-hold's, in points.
    :param mean_alpha_pp: their mean: unlike the median (a rising month, where any position
        under full size trails buy-and-hold a little), it carries the falling months' short.
    :param n_collapsed: months whose policy is collapsed on its own target.
    :param train_quarters_collapsed: collapsed train quarters of the kept policies, summed.
    :param median_sharpe: median held-out Sharpe of the kept policy.
    """

    n_segments: int
    n_ge_hold: int
    median_alpha_pp: float
    mean_alpha_pp: float
    n_collapsed: int
    train_quarters_collapsed: int
    median_sharpe: float


@dataclass(frozen=True)
class ArmDecision:
    """The rule's verdict on an arm.

    :param arm: the arm's figures.
    :param baseline: the baseline's figures on the same months.
    :param adopt: whether the rule keeps the arm's change.
    :param reasons: what decided it, one line per figure behind or ahead.
    :param sharpe_higher: months where the arm's held-out Sharpe is above the baseline's.
    :param sharpe_lower: months where it is below.
    :param train_bear_target: the median over segments of the kept policy's mean own target on
        the train window's true-bear bars, arm and baseline: the short-sizing figure the recent
        rules add to the held-out ones (``None`` where the rows carry no true regime).
    """

    arm: HeldOutFigures
    baseline: HeldOutFigures
    adopt: bool
    reasons: tuple[str, ...]
    sharpe_higher: int
    sharpe_lower: int
    train_bear_target: tuple[float, float] | None = None


def label_rows(rows: pd.DataFrame, label: str) -> pd.DataFrame:
    """The nested rows of one label, one per segment (the last one written), indexed by segment.

    :param label: one label, or several comma-separated ones pooled (their segments must differ).
    :raises ValueError: a label has no nested row, or two pooled labels share a segment.
    """
    parts = []
    for name in label.split(","):
        mine = rows[rows["label"] == name]
        if mine.empty or f"{HELD}agent_sharpe" not in mine or mine[f"{HELD}agent_sharpe"].isna().all():
            raise ValueError(f"no nested rows labelled {name!r}")
        parts.append(mine.drop_duplicates("segment", keep="last"))
    pooled = pd.concat(parts)
    twice = pooled["segment"][pooled["segment"].duplicated()]
    if not twice.empty:
        raise ValueError(f"the labels pooled in {label!r} share segments {sorted(set(twice))}")
    return pooled.set_index("segment")


def held_out_figures(rows: pd.DataFrame) -> HeldOutFigures:
    """:class:`HeldOutFigures` of one arm's rows (one per segment)."""
    alpha = rows[f"{HELD}agent_total_return_pct"] - rows[f"{HELD}buy_and_hold_total_return_pct"]
    return HeldOutFigures(
        n_segments=len(rows),
        n_ge_hold=int((rows[f"{HELD}agent_sharpe"] >= rows[f"{HELD}buy_and_hold_sharpe"]).sum()),
        median_alpha_pp=round(float(alpha.median()), 1),
        mean_alpha_pp=round(float(alpha.mean()), 1),
        n_collapsed=int(rows[f"{HELD}agent_collapsed"].sum()),
        train_quarters_collapsed=int(rows["train_agent_quarters_collapsed"].sum()),
        median_sharpe=round(float(rows[f"{HELD}agent_sharpe"].median()), 2),
    )


#: The harness's key of the kept policy's mean own target on train bear bars (synthetic rows).
BEAR_TARGET = "train_agent_bear_mean"

#: The figures both rules name in their reasons.
COUNT, ALPHA = "held-out Sharpe >= buy-and-hold's", "median held-out alpha pp"


def decide(arm: HeldOutFigures, baseline: HeldOutFigures) -> tuple[bool, tuple[str, ...]]:
    """The level-or-ahead rule: level or ahead on the count at or above buy-and-hold, the median
    alpha (to the 0.1 point the log reports) and the collapsed months, ahead on at least one, and
    no more collapsed train quarters than the baseline.

    :return: ``(adopt, reasons)``.
    """
    # (name, arm's, baseline's, +1 where higher is better)
    figures = ((COUNT, arm.n_ge_hold, baseline.n_ge_hold, 1),
               (ALPHA, arm.median_alpha_pp, baseline.median_alpha_pp, 1),
               ("collapsed held-out months", arm.n_collapsed, baseline.n_collapsed, -1))
    behind = [f"behind on {name}: {a} against {b}" for name, a, b, sign in figures if sign * (a - b) < 0]
    ahead = [f"ahead on {name}: {a} against {b}" for name, a, b, sign in figures if sign * (a - b) > 0]
    if arm.train_quarters_collapsed > baseline.train_quarters_collapsed:
        behind.append(f"more collapsed train quarters: {arm.train_quarters_collapsed} "
                      f"against {baseline.train_quarters_collapsed}")
    if not ahead:
        behind.append("ahead on no held-out figure")
    return not behind, tuple(behind + ahead)


@dataclass(frozen=True)
class SeedSpread:
    """How far a redraw of the profile's seeds moved the held-out figures (seeds 4-5 against 2-3,
    ``docs/EXPERIMENTS.md``, "The profile against itself"): the slack the collapse-first rule
    gives the figures it does not aim at.

    :param count: months at or above buy-and-hold's Sharpe (the redraw moved it by 3).
    :param alpha_pp: median alpha, twice the 1.6 pp the redraw moved it.
    :param sharpe_ratio: the median Sharpe's floor as a share of the baseline's (the redraw
        moved it about 6 %).
    """

    count: int = 3
    alpha_pp: float = 3.2
    sharpe_ratio: float = 0.9


SEED_SPREAD = SeedSpread()


def more_collapse(arm: HeldOutFigures, baseline: HeldOutFigures) -> str | None:
    """Why the arm collapses more than the baseline on either part (train quarters, held-out
    months), or None when it does not."""
    if arm.train_quarters_collapsed > baseline.train_quarters_collapsed or arm.n_collapsed > baseline.n_collapsed:
        return (f"more collapsed train quarters or held-out months: {arm.train_quarters_collapsed} + "
                f"{arm.n_collapsed} against {baseline.train_quarters_collapsed} + {baseline.n_collapsed}")
    return None


def decide_collapse_first(arm: HeldOutFigures, baseline: HeldOutFigures,
                          spread: SeedSpread = SEED_SPREAD) -> tuple[bool, tuple[str, ...]]:
    """The collapse-first rule: collapsed train quarters and held-out months each no more than
    the baseline's and together at most half its sum; the count, median alpha and median Sharpe
    no further behind than ``spread``.

    :return: ``(adopt, reasons)``.
    """
    collapse, collapse_base = (arm.train_quarters_collapsed + arm.n_collapsed,
                               baseline.train_quarters_collapsed + baseline.n_collapsed)
    failed = [worse] if (worse := more_collapse(arm, baseline)) else []
    if 2 * collapse > collapse_base:
        failed.append(f"collapse not halved: {collapse} against {collapse_base}")
    guards = ((COUNT, arm.n_ge_hold, baseline.n_ge_hold - spread.count),
              (ALPHA, arm.median_alpha_pp, round(baseline.median_alpha_pp - spread.alpha_pp, 1)),
              ("median held-out Sharpe", arm.median_sharpe, round(spread.sharpe_ratio * baseline.median_sharpe, 2)))
    failed += [f"{name} under its floor: {a} against {floor}" for name, a, floor in guards if a < floor]
    passed = [] if failed else [f"collapse {collapse} against {collapse_base}, guards held"]
    return not failed, tuple(failed + passed)


RULES = {"level-or-ahead": decide, "collapse-first": decide_collapse_first}


@dataclass(frozen=True)
class SizingSpread:
    """How far the profile's two seed pairs (4-5 and 6-7, ``docs/EXPERIMENTS.md``, "The profile on
    a second seed pair") lie apart on the held-out figures: the bar the sizing rule sets.

    :param mean_alpha_pp: mean held-out alpha (+5.6 and +10.1 pp): the average gain asked for.
    :param median_alpha_pp: median held-out alpha (−0.8 and −5.7 pp): the average loss allowed.
    :param count: months at or above buy-and-hold's Sharpe a pair may lose.
    """

    mean_alpha_pp: float = 4.5
    median_alpha_pp: float = 4.9
    count: int = 1


SIZING_SPREAD = SizingSpread()


def decide_sizing(pairs: Sequence[tuple[HeldOutFigures, HeldOutFigures]],
                  spread: SizingSpread = SIZING_SPREAD) -> tuple[bool, tuple[str, ...]]:
    """The sizing rule over ``(arm, baseline)`` pairs on different seeds: on every pair no more
    collapsed months or train quarters, a count at most ``spread.count`` below, and the mean
    alpha ahead; on average over the pairs the mean alpha ahead by ``spread.mean_alpha_pp`` and
    the median alpha behind by no more than ``spread.median_alpha_pp``.

    :return: ``(adopt, reasons)``.
    """
    failed = []
    for i, (arm, base) in enumerate(pairs, start=1):
        if worse := more_collapse(arm, base):
            failed.append(f"pair {i}: {worse}")
        if arm.n_ge_hold < base.n_ge_hold - spread.count:
            failed.append(f"pair {i}: {COUNT} under its floor: {arm.n_ge_hold} against {base.n_ge_hold}")
        if arm.mean_alpha_pp <= base.mean_alpha_pp:
            failed.append(f"pair {i}: mean held-out alpha pp not ahead: {arm.mean_alpha_pp} against {base.mean_alpha_pp}")
    gain = round(sum(a.mean_alpha_pp - b.mean_alpha_pp for a, b in pairs) / len(pairs), 1)
    loss = round(sum(b.median_alpha_pp - a.median_alpha_pp for a, b in pairs) / len(pairs), 1)
    averages = [f"mean held-out alpha ahead by {gain} pp on average (at least {spread.mean_alpha_pp})",
                f"{ALPHA} behind by {loss} on average (at most {spread.median_alpha_pp})"]
    if gain < spread.mean_alpha_pp:
        failed.append(f"too little gain: {averages[0]}")
    if loss > spread.median_alpha_pp:
        failed.append(f"too much loss: {averages[1]}")
    return not failed, tuple(failed or averages)


@dataclass(frozen=True)
class PairsDecision:
    """The sizing rule's verdict on an arm run on several seed pairs.

    :param pairs: each pair's :class:`ArmDecision`, its ``adopt`` the level-or-ahead rule's
        verdict on that pair alone (for reference).
    :param adopt: whether the sizing rule keeps the arm's change.
    :param reasons: what decided it.
    """

    pairs: tuple[ArmDecision, ...]
    adopt: bool
    reasons: tuple[str, ...]


def compare_pairs(rows: pd.DataFrame, pairs: Sequence[tuple[str, str]]) -> PairsDecision:
    """The sizing rule applied to ``(arm, baseline)`` label pairs, each read on the segments it
    shares (:func:`compare_arms`).

    :raises ValueError: no pair, or a pair :func:`compare_arms` refuses.
    """
    if not pairs:
        raise ValueError("the sizing rule needs at least one (arm, baseline) pair")
    decisions = tuple(compare_arms(rows, arm, baseline) for arm, baseline in pairs)
    adopt, reasons = decide_sizing([(d.arm, d.baseline) for d in decisions])
    return PairsDecision(pairs=decisions, adopt=adopt, reasons=reasons)


def compare_arms(rows: pd.DataFrame, arm: str, baseline: str, rule: str = "level-or-ahead") -> ArmDecision:
    """A rule applied to two labels of a table of nested rows, on the segments both have.

    :param rows: the harness's rows (``--out`` JSON lines read into a frame).
    :param arm: the arm's label (several, comma-separated, are pooled: :func:`label_rows`).
    :param baseline: the baseline's label (likewise).
    :param rule: a key of :data:`RULES`.
    :raises ValueError: a label has no nested rows, or the two share no segment.
    """
    a, b = label_rows(rows, arm), label_rows(rows, baseline)
    shared = a.index.intersection(b.index).sort_values()
    if shared.empty:
        raise ValueError(f"{arm!r} and {baseline!r} share no segment")
    a, b = a.loc[shared], b.loc[shared]
    figures_a, figures_b = held_out_figures(a), held_out_figures(b)
    adopt, reasons = RULES[rule](figures_a, figures_b)
    diff = a[f"{HELD}agent_sharpe"] - b[f"{HELD}agent_sharpe"]
    bear = (None if BEAR_TARGET not in a or BEAR_TARGET not in b
            else (round(float(a[BEAR_TARGET].median()), 2), round(float(b[BEAR_TARGET].median()), 2)))
    return ArmDecision(arm=figures_a, baseline=figures_b, adopt=adopt, reasons=reasons,
                       sharpe_higher=int((diff > 0).sum()), sharpe_lower=int((diff < 0).sum()),
                       train_bear_target=bear)


def read_rows(path: Path) -> pd.DataFrame:
    """The harness's JSON-lines output as a frame."""
    with open(path) as fh:
        return pd.DataFrame([json.loads(line) for line in fh if line.strip()])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rows", type=Path, help="the harness's --out file (JSON lines)")
    parser.add_argument("arm", help="the arm's label (several, comma-separated, are pooled)")
    parser.add_argument("baseline", help="the baseline's label (several, comma-separated, are pooled)")
    parser.add_argument("--rule", choices=sorted([*RULES, "sizing"]), default="level-or-ahead",
                        help="the rule fixed for the arm")
    parser.add_argument("--pair", nargs=2, action="append", default=[], metavar=("ARM", "BASELINE"),
                        help="another seed pair of the arm and its baseline (the sizing rule only)")
    args = parser.parse_args(argv)
    if args.pair and args.rule != "sizing":
        parser.error("--pair is read only by --rule sizing")
    rows = read_rows(args.rows)
    if args.rule == "sizing":
        decision = compare_pairs(rows, [(args.arm, args.baseline), *map(tuple, args.pair)])
    else:
        decision = compare_arms(rows, args.arm, args.baseline, rule=args.rule)
    print(json.dumps({"arm": args.arm, "baseline": args.baseline, "rule": args.rule, **asdict(decision)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
