"""The experiment harness: command-line overrides reach the agent and env configurations, and
saved checkpoints are scored again, one seed's or the mean action of several."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
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
from cryptorl_core.backtest.runner import run_backtest
from cryptorl_core.env import EnvConfig
from cryptorl_core.experiment import (
    PreparedSegment,
    apply_overrides,
    experiment_market,
    parse_overrides,
    quarters_collapsed,
    rescore_checkpoints,
    summarize,
)
from cryptorl_core.policy_stats import CollapseRule
from cryptorl_core.schema import SPLIT_COL


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

    def __init__(self, action: float) -> None:
        self.action, self.action_space = action, None

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


def test_rescoring_names_the_checkpoints_it_cannot_find(tmp_path: Path):
    (tmp_path / "seeds" / "0").mkdir(parents=True)
    (tmp_path / "seeds" / "0" / "final_model.zip").write_bytes(b"")
    segment = SimpleNamespace(key="2021-Q1")  # the check comes before the segment is read
    with pytest.raises(FileNotFoundError, match=r"seeds/1/final_model\.zip") as err:
        rescore_checkpoints(segment, AgentConfig.quick(), tmp_path, "final_model", [0, 1])
    assert "seeds/0" not in str(err.value)


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
