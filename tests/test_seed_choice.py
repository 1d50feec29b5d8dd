"""Choosing a run's seed again from each seed's rescored rows (cryptorl_core.seed_choice)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from cryptorl_core.arm_decision import label_rows, read_rows
from cryptorl_core.seed_choice import choose_seeds, main


def choose(rows: list[dict], labels: list[str], by: str = "eval_return") -> list[dict]:
    return choose_seeds(pd.DataFrame(rows), labels, by, "arm")


def seed_row(label: str, segment: str, eval_return: float, eval_collapsed: bool = False,
             heldout_return: float = 0.0) -> dict:
    """One rescored seed's row: its eval-month figures and the held-out ones the choice must not read."""
    return {"label": label, "segment": segment, "agent_total_return_pct": eval_return,
            "agent_sharpe": eval_return / 10, "agent_collapsed": float(eval_collapsed),
            "heldout_agent_sharpe": 1.0, "heldout_agent_total_return_pct": heldout_return,
            "heldout_buy_and_hold_sharpe": 0.5, "heldout_buy_and_hold_total_return_pct": 0.0,
            "heldout_agent_collapsed": 0.0, "train_agent_quarters_collapsed": 0}


def candidate_rows() -> list[dict]:
    """Seed 4 grows 2021-Q1's eval month more, seed 5 grows 2021-Q2's more but is collapsed on it;
    only seed 4 has 2021-Q3. The held-out returns point the other way each time."""
    return [seed_row("s4", "2021-Q1", 8.0, heldout_return=-3.0), seed_row("s5", "2021-Q1", 2.0, heldout_return=9.0),
            seed_row("s4", "2021-Q2", 1.0, heldout_return=-1.0),
            seed_row("s5", "2021-Q2", 20.0, eval_collapsed=True, heldout_return=7.0),
            seed_row("s4", "2021-Q3", 5.0)]


def test_the_seed_live_on_the_eval_month_with_the_higher_return_is_kept() -> None:
    chosen = choose(candidate_rows(), ["s4", "s5"])
    assert [(r["segment"], r["chosen_from"]) for r in chosen] == [("2021-Q1", "s4"), ("2021-Q2", "s4")]
    assert [r["heldout_agent_total_return_pct"] for r in chosen] == [-3.0, -1.0]
    assert {r["label"] for r in chosen} == {"arm"} and {r["chosen_by"] for r in chosen} == {"eval_return"}


def test_a_tie_keeps_the_earlier_label_and_a_later_row_replaces_an_earlier_one() -> None:
    rows = [seed_row("s4", "2021-Q1", 3.0, heldout_return=1.0), seed_row("s5", "2021-Q1", 9.0),
            seed_row("s5", "2021-Q1", 3.0, heldout_return=2.0)]
    chosen = choose(rows, ["s4", "s5"])
    assert chosen[0]["chosen_from"] == "s4" and chosen[0]["heldout_agent_total_return_pct"] == 1.0
    assert choose(rows, ["s5", "s4"])[0]["heldout_agent_total_return_pct"] == 2.0


def test_bad_candidates_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="at least two candidate labels"):
        choose(candidate_rows(), ["s4"])
    with pytest.raises(ValueError, match="by must be one of"):
        choose(candidate_rows(), ["s4", "s5"], by="heldout_return")
    with pytest.raises(ValueError, match="no nested rows labelled 's6'"):
        choose(candidate_rows(), ["s4", "s6"])
    with pytest.raises(ValueError, match="share no segment"):
        choose([seed_row("s4", "2021-Q1", 1.0), seed_row("s5", "2021-Q2", 1.0)], ["s4", "s5"])


def test_the_cli_appends_each_chosen_row_as_it_was_written(tmp_path, capsys) -> None:
    rows = candidate_rows()
    rows[1]["eval_reward"] = 4.0  # a key only seed 5's rows have: not given to seed 4's
    rows[0]["agent_bear_mean"] = float("nan")  # no bear bar in the month: missing, as pandas reads it
    path = tmp_path / "nested.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main([str(path), "s4", "s5", "--by", "eval_sharpe", "--label", "arm"]) == 0
    assert json.loads(capsys.readouterr().out) == {"label": "arm", "by": "eval_sharpe", "segments": 2,
                                                   "chosen": {"s4": 2}}
    written = [json.loads(line) for line in path.read_text().splitlines()[len(rows):]]
    source = {k: v for k, v in rows[0].items() if k != "agent_bear_mean"}
    assert written[0] == {**source, "label": "arm", "chosen_from": "s4", "chosen_by": "eval_sharpe"}
    arm = label_rows(read_rows(path), "arm")
    assert list(arm.index) == ["2021-Q1", "2021-Q2"]
    assert list(arm["heldout_agent_total_return_pct"]) == [-3.0, -1.0]
