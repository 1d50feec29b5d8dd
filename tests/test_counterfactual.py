"""Counterfactual replays: the buffer replays a share of each batch with the env's own step
formula, leaves the rest as collected, survives a save and load, and the config guards it."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from helpers.agent import hmm_context, tiny_config, tiny_encoder

from cryptorl_core.agent import AgentConfig, MarketTensors, train_policy
from cryptorl_core.agent.counterfactual import CounterfactualReplayBuffer, attach_counterfactual
from cryptorl_core.agent.extractor import attach_market
from cryptorl_core.agent.train import build_model, make_envs

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def market(segment_frame: pd.DataFrame) -> MarketTensors:
    return MarketTensors.build(segment_frame, hmm_context(segment_frame), tiny_encoder(segment_frame), tokens=1,
                               device=CPU)


def _collected_model(frame: pd.DataFrame, market: MarketTensors, fraction: float, steps: int = 256):
    """A tiny TQC with the counterfactual buffer, after ``steps`` collected transitions."""
    cfg = tiny_config(counterfactual_fraction=fraction)
    env, _, _ = make_envs(frame, cfg, CPU, seed=0)
    model = build_model(cfg, env, market, CPU, seed=0)
    attach_market(model, market)
    assert attach_counterfactual(model, env, seed=0)
    model.learn(steps)
    return model, env


def test_replayed_rows_follow_the_step_formula_and_the_rest_is_untouched(segment_frame, market):
    model, env = _collected_model(segment_frame, market, fraction=0.5)
    buffer = model.replay_buffer
    assert isinstance(buffer, CounterfactualReplayBuffer)
    np.random.seed(3)
    plain = super(CounterfactualReplayBuffer, buffer).sample(64)
    np.random.seed(3)
    data = buffer.sample(64)
    obs, nxt = data.observations, data.next_observations
    # the first half: uniform actions, grid positions, and the env's own reward and next position
    reward, next_position = env.counterfactual_step(obs["market"][:32], obs["position"][:32, 0], obs["w_cost"][:32],
                                                    data.actions[:32, 0])
    torch.testing.assert_close(data.rewards[:32, 0], reward.float())
    torch.testing.assert_close(nxt["position"][:32, 0], next_position.float())
    assert not torch.equal(data.actions[:32], plain.actions[:32])
    assert data.actions[:32].abs().max() <= 1.0 and data.actions[:32].std() > 0.3
    step = env.config.position_step
    grid = obs["position"][:32, 0] / step
    torch.testing.assert_close(grid, grid.round())
    # the market rows and cost weights are the collected ones; the second half is as collected
    assert torch.equal(obs["market"], plain.observations["market"]) and torch.equal(obs["w_cost"], plain.observations["w_cost"])
    for got, want in ((data.actions, plain.actions), (data.rewards, plain.rewards), (obs["position"], plain.observations["position"]),
                      (nxt["position"], plain.next_observations["position"])):
        assert torch.equal(got[32:], want[32:])


def test_a_saved_buffer_is_replayed_again_once_attached(tmp_path, segment_frame, market):
    model, env = _collected_model(segment_frame, market, fraction=1.0)
    assert pickle.loads(pickle.dumps(model.replay_buffer))._env is None  # the env never travels
    path = tmp_path / "buffer.pkl"
    model.save_replay_buffer(path)
    model.load_replay_buffer(path)
    loaded = model.replay_buffer
    np.random.seed(5)
    unattached = loaded.sample(16)
    assert attach_counterfactual(model, env, seed=0)
    np.random.seed(5)
    replayed = loaded.sample(16)
    assert torch.equal(replayed.observations["market"], unattached.observations["market"])
    assert not torch.equal(replayed.actions, unattached.actions)


def test_training_with_replays_runs_end_to_end(tmp_path, segment_frame, market):
    res = train_policy(segment_frame, market, tiny_config(counterfactual_fraction=0.5), tmp_path, device="cpu")
    assert res.num_timesteps >= 480 and res.model_path.exists()
    assert type(res.model.replay_buffer).__name__ == "CounterfactualReplayBuffer"


def test_without_replays_the_buffer_is_sb3s_and_nothing_is_attached(segment_frame, market):
    cfg = tiny_config()
    env, _, _ = make_envs(segment_frame, cfg, CPU, seed=0)
    model = build_model(cfg, env, market, CPU, seed=0)
    assert not isinstance(model.replay_buffer, CounterfactualReplayBuffer)
    assert not attach_counterfactual(model, env, seed=0)


@pytest.mark.parametrize(("changes", "message"), [
    ({"counterfactual_fraction": 1.5}, r"counterfactual_fraction must be in \[0, 1\]"),
    ({"counterfactual_fraction": 0.5, "algo": "ppo"}, "needs a replayed continuous action"),
])
def test_config_guards_the_fraction(changes, message):
    with pytest.raises(ValueError, match=message):
        AgentConfig.quick().replace(**changes)
