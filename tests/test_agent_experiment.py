"""The experiment harness: command-line overrides reach the agent and env configurations,
saved checkpoints are scored again, one seed's or the mean action of several, and a nested
segment's held-out month is scored while a segment's test quarter never is."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from gymnasium import spaces
from helpers.backtest import (
    TOKENS,
    hmm_context_frame,
    random_walk_frame,
    save_tiny_encoder,
    train_tiny_tqc,
)
from helpers.data import START, bars, hours, write_hourly

from cryptorl_core.agent import AgentConfig
from cryptorl_core.backtest.ensemble import MeanActionPolicy
from cryptorl_core.backtest.regime_baselines import regime_rule_positions
from cryptorl_core.backtest.runner import run_backtest
from cryptorl_core.env import EnvConfig
from cryptorl_core.experiment import (
    KEPT,
    SEEDS_KEPT,
    PreparedSegment,
    apply_overrides,
    experiment_market,
    experiment_segment,
    main,
    nested_cache,
    parse_overrides,
    policy_scores,
    quarters_collapsed,
    regime_exposure,
    regime_log_growth,
    rescore_checkpoints,
    rescore_or_skip,
    segment_frame,
    summarize,
)
from cryptorl_core.policy_stats import CollapseRule
from cryptorl_core.profiles import PipelineConfig
from cryptorl_core.schema import REGIME_NAMES, SPLIT_COL, TRUE_REGIME_COL
from cryptorl_core.segments import WindowConfig, walk_forward_segments


def test_overrides_parse_literals_and_set_agent_and_env_fields():
    overrides = parse_overrides(["gamma=0.99", "embedding=False", "net_arch=[32, 32]", "env.fee_bps=5",
                                 "algo=sac"])
    assert overrides == {"gamma": 0.99, "embedding": False, "net_arch": [32, 32], "env.fee_bps": 5, "algo": "sac"}
    cfg = apply_overrides(AgentConfig.quick(), overrides)
    assert (cfg.gamma, cfg.embedding, cfg.net_arch, cfg.algo) == (0.99, False, (32, 32), "sac")
    assert cfg.env.fee_bps == 5 and cfg.env.slippage_bps == AgentConfig.quick().env.slippage_bps


def test_unknown_override_is_refused():
    with pytest.raises(TypeError, match="no_such_field"):
        apply_overrides(AgentConfig.quick(), parse_overrides(["no_such_field=1"]))


def test_summary_counts_runs_against_the_rule_and_buy_and_hold():
    row = {"train_agent_sharpe": 1.0, "train_regime_rule_sharpe": 1.0, "train_buy_and_hold_sharpe": 0.0,
           "collapsed": False, "agent_n_trades": 10, "train_regime_rule_quarters_collapsed": 0}
    rows = [{**row, "agent_sharpe": 2.0, "regime_rule_sharpe": 2.0, "buy_and_hold_sharpe": 1.0,
             "train_agent_quarters_collapsed": 1, "agent_collapsed": 0.0},
            {**row, "agent_sharpe": 0.5, "regime_rule_sharpe": 2.0, "buy_and_hold_sharpe": 1.0, "collapsed": True,
             "train_agent_quarters_collapsed": 3, "agent_collapsed": 1.0}]
    s = summarize(rows)
    assert s["share_agent_ge_hold"] == 0.5 and s["share_agent_ge_0.8_rule"] == 0.5 and s["n_collapsed"] == 1
    assert s["n_eval_collapsed"] == 1
    assert s["median_agent_sharpe"] == 1.25
    assert s["train_agent_quarters_collapsed"] == 4 and s["train_rule_quarters_collapsed"] == 0


def test_quarters_collapsed_reads_each_whole_quarter_with_the_backtest_rule():
    rule = CollapseRule()
    held = [1.0] * 2160  # one quarter held at +1: collapsed
    moving = ([0.5] * 100 + [-0.5] * 100) * 10 + [0.0] * 160  # 20 trades, no bin above 50 %
    positions = pd.Series(held + moving + held[:1000])  # the last, partial quarter is not read
    assert quarters_collapsed(positions, rule) == (1, 2)
    assert quarters_collapsed(positions, CollapseRule.off()) == (0, 2)


def test_a_data_folder_is_read_and_its_encoders_are_cached_apart(tmp_path: Path):
    folder = tmp_path / "my_data"
    write_hourly(folder, "BTC", bars(hours(START, 300), 30_000.0, seed=1))
    market, cache = experiment_market(str(folder), tmp_path / "cache")
    assert cache == tmp_path / "cache" / "data-my_data"
    assert market.symbols == ["BTC"] and market.true_regime is None
    assert market.start == START and len(market.frame) == 300
    synthetic, synthetic_cache = experiment_market("", tmp_path / "cache")
    assert synthetic_cache == tmp_path / "cache" and synthetic.true_regime is not None


class _Constant:
    """A model whose deterministic action is one constant."""

    def __init__(self, action: float, action_space=None) -> None:
        self.action, self.action_space = action, action_space

    def predict(self, obs, state=None, episode_start=None, deterministic: bool = True):
        return np.full((len(obs["position"]), 1), self.action, dtype=np.float32), None


def test_mean_action_policy_averages_raw_actions_so_opposite_seeds_cancel_to_flat():
    frame = random_walk_frame(seed=3)
    plain = EnvConfig(action_gain=1.0)
    opposite = run_backtest(MeanActionPolicy([_Constant(0.8), _Constant(-0.8)]), frame, "test", env_config=plain)
    assert (opposite.steps["action"].dropna() == 0.0).all()
    assert (opposite.positions == 0.0).all() and opposite.metrics()["n_trades"] == 0
    agreeing = run_backtest(MeanActionPolicy([_Constant(0.2), _Constant(0.6)]), frame, "test", env_config=plain)
    assert agreeing.steps["action"].dropna().to_numpy() == pytest.approx(0.4)
    assert agreeing.positions.iloc[-1] == pytest.approx(0.4)
    with pytest.raises(ValueError, match="at least one policy"):
        MeanActionPolicy([])


def test_mean_action_policy_refuses_discrete_policies():
    box = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
    assert MeanActionPolicy([_Constant(0.1, box), _Constant(0.3, box)]).action_space is box
    with pytest.raises(ValueError, match="policy 1 has a Discrete action space"):
        MeanActionPolicy([_Constant(0.1, box), _Constant(2.0, spaces.Discrete(5))])


def test_rescoring_names_the_checkpoints_it_cannot_find(tmp_path: Path):
    (tmp_path / "seeds" / "0").mkdir(parents=True)
    (tmp_path / "seeds" / "0" / "final_model.zip").write_bytes(b"")
    segment = SimpleNamespace(key="2021-Q1")  # the check comes before the segment is read
    with pytest.raises(FileNotFoundError, match=r"seeds/1/final_model\.zip") as err:
        rescore_checkpoints(segment, AgentConfig.quick(), tmp_path, "final_model", [0, 1])
    assert "seeds/0" not in str(err.value)
    with pytest.raises(FileNotFoundError, match=r"tqc\.zip"):  # the run's published policy, whatever the seeds
        rescore_checkpoints(segment, AgentConfig.quick(), tmp_path, KEPT, [0, 1])
    (tmp_path / "seeds" / "0" / "tqc.zip").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"seeds/1/tqc\.zip") as err:  # each seed's own kept model
        rescore_checkpoints(segment, AgentConfig.quick(), tmp_path, SEEDS_KEPT, [0, 1])
    assert "seeds/0" not in str(err.value)


def test_rescoring_skips_a_segment_without_the_checkpoint_and_says_which(tmp_path: Path, caplog):
    (tmp_path / "seeds" / "2").mkdir(parents=True)  # seed 2 never kept a live checkpoint
    segment = SimpleNamespace(key="2023-Q1")
    with caplog.at_level("WARNING", logger="cryptorl_core.experiment"):
        assert rescore_or_skip(segment, AgentConfig.quick(), tmp_path, "best_model", [2]) is None
    assert "skipping segment 2023-Q1" in caplog.text and "seeds/2/best_model.zip" in caplog.text


def test_summary_of_rescored_rows_counts_collapsed_eval_windows_without_a_training_verdict():
    row = {"agent_sharpe": 1.0, "regime_rule_sharpe": 1.0, "buy_and_hold_sharpe": 0.0, "train_agent_sharpe": 1.0,
           "train_regime_rule_sharpe": 1.0, "train_buy_and_hold_sharpe": 0.0, "agent_n_trades": 4,
           "train_agent_quarters_collapsed": 0, "train_regime_rule_quarters_collapsed": 0}
    s = summarize([{**row, "agent_collapsed": 1.0}, {**row, "agent_collapsed": 0.0}])
    assert s["n_collapsed"] is None and s["n_eval_collapsed"] == 1


def test_rescoring_scores_saved_seed_checkpoints_alone_and_averaged(tmp_path: Path):
    frame = random_walk_frame(seed=5)
    test_rows = frame.index[frame[SPLIT_COL] == "test"]
    frame.loc[test_rows[:300], SPLIT_COL] = "eval"  # the harness scores eval and train windows
    prepared = PreparedSegment(key="2021-Q1", frame=frame, regime=None, context=hmm_context_frame(frame),
                               encoder_path=save_tiny_encoder(frame, tmp_path / "encoder.pth"))
    config = AgentConfig.quick().replace(tokens=TOKENS, embedding=True, env=EnvConfig(action_gain=1.0))
    market = prepared.market(config)
    for seed in (0, 1):
        (tmp_path / "run" / "seeds" / str(seed)).mkdir(parents=True)
        train_tiny_tqc(frame, market, tmp_path / "run" / "seeds" / str(seed) / "final_model.zip", seed=seed)
    rows = {seeds: rescore_checkpoints(prepared, config, tmp_path / "run", "final_model", seeds)
            for seeds in ((0,), (1,), (0, 0), (0, 1))}
    for seeds, row in rows.items():
        assert row["segment"] == "2021-Q1" and row["seeds"] == list(seeds) and row["checkpoint"] == "final_model"
        assert np.isfinite(row["agent_sharpe"]) and np.isfinite(row["train_agent_sharpe"])
        assert row["regime_rule_sharpe"] == rows[(0,)]["regime_rule_sharpe"]  # the same baselines each time
    scores = ("agent_sharpe", "agent_mean_position", "train_agent_sharpe", "train_agent_mean_position")
    # averaging a checkpoint with itself changes nothing; averaging two different seeds does
    assert [rows[(0, 0)][k] for k in scores] == [rows[(0,)][k] for k in scores]
    assert rows[(0,)]["agent_mean_position"] != rows[(1,)]["agent_mean_position"]
    assert rows[(0, 1)]["agent_mean_position"] not in {rows[(0,)]["agent_mean_position"],
                                                       rows[(1,)]["agent_mean_position"]}
    # Each seed's own kept model (here a copy of its last) is read from seeds/<seed>/tqc.zip.
    for seed in (0, 1):
        run = tmp_path / "run" / "seeds" / str(seed)
        (run / "tqc.zip").write_bytes((run / "final_model.zip").read_bytes())
    kept = rescore_checkpoints(prepared, config, tmp_path / "run", SEEDS_KEPT, (0, 1))
    assert kept["checkpoint"] == SEEDS_KEPT and [kept[k] for k in scores] == [rows[(0, 1)][k] for k in scores]


def _scored_prepared(held_out: bool) -> PreparedSegment:
    frame = random_walk_frame(seed=7, drift=0.001)
    test_rows = frame.index[frame[SPLIT_COL] == "test"]
    frame.loc[test_rows[:200], SPLIT_COL] = "eval"
    return PreparedSegment(key="2021-Q1", frame=frame, regime=None, context=hmm_context_frame(frame),
                           encoder_path=Path("unused"), held_out=held_out)


def test_test_rows_are_scored_only_as_a_nested_segments_held_out_month():
    config = AgentConfig.quick().replace(env=EnvConfig(action_gain=1.0))
    plain = policy_scores(_Constant(0.5), _scored_prepared(held_out=False), config)
    assert "agent_sharpe" in plain and "train_agent_sharpe" in plain
    assert not any(k.startswith("heldout_") for k in plain)  # a segment's test quarter is never read
    prepared = _scored_prepared(held_out=True)
    nested = policy_scores(_Constant(0.5), prepared, config)
    direct = run_backtest(_Constant(0.5), prepared.frame, "test", env_config=config.env, w_cost=config.eval_w_cost)
    assert nested["heldout_agent_sharpe"] == pytest.approx(direct.metrics()["sharpe"])
    assert nested["heldout_agent_mean_position"] == pytest.approx(float(direct.positions.mean()))
    assert {k: nested[k] for k in plain} == plain  # the eval and train figures are unchanged


def test_regime_exposure_reads_each_true_regimes_mean_decision_and_held_share():
    out = regime_exposure(np.array([1.0, 0.9, 0.0, 0.2, -0.6]), np.array([0, 0, 2, 2, 1]))
    assert (out["bull_mean"], out["bull_held"]) == (pytest.approx(0.95), 1.0)
    assert (out["range_mean"], out["range_held"]) == (pytest.approx(0.1), 0.0)
    assert (out["bear_mean"], out["bear_held"]) == (pytest.approx(-0.6), 1.0)
    assert np.isnan(out["crash_mean"]) and np.isnan(out["crash_held"])  # absent from the window


def test_scores_show_where_the_policy_holds_a_position_by_true_regime_on_every_window():
    config = AgentConfig.quick().replace(env=EnvConfig(action_gain=1.0))
    prepared = _scored_prepared(held_out=True)
    assert not any("range_held" in k for k in policy_scores(_Constant(0.5), prepared, config))
    prepared.frame[TRUE_REGIME_COL] = np.arange(len(prepared.frame)) // 200 % 4  # synthetic data's column
    row = policy_scores(_Constant(0.5), prepared, config)
    assert row["train_agent_range_mean"] == pytest.approx(0.5) and row["train_agent_range_held"] == 1.0
    assert row["train_agent_bull_mean"] == pytest.approx(0.5)
    # the rule's own targets on the same decision bars, from the context it reads
    bars = run_backtest(_Constant(0.5), prepared.frame, "train", env_config=config.env).steps["action"].dropna().index
    rule = pd.Series(regime_rule_positions(prepared.context), index=prepared.frame.index)[bars]
    in_range = prepared.frame.loc[bars, TRUE_REGIME_COL] == 2
    assert row["train_regime_rule_range_mean"] == pytest.approx(rule[in_range].mean())
    assert row["train_regime_rule_range_held"] == pytest.approx((rule[in_range].abs() >= 0.5).mean())
    # The same on the eval window (no prefix) and the held-out month: does the sizing hold out of sample?
    for prefix in ("", "heldout_"):
        means = [row[f"{prefix}agent_{name}_mean"] for name in REGIME_NAMES]
        present = [m for m in means if not np.isnan(m)]  # a short window may miss a regime
        assert present and present == pytest.approx([0.5] * len(present))
        assert all(f"{prefix}regime_rule_{name}_mean" in row for name in REGIME_NAMES)
    held = run_backtest(_Constant(0.5), prepared.frame, "test", env_config=config.env).steps["action"].dropna().index
    in_bull = prepared.frame.loc[held, TRUE_REGIME_COL] == 0
    rule = pd.Series(regime_rule_positions(prepared.context), index=prepared.frame.index)[held]
    assert row["heldout_regime_rule_bull_mean"] == pytest.approx(rule[in_bull].mean())


def test_log_growth_by_true_regime_adds_up_to_each_runs_log_growth():
    config = AgentConfig.quick().replace(env=EnvConfig(action_gain=1.0))
    prepared = _scored_prepared(held_out=True)
    assert not any(k.endswith("_log_growth") for k in policy_scores(_Constant(0.5), prepared, config))
    prepared.frame[TRUE_REGIME_COL] = np.arange(len(prepared.frame)) // 200 % 4  # synthetic data's column
    row = policy_scores(_Constant(0.5), prepared, config)
    for prefix in ("train_", "", "heldout_"):  # train, eval and held-out windows
        for name in ("agent", "regime_rule", "buy_and_hold"):
            parts = [row[f"{prefix}{name}_{r}_log_growth"] for r in REGIME_NAMES]
            whole = 100 * np.log1p(row[f"{prefix}{name}_total_return_pct"] / 100)
            assert sum(parts) == pytest.approx(whole)
    # bar t's NAV change goes to bar t's regime
    run = run_backtest(_Constant(0.5), prepared.frame, "train", env_config=config.env)
    growth = 100 * np.log(run.nav).diff().dropna()
    in_bull = prepared.frame[TRUE_REGIME_COL].reindex(growth.index) == 0
    assert row["train_agent_bull_log_growth"] == pytest.approx(growth[in_bull].sum())
    assert row["train_agent_bull_log_growth"] != pytest.approx(row["train_agent_bear_log_growth"])
    flat = run_backtest(_Constant(0.0), prepared.frame, "train", env_config=config.env)
    assert regime_log_growth(flat, prepared.frame[TRUE_REGIME_COL]) == dict.fromkeys(
        [f"{r}_log_growth" for r in REGIME_NAMES], 0.0)  # no position, nothing earned in any regime
    absent = prepared.frame[TRUE_REGIME_COL].where(prepared.frame[TRUE_REGIME_COL] != 3, 0)
    assert regime_log_growth(run, absent)["crash_log_growth"] == 0.0  # a regime absent from the run


def test_summary_of_nested_rows_reads_the_held_out_month():
    base = {"agent_sharpe": 1.0, "regime_rule_sharpe": 1.0, "buy_and_hold_sharpe": 0.0, "train_agent_sharpe": 1.0,
            "train_regime_rule_sharpe": 1.0, "train_buy_and_hold_sharpe": 0.0, "agent_n_trades": 4,
            "train_agent_quarters_collapsed": 0, "train_regime_rule_quarters_collapsed": 0, "agent_collapsed": 0.0}
    held = [dict(agent_sharpe=2.0, final_sharpe=-1.0, regime_rule_sharpe=1.5, buy_and_hold_sharpe=1.0,
                 agent_total_return_pct=12.0, buy_and_hold_total_return_pct=4.0, agent_collapsed=0.0,
                 final_total_return_pct=-3.0, final_collapsed=1.0),
            dict(agent_sharpe=0.0, final_sharpe=3.0, regime_rule_sharpe=0.5, buy_and_hold_sharpe=1.0,
                 agent_total_return_pct=-2.0, buy_and_hold_total_return_pct=4.0, agent_collapsed=1.0,
                 final_total_return_pct=9.0, final_collapsed=1.0)]
    rows = [{**base, **{f"heldout_{k}": v for k, v in h.items()}} for h in held]
    s = summarize(rows)
    assert s["heldout_share_agent_ge_hold"] == 0.5 and s["heldout_share_final_ge_hold"] == 0.5
    assert s["heldout_share_rule_ge_hold"] == 0.5 and s["heldout_n_collapsed"] == 1
    assert s["heldout_median_agent_sharpe"] == 1.0 and s["heldout_median_final_sharpe"] == 1.0
    assert s["heldout_median_alpha_pp"] == pytest.approx(1.0)  # median of +8 and -6
    assert s["heldout_median_final_alpha_pp"] == pytest.approx(-1.0)  # median of -7 and +5
    assert s["heldout_n_final_collapsed"] == 2
    assert "heldout_median_best_sharpe" not in s  # no best-checkpoint scores in these rows
    assert "heldout_median_agent_sharpe" not in summarize([{**base}])


def test_a_nested_frame_holds_the_eval_month_as_test_rows_and_nothing_after(synthetic_market):
    pipeline = PipelineConfig.quick()
    segments = walk_forward_segments(synthetic_market.start, synthetic_market.end, pipeline.windows)
    outer = segments[-1]
    nested = experiment_segment(segments, outer.key, pipeline.windows)
    frame = segment_frame(synthetic_market.frame, nested, pipeline)
    held_out = frame.index[frame[SPLIT_COL] == "test"]
    assert (held_out.min(), held_out.max()) == (outer.eval_start, outer.eval_end - pd.Timedelta(hours=1))
    assert frame.index.max() < outer.eval_end  # the outer test quarter is not in the frame
    assert experiment_segment(segments, outer.key, None) == outer
    assert nested_cache(Path("c"), WindowConfig(eval_hours=1440)) == Path("c") / "nested-eval1440h"


def test_eval_hours_is_refused_without_nested(capsys):
    with pytest.raises(SystemExit) as err:
        main(["--eval-hours", "1440"])
    assert err.value.code == 2 and "--eval-hours needs --nested" in capsys.readouterr().err
