"""The nested arms' decision rule (cryptorl_core.arm_decision) on hand-made rows."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from cryptorl_core.arm_decision import compare_arms, compare_pairs, main


def nested_row(label: str, segment: str, sharpe: float, hold_sharpe: float = 1.0, ret: float = 10.0,
               hold_ret: float = 10.0, collapsed: bool = False, train_quarters: int = 0) -> dict:
    """One harness row with the held-out keys the rule reads."""
    return {"label": label, "segment": segment, "heldout_agent_sharpe": sharpe,
            "heldout_buy_and_hold_sharpe": hold_sharpe, "heldout_agent_total_return_pct": ret,
            "heldout_buy_and_hold_total_return_pct": hold_ret, "heldout_agent_collapsed": float(collapsed),
            "train_agent_quarters_collapsed": train_quarters}


def baseline_rows() -> list[dict]:
    """Three months: above buy-and-hold in two, alpha 0 / +5 / -5, the last one collapsed."""
    return [nested_row("base", "2021-Q1", 2.0, ret=10.0),
            nested_row("base", "2021-Q2", 2.0, ret=15.0),
            nested_row("base", "2021-Q3", 0.5, ret=5.0, collapsed=True, train_quarters=1)]


def test_an_arm_ahead_on_collapse_and_level_elsewhere_is_adopted() -> None:
    arm = [nested_row("arm", r["segment"], r["heldout_agent_sharpe"], ret=r["heldout_agent_total_return_pct"])
           for r in baseline_rows()]
    decision = compare_arms(pd.DataFrame(baseline_rows() + arm), "arm", "base")
    assert decision.adopt
    assert decision.arm.n_collapsed == 0 and decision.baseline.n_collapsed == 1
    assert decision.reasons == ("ahead on collapsed held-out months: 0 against 1",)


def test_an_arm_behind_on_one_figure_is_not_adopted_whatever_it_gains() -> None:
    # Fewer collapses, but one month fewer at or above buy-and-hold's Sharpe.
    arm = [nested_row("arm", "2021-Q1", 2.0), nested_row("arm", "2021-Q2", 0.9, ret=15.0),
           nested_row("arm", "2021-Q3", 0.5, ret=5.0)]
    decision = compare_arms(pd.DataFrame(baseline_rows() + arm), "arm", "base")
    assert not decision.adopt
    assert decision.arm.n_ge_hold == 1 and decision.baseline.n_ge_hold == 2
    assert "behind on held-out Sharpe >= buy-and-hold's: 1 against 2" in decision.reasons
    assert decision.sharpe_lower == 1 and decision.sharpe_higher == 0


def test_an_arm_level_everywhere_or_with_more_collapsed_train_quarters_is_not_adopted() -> None:
    same = [{**r, "label": "arm"} for r in baseline_rows()]
    level = compare_arms(pd.DataFrame(baseline_rows() + same), "arm", "base")
    assert not level.adopt and level.reasons == ("ahead on no held-out figure",)

    better_alpha = [{**r, "heldout_agent_total_return_pct": r["heldout_agent_total_return_pct"] + 3,
                     "train_agent_quarters_collapsed": 2} for r in same]
    decision = compare_arms(pd.DataFrame(baseline_rows() + better_alpha), "arm", "base")
    assert decision.arm.median_alpha_pp == pytest.approx(3.0)
    assert not decision.adopt
    assert "more collapsed train quarters: 6 against 1" in decision.reasons


def test_arms_are_read_on_shared_segments_and_a_rerun_segment_replaces_the_first() -> None:
    arm = [nested_row("arm", "2021-Q1", -5.0), nested_row("arm", "2021-Q1", 2.0),
           nested_row("arm", "2021-Q2", 2.0, ret=15.0), nested_row("arm", "2022-Q1", 9.0)]
    decision = compare_arms(pd.DataFrame(baseline_rows() + arm), "arm", "base")
    assert decision.arm.n_segments == decision.baseline.n_segments == 2
    assert decision.arm.n_ge_hold == 2 and decision.sharpe_lower == 0
    assert decision.baseline.n_collapsed == 0  # 2021-Q3 is not shared


def test_comma_separated_labels_pool_their_segments_and_report_the_bear_short() -> None:
    # The baseline run in two halves; each row carries its train bear-bar target.
    halves = [{**r, "label": "base_x" if r["segment"] != "2021-Q3" else "base_y",
               "train_agent_bear_mean": -0.3} for r in baseline_rows()]
    arm = [{**r, "label": "arm", "train_agent_bear_mean": -0.6} for r in halves]
    pooled = compare_arms(pd.DataFrame(halves + arm), "arm", "base_x,base_y")
    whole = compare_arms(pd.DataFrame([{**r, "label": "base"} for r in halves] + arm), "arm", "base")
    assert pooled.baseline == whole.baseline and pooled.baseline.n_segments == 3
    assert pooled.train_bear_target == (-0.6, -0.3)
    assert compare_arms(pd.DataFrame(baseline_rows() * 2), "base", "base").train_bear_target is None


def test_pooled_labels_sharing_a_segment_are_an_error() -> None:
    rows = baseline_rows() + [{**r, "label": "other"} for r in baseline_rows()[:1]]
    with pytest.raises(ValueError, match="share segments \\['2021-Q1'\\]"):
        compare_arms(pd.DataFrame(rows), "base,other", "base")


def test_a_label_without_nested_rows_is_an_error_naming_it() -> None:
    with pytest.raises(ValueError, match="'missing'"):
        compare_arms(pd.DataFrame(baseline_rows()), "missing", "base")


def test_the_command_reads_the_harness_file_and_prints_the_verdict(tmp_path, capsys) -> None:
    path = tmp_path / "nested.jsonl"
    arm = [{**r, "label": "arm", "heldout_agent_collapsed": 0.0} for r in baseline_rows()]
    path.write_text("".join(json.dumps(r) + "\n" for r in baseline_rows() + arm))
    assert main([str(path), "arm", "base"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["adopt"] is True and printed["arm"]["n_collapsed"] == 0


def test_collapse_first_adopts_collapse_halved_within_the_seed_spread_and_not_beyond() -> None:
    # Baseline collapse: 1 train quarter + 1 held-out month. The arm removes both, and gives
    # up 3 pp of alpha in every month: inside the 3.2 pp slack.
    cheaper = [{**r, "label": "arm", "heldout_agent_collapsed": 0.0, "train_agent_quarters_collapsed": 0,
                "heldout_agent_total_return_pct": r["heldout_agent_total_return_pct"] - 3} for r in baseline_rows()]
    decision = compare_arms(pd.DataFrame(baseline_rows() + cheaper), "arm", "base", rule="collapse-first")
    assert decision.adopt and decision.reasons == ("collapse 0 against 2, guards held",)
    # The level-or-ahead rule rejects the same arm for its alpha.
    assert not compare_arms(pd.DataFrame(baseline_rows() + cheaper), "arm", "base").adopt

    dearer = [{**r, "heldout_agent_total_return_pct": r["heldout_agent_total_return_pct"] - 1} for r in cheaper]
    decision = compare_arms(pd.DataFrame(baseline_rows() + dearer), "arm", "base", rule="collapse-first")
    assert not decision.adopt
    assert decision.reasons == ("median held-out alpha pp under its floor: -4.0 against -3.2",)


def test_collapse_first_wants_both_collapse_figures_no_worse_and_their_sum_halved() -> None:
    # Two fewer collapsed months but one more collapsed train quarter: the sum falls, a part rises.
    base = baseline_rows() + [nested_row("base", "2021-Q4", 2.0, collapsed=True),
                              nested_row("base", "2022-Q1", 2.0, collapsed=True)]
    arm = [{**r, "label": "arm", "heldout_agent_collapsed": 0.0,
            "train_agent_quarters_collapsed": 2 if r["segment"] == "2021-Q3" else 0} for r in base]
    decision = compare_arms(pd.DataFrame(base + arm), "arm", "base", rule="collapse-first")
    assert not decision.adopt
    assert decision.reasons == ("more collapsed train quarters or held-out months: 2 + 0 against 1 + 3",)

    same = [{**r, "label": "arm"} for r in base]
    decision = compare_arms(pd.DataFrame(base + same), "arm", "base", rule="collapse-first")
    assert not decision.adopt and decision.reasons == ("collapse not halved: 4 against 4",)


def test_the_command_takes_the_rule(tmp_path, capsys) -> None:
    path = tmp_path / "nested.jsonl"
    arm = [{**r, "label": "arm", "heldout_agent_collapsed": 0.0, "train_agent_quarters_collapsed": 0}
           for r in baseline_rows()]
    path.write_text("".join(json.dumps(r) + "\n" for r in baseline_rows() + arm))
    assert main(["--rule", "collapse-first", str(path), "arm", "base"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["rule"] == "collapse-first" and printed["adopt"] is True


def shifted(rows: list[dict], label: str, alpha_pp: dict[str, float] | float) -> list[dict]:
    """``rows`` relabelled, each month's return moved by ``alpha_pp`` (one figure, or per segment)."""
    def move(segment: str) -> float:
        return alpha_pp if isinstance(alpha_pp, (int, float)) else alpha_pp.get(segment, 0.0)
    return [{**r, "label": label,
             "heldout_agent_total_return_pct": r["heldout_agent_total_return_pct"] + move(r["segment"])}
            for r in rows]


def two_pairs(first: dict[str, float] | float, second: dict[str, float] | float) -> pd.DataFrame:
    """Baselines ``base``, ``base2`` (the same months) and arms ``arm``, ``arm2`` moved from them."""
    return pd.DataFrame(baseline_rows() + shifted(baseline_rows(), "base2", 0.0)
                        + shifted(baseline_rows(), "arm", first) + shifted(baseline_rows(), "arm2", second))


def test_the_sizing_rule_wants_the_mean_alpha_ahead_on_every_pair_and_by_the_spread_on_average() -> None:
    decision = compare_pairs(two_pairs(6.0, 4.0), [("arm", "base"), ("arm2", "base2")])
    assert decision.adopt
    assert [d.arm.mean_alpha_pp for d in decision.pairs] == [6.0, 4.0]
    assert decision.reasons[0] == "mean held-out alpha ahead by 5.0 pp on average (at least 4.5)"

    # An average gain of 5.5 pp, all of it on one pair: the other is not ahead.
    lopsided = compare_pairs(two_pairs(12.0, -1.0), [("arm", "base"), ("arm2", "base2")])
    assert not lopsided.adopt
    assert lopsided.reasons == ("pair 2: mean held-out alpha pp not ahead: -1.0 against 0.0",)

    small = compare_pairs(two_pairs(4.0, 4.0), [("arm", "base"), ("arm2", "base2")])
    assert not small.adopt
    assert small.reasons == ("too little gain: mean held-out alpha ahead by 4.0 pp on average (at least 4.5)",)


def test_the_sizing_rule_caps_the_median_loss_the_count_loss_and_collapse() -> None:
    # One falling month gains 45 pp and the two others lose 10: the mean gains 8.3 pp, the
    # median loses 5.0 pp, past the 4.9 allowed.
    one_month = {"2021-Q1": -10.0, "2021-Q2": -10.0, "2021-Q3": 45.0}
    decision = compare_pairs(two_pairs(one_month, one_month), [("arm", "base"), ("arm2", "base2")])
    assert not decision.adopt
    assert decision.reasons == ("too much loss: median held-out alpha pp behind by 5.0 on average (at most 4.9)",)

    rows = two_pairs(6.0, 6.0)
    worse = (rows["label"] == "arm2") & (rows["segment"] != "2021-Q3")
    rows.loc[worse, "heldout_agent_sharpe"] = 0.1  # two months fall under buy-and-hold's Sharpe
    rows.loc[(rows["label"] == "arm") & (rows["segment"] == "2021-Q1"), "train_agent_quarters_collapsed"] = 1
    decision = compare_pairs(rows, [("arm", "base"), ("arm2", "base2")])
    assert not decision.adopt
    assert decision.reasons == (
        "pair 1: more collapsed train quarters or held-out months: 2 + 1 against 1 + 1",
        "pair 2: held-out Sharpe >= buy-and-hold's under its floor: 0 against 2")


def test_the_command_reads_seed_pairs_under_the_sizing_rule_only(tmp_path, capsys) -> None:
    path = tmp_path / "nested.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in two_pairs(6.0, 4.0).to_dict("records")))
    assert main(["--rule", "sizing", str(path), "arm", "base", "--pair", "arm2", "base2"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["adopt"] is True and len(printed["pairs"]) == 2
    assert printed["pairs"][1]["arm"]["mean_alpha_pp"] == 4.0
    with pytest.raises(SystemExit) as exit_info:
        main([str(path), "arm", "base", "--pair", "arm2", "base2"])
    assert exit_info.value.code == 2
