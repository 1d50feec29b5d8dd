"""Seed 004's plan B: DQN over the position grid, A2C, PPO with seed 004's
settings, the ``simple`` profile, the timing bonus and vol-target sizing, each selectable per
run and trained and backtested end to end through the Dagster assets.

The DQN / A2C / PPO runs use stand-ins for the upstream assets (a random-walk segment frame with
train, eval and test rows, a hand-set regime model, a tiny untrained encoder) and a tiny agent
network (``TinyNetworkProfile``), so each materializes ``tqc_policy`` and ``backtest_report`` in
seconds; the ``simple`` run materializes every asset from the synthetic market with the
``simple`` profile.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import torch
from helpers.agent import TinyNetworkProfile, tiny_config
from helpers.backtest import (
    TECH,
    hmm_context_frame,
    stand_in_regime,
    tiny_encoder_artifact,
    upstream_stand_ins,
)
from stable_baselines3 import A2C, DQN, PPO

from cryptorl_core.agent import (
    AgentConfig,
    FoundationFeatureExtractor,
    MarketTensors,
    build_model,
    training_env,
)
from cryptorl_core.agent.algorithms import algorithm_of
from cryptorl_core.agent.evaluation import collapse_reasons, is_live, rollout_policy, selection_tier
from cryptorl_core.backtest.report import AGENT, BacktestRecord, BacktestReport
from cryptorl_core.backtest.runner import run_backtest, run_targets
from cryptorl_core.device import cpu_threads
from cryptorl_core.env import (
    BatchCryptoEnv,
    DiscretePositionWrapper,
    EnvConfig,
    env_actions,
    index_to_action,
    position_grid,
)
from cryptorl_core.env.sizing import vol_target_size
from cryptorl_core.experiment import strategy_scores
from cryptorl_core.features.config import SIMPLE_COLUMNS, FeatureConfig
from cryptorl_core.profiles import PipelineConfig
from cryptorl_core.schema import PRICE_CLOSE_COL, PRICE_OPEN_COL, SPLIT_COL, feature_columns
from cryptorl_dagster.assets.backtest import backtest_report
from cryptorl_dagster.assets.encoder import mae_encoder
from cryptorl_dagster.assets.features import features
from cryptorl_dagster.assets.market import raw_market_data
from cryptorl_dagster.assets.policy import PolicyRunConfig, agent_config_for, tqc_policy
from cryptorl_dagster.assets.regime import hmm_model
from cryptorl_dagster.resources import ProfileResource

GRID_21 = np.round(np.arange(-10, 11) / 10, 10)
#: Segment layout of the stand-in frame.
LAYOUT = (("train", 700), ("purged", 64), ("eval", 200), ("purged", 64), ("test", 300))
TINY_RUN = {"total_timesteps": 256, "n_envs": 4, "eval_freq": 128, "checkpoint_freq": 128}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with cpu_threads(1):
        yield


# ---------------------------------------------------------------------------- DQN's action grid


def test_discrete_indices_map_to_the_21_point_grid_exactly() -> None:
    for gain in (1.0, 2.0, 2.5):
        config = EnvConfig(action_gain=gain)
        np.testing.assert_allclose(position_grid(config), GRID_21, atol=1e-12)
        actions = index_to_action(np.arange(21), config)
        assert actions.shape == (21, 1) and actions.dtype == np.float32
        np.testing.assert_allclose(actions[:, 0] * gain, GRID_21, atol=1e-6)
        env = BatchCryptoEnv.from_arrays(np.full(100, 50.0), np.full(100, 50.0), np.arange(100), config,
                                         n_envs=21, dtype=torch.float64)
        env.reset()
        # the env's own mapping (gain, clip, grid rounding) lands exactly on the grid
        targets = env.target_position(torch.as_tensor(actions[:, 0], dtype=torch.float64))
        np.testing.assert_allclose(targets.numpy(), GRID_21, atol=1e-12)
    long_only = EnvConfig(long_only=True, action_gain=2.0)
    np.testing.assert_allclose(position_grid(long_only), GRID_21[10:], atol=1e-12)


def test_wrapper_steps_the_env_to_the_chosen_grid_position() -> None:
    config = EnvConfig(action_gain=2.0, episode_length=50)
    env = BatchCryptoEnv.from_arrays(np.full(200, 50.0), np.full(200, 50.0), np.arange(200), config,
                                     n_envs=21, seed=0)
    wrapped = DiscretePositionWrapper(env)
    assert wrapped.action_space.n == 21 and wrapped.observation_space == env.observation_space
    wrapped.reset()
    obs, _, _, _ = wrapped.step(np.arange(21))
    np.testing.assert_allclose(obs["position"][:, 0], GRID_21, atol=1e-6)
    # evaluation and backtests map a discrete prediction the same way; continuous ones pass through
    np.testing.assert_array_equal(env_actions(np.array([0, 20]), wrapped.action_space, config),
                                  index_to_action(np.array([0, 20]), config))
    box = np.array([[0.3]], dtype=np.float32)
    assert env_actions(box, env.action_space, config) is box
    # curricula reach the wrapped env
    wrapped.set_attr("churn_coef", 0.25)
    assert env.churn_coef == 0.25 and wrapped.get_attr("curriculum_lambda") == [env.curriculum_lambda] * 21


# ---------------------------------------------------------------------------- PPO, A2C, DQN as built


def test_build_model_gives_ppo_seed004_settings_and_dqn_a2c_the_extractor(tmp_path: Path) -> None:
    frame = _stand_in_frame()
    encoder = tiny_encoder_artifact(frame, tmp_path).load("cpu")
    market = MarketTensors.build(frame, hmm_context_frame(frame), encoder, tokens=1, device="cpu")
    ppo_cfg = AgentConfig.quick().replace(algo="ppo")
    assert (ppo_cfg.ppo_ent_coef, ppo_cfg.ppo_max_grad_norm, ppo_cfg.ppo_target_kl) == (0.08, 0.5, 0.02)
    for algo, cls in (("ppo", PPO), ("a2c", A2C), ("dqn", DQN)):
        config = tiny_config(algo=algo)
        env = BatchCryptoEnv.from_segment_frame(frame, "train", config.env_config, seed=0)
        model = build_model(config, training_env(env, config), market, torch.device("cpu"), seed=0)
        assert isinstance(model, cls)
        assert any(isinstance(m, FoundationFeatureExtractor) for m in model.policy.modules())
        if algo == "ppo":
            assert (model.ent_coef, model.max_grad_norm, model.target_kl) == (0.08, 0.5, 0.02)
        if algo == "dqn":
            assert model.action_space.n == 21


# ---------------------------------------------------------------------------- vol-target sizing


def test_vol_target_sizing_scales_the_agents_direction_by_the_causal_multiplier() -> None:
    frame = _stand_in_frame()
    size = vol_target_size(frame)
    config = EnvConfig(sizing="vol_target", action_gain=2.0)
    # the agent's +0.4 (-> 0.8) and -0.4 are a direction only; 0.02 rounds to flat: out of the market
    policy = _cycle([0.4, -0.4, 0.02])
    run = run_backtest(policy, frame, "test", env_config=config)
    steps = run.steps.dropna(subset=["action"])
    sign = np.sign(_on_grid(np.clip(2.0 * steps["action"].to_numpy(), -1, 1)))
    expected = _on_grid(sign * size[steps["row"].to_numpy()])
    np.testing.assert_allclose(steps["target"].to_numpy(), expected, atol=1e-9)
    assert (np.abs(expected) > 0).any() and (np.abs(expected) < 1).any()  # the rule sizes, not the agent
    # positions held are those targets, filled one bar later
    np.testing.assert_allclose(run.steps["position"].to_numpy()[1:], steps["target"].to_numpy(), atol=1e-9)
    # a rule's targets are positions: the sizing option never rescales them
    flat_rule = run_targets(np.full(len(frame), 0.5), frame, "test", name="half", env_config=config)
    np.testing.assert_allclose(flat_rule.actions, 0.5)


def test_vol_scaled_report_shows_how_many_trades_are_the_agents_own() -> None:
    """An agent holding +1 under ``vol_scaled`` trades only as the multiplier moves: the report's
    decision line shows the agent made none of those trades, and the verdict calls it collapsed."""
    frame = _stand_in_frame()
    scaled = EnvConfig(sizing="vol_scaled", action_gain=1.5)
    # the train rows: the stand-in's one stretch whose trailing volatility crosses the target
    run = run_backtest(_cycle([0.9]), frame, "train", env_config=scaled)
    report = BacktestReport("2025-Q4", {AGENT: run})
    own, executed = report.decision_collapse, report.collapse
    assert own is not None and own.n_trades == 0 and own.modal_action == 1.0 and own.modal_share == 1.0
    assert executed.n_trades > 0 and executed.modal_share < 1.0
    assert report.summary()["decision_collapse"]["n_trades"] == 0
    collapsed, reasons = report.collapse_verdict()
    assert collapsed and any("held 100.0%" in r for r in reasons)
    assert report.config.collapse.verdict(executed) != (collapsed, reasons)  # the executed trades alone differ
    assert strategy_scores(run, report.config.collapse)["collapsed"] == 1.0  # experiments read it the same way
    assert f"{executed.n_trades} executed trades, 0 of the agent's own target" in report.report_markdown()
    plain = BacktestReport("2025-Q4", {AGENT: run_backtest(_cycle([0.9]), frame, "train",
                                                              env_config=scaled.with_overrides(sizing="agent"))})
    assert plain.decision_collapse is None and plain.summary()["decision_collapse"] is None
    assert "Sizing overlay" not in plain.report_markdown()


class _Holds:
    """A model whose deterministic action is one constant (a policy that ignores its inputs)."""

    def __init__(self, action: float) -> None:
        self.action, self.action_space = action, None

    def predict(self, obs, deterministic: bool = True):
        return np.full((len(obs["position"]), 1), self.action, dtype=np.float32), None


def test_selection_calls_a_vol_scaled_policy_holding_one_target_collapsed() -> None:
    """Training's selection reads the agent's own decisions, as the backtest verdict does: the
    multiplier's trades do not make a policy that always asks for +1 eligible."""
    frame = _stand_in_frame()
    rule = AgentConfig.quick().collapse
    scaled = EnvConfig(sizing="vol_scaled", action_gain=1.5, n_envs=1)
    held = rollout_policy(_Holds(0.9), BatchCryptoEnv.from_segment_frame(frame, "train", scaled, mode="sequential"))
    assert rule.verdict(held.position_stats) == (False, [])  # the executed positions move ...
    assert set(held.decisions) == {1.0} and collapse_reasons(held, rule)  # ... the decisions never do
    assert not is_live(held, held, rule) and selection_tier(held, rule, True) == 0
    plain = scaled.with_overrides(sizing="agent")
    flat = rollout_policy(_Holds(0.9), BatchCryptoEnv.from_segment_frame(frame, "train", plain, mode="sequential"))
    assert flat.decisions == flat.positions and collapse_reasons(flat, rule)


def test_vol_target_multiplier_is_causal() -> None:
    frame = _stand_in_frame()
    size = vol_target_size(frame)
    assert np.all((size >= 0) & (size <= 1)) and (size[:168] == 0).all() and (size[400:] > 0).all()
    # prices after the train rows (where the target volatility is fitted) change from row k on
    k = 1100
    changed = frame.copy()
    shock = np.exp(np.random.default_rng(1).normal(0, 0.05, len(frame) - k))
    changed.iloc[k:, changed.columns.get_loc(PRICE_CLOSE_COL)] *= shock
    changed.iloc[k:, changed.columns.get_loc(PRICE_OPEN_COL)] *= shock
    after = vol_target_size(changed)
    np.testing.assert_array_equal(after[:k], size[:k])
    assert not np.allclose(after[k:], size[k:])


# ---------------------------------------------------------------------------- launchpad overrides


def test_run_config_selects_the_plan_b_options() -> None:
    quick = ProfileResource(name="quick")
    run = PolicyRunConfig(algo="dqn", timing_bonus_scale=1.0, sizing="vol_target", n_envs=4)
    config = agent_config_for(quick, run)
    assert config.algo == "dqn" and config.n_envs == 4
    assert (config.env.timing_bonus_scale, config.env.sizing, config.env.n_envs) == (1.0, "vol_target", 4)
    assert agent_config_for(quick, PolicyRunConfig(algo="a2c")).env == AgentConfig.quick().env
    log_growth = agent_config_for(quick, PolicyRunConfig(risk_aversion=1.0))
    assert log_growth.env == AgentConfig.quick().env.replace(risk_aversion=1.0) != AgentConfig.quick().env
    with pytest.raises(ValueError):
        agent_config_for(quick, PolicyRunConfig(sizing="kelly"))


def test_simple_profile() -> None:
    pipeline = PipelineConfig.profile("simple")
    assert pipeline.name == "simple" and AgentConfig.profile("simple") == pipeline.agent == AgentConfig.simple()
    agent = pipeline.agent
    assert agent.total_timesteps == 10_000_000 and agent.lambda_final == 0.0
    assert agent.env.max_penalty_scale == 0.0 and agent.env.curriculum_lambda == 0.0 and agent.embedding
    assert agent.env.risk_aversion == 1.0  # pure PnL: the log growth, not the profiles' risk-averse utility
    assert pipeline.features == FeatureConfig.simple() and pipeline.features.symbols == ("BTC",)
    assert 10 <= len(SIMPLE_COLUMNS) <= 15 and all(c.startswith("BTC_") for c in SIMPLE_COLUMNS)
    assert set(pipeline.hmm.columns) <= set(SIMPLE_COLUMNS)  # the HMM's inputs are kept
    assert agent_config_for(ProfileResource(name="simple")) == agent


def test_simple_features_are_btc_only(raw_slice: pd.DataFrame, latest_segment) -> None:
    from cryptorl_core.features.pipeline import build_segment_frame

    frame, params, _ = build_segment_frame(raw_slice, latest_segment, FeatureConfig.simple())
    assert feature_columns(frame) == list(SIMPLE_COLUMNS)
    assert list(params.ffd_d) == ["BTC"]
    with pytest.raises(KeyError, match="ETH_ret_1h"):
        build_segment_frame(raw_slice, latest_segment, FeatureConfig(symbols=("BTC",), columns=("ETH_ret_1h",)))


# ---------------------------------------------------------------------------- end to end


@pytest.mark.parametrize(("algo", "extra", "cls"), [
    ("dqn", {}, DQN),
    ("a2c", {"sizing": "vol_target", "timing_bonus_scale": 1.0}, A2C),
    ("ppo", {}, PPO),
], ids=["dqn", "a2c_vol_target_timing_bonus", "ppo_seed004"])
def test_algorithm_trains_and_backtests_through_the_assets(algo: str, extra: dict, cls: type, tmp_path: Path,
                                                           dagster_resources: dict, latest_key: str) -> None:
    frame = _stand_in_frame()
    assets = [*upstream_stand_ins(frame, stand_in_regime(), tiny_encoder_artifact(frame, tmp_path)), tqc_policy,
              backtest_report]
    resources = {**dagster_resources, "profile": TinyNetworkProfile(name="quick")}
    result = dg.materialize(assets, partition_key=latest_key, resources=resources,
                            instance=dg.DagsterInstance.ephemeral(),
                            run_config={"ops": {"tqc_policy": {"config": {**TINY_RUN, "algo": algo, **extra}}}})
    assert result.success
    policy = result.output_for_node("tqc_policy")
    assert policy.algo == algo and Path(policy.model_path).name == f"{algo}.zip"
    policy_meta = result.asset_materializations_for_node("tqc_policy")[0].metadata
    assert policy_meta["algo"].value == algo and policy_meta["num_timesteps"].value >= 256
    report_meta = result.asset_materializations_for_node("backtest_report")[0].metadata
    assert report_meta["algo"].value == algo
    record = result.output_for_node("backtest_report")
    assert isinstance(record, BacktestRecord) and AGENT in record.metrics
    model = cls.load(policy.model_path, device="cpu")
    assert algorithm_of(policy.model_path) is cls
    if algo == "ppo":  # seed 004's settings reach the SB3 object
        assert (model.ent_coef, model.max_grad_norm, model.target_kl) == (0.08, 0.5, 0.02)
    steps = pd.read_parquet(Path(record.directory) / "steps.parquet")
    targets = steps["target"].dropna().to_numpy()
    on_grid = np.abs(targets * 10 - np.round(targets * 10)) < 1e-6
    assert on_grid.all() and np.all(np.abs(targets) <= 1.0)
    if extra.get("sizing") == "vol_target":
        assert policy.agent_config().env.sizing == "vol_target"
        size = _on_grid(vol_target_size(frame)[steps.dropna(subset=["action"])["row"].to_numpy()])
        assert np.all(np.isclose(np.abs(targets), size) | (targets == 0))


@pytest.mark.slow
def test_simple_profile_trains_and_backtests_from_the_market(dagster_resources: dict, latest_key: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRYPTORL_DEVICE", "cpu")
    resources = {**dagster_resources, "profile": TinyNetworkProfile(name="simple")}
    assets = [raw_market_data, features, hmm_model, mae_encoder, tqc_policy, backtest_report]
    result = dg.materialize(assets, partition_key=latest_key, resources=resources,
                            instance=dg.DagsterInstance.ephemeral(),
                            run_config={"ops": {"tqc_policy": {"config": TINY_RUN}, "mae_encoder": {"config": {
                                "epochs": 1, "batch_size": 32, "max_train_windows": 128, "max_eval_windows": 64}}}})
    assert result.success
    assert feature_columns(result.output_for_node("features")) == list(SIMPLE_COLUMNS)
    policy = result.output_for_node("tqc_policy")
    config = policy.agent_config()
    assert config.embedding and config.lambda_final == 0.0 and config.env.max_penalty_scale == 0.0
    assert result.asset_materializations_for_node("tqc_policy")[0].metadata["algo"].value == "tqc"
    assert result.asset_materializations_for_node("backtest_report")[0].metadata["algo"].value == "tqc"
    assert AGENT in result.output_for_node("backtest_report").metrics


# ---------------------------------------------------------------------------- helpers


def _stand_in_frame(seed: int = 3) -> pd.DataFrame:
    """A segment frame over a log random walk: train | purged | eval | purged | test."""
    rng = np.random.default_rng(seed)
    n = sum(size for _, size in LAYOUT)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n) * np.repeat([1.0, 2.5, 1.0, 0.5], n // 4 + 1)[:n]))
    index = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC", name="timestamp")
    frame = pd.DataFrame({c: rng.normal(size=n).astype(np.float32) for c in TECH}, index=index)
    frame[SPLIT_COL] = np.concatenate([[name] * size for name, size in LAYOUT])
    frame[PRICE_OPEN_COL] = np.concatenate([[100.0], close[:-1]])
    frame[PRICE_CLOSE_COL] = close
    return frame


def _on_grid(x: np.ndarray, step: float = 0.1) -> np.ndarray:
    """Round to the env's position grid the way the env does (divide, round half to even, multiply)."""
    return np.round(np.asarray(x, dtype=np.float64) / step) * step


def _cycle(actions: list[float]):
    """A callable policy playing ``actions`` in turn, one per bar."""
    state = {"k": 0}

    def act(obs) -> np.ndarray:
        a = actions[state["k"] % len(actions)]
        state["k"] += 1
        return np.array([[a]], dtype=np.float32)

    return act
