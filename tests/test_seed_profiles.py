"""The seed profiles pin the seed documents' numbers, and ``build_model`` hands them to SB3.

``docs/SEEDS.md`` is the table these tests hold to: seed 000 (the WFO pipeline), seed 001 (after
the policy-collapse fix), seed 004 (training cadence). ``full`` is seed 001 with the project's
measured departures, and nothing else.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from helpers.agent import hmm_context, in_memory_encoder

from cryptorl_core.agent import AgentConfig, MarketTensors, build_model, make_envs
from cryptorl_core.agent.config import FULL_DEPARTURES_FROM_SEED, SEED004_CADENCE
from cryptorl_core.encoder.config import MAEConfig
from cryptorl_core.env.config import (
    PROFILE_ACTION_GAIN,
    PROFILE_HOLD_COST_BPS,
    PROFILE_RISK_AVERSION,
    PROFILE_SIZING,
    EnvConfig,
)
from cryptorl_core.profiles import PROFILES, PipelineConfig

CPU = torch.device("cpu")

#: Seed 000's agent, every value the seed states (docs/SEEDS.md).
SEED000_AGENT = {
    "algo": "tqc", "learning_rate": 1e-4, "lr_final": None, "batch_size": 2048, "buffer_size": 2_500_000,
    "gamma": 0.95, "total_timesteps": 30_000_000, "n_envs": 1024, "n_quantiles": 25,
    "top_quantiles_to_drop_per_net": 2, "tokens": 64, "features_dim": 512, "embedding": True,
    "context_skip": False,
    # The three-phase curriculum of the seed design.
    "discovery_end": 0.10, "discipline_end": 0.30, "churn_discovery": 0.10, "churn_final": 0.50,
    "smooth_final": 0.02, "lambda_final": 0.4,
}

#: Seed 001's changes to seed 000 (lr decay end value: the project's reading, 1/10).
SEED001_CHANGES = {
    "learning_rate": 3e-4, "lr_final": 3e-5, "batch_size": 512, "total_timesteps": 25_000_000,
    "ent_coef": "auto_0.5", "use_sde": True, "sde_sample_freq": 64, "log_std_init": 0.0, "min_ent_coef": 0.01,
}

#: Seed 004's cadence, in every full-size profile.
SEED004 = {"eval_freq": 20_000, "checkpoint_freq": 100_000, "patience": 25, "min_evals": 100,
           "overfit_margin": None, "overfit_rel_gap": 0.2}

#: The seeds' encoder.
SEED_MAE = {"window": 64, "d_model": 256, "n_heads": 4, "n_layers": 2, "dim_feedforward": 1024, "epochs": 90}


def _assert_fields(config: object, expected: dict) -> None:
    for name, value in expected.items():
        assert getattr(config, name) == value, f"{type(config).__name__}.{name}"


@pytest.mark.parametrize("name", ["seed000", "seed001"])
def test_seed_profiles_hold_every_seed_value(name: str) -> None:
    pipeline = PipelineConfig.profile(name)
    assert pipeline.name == name and name in PROFILES
    expected = {**SEED000_AGENT, **SEED004, **(SEED001_CHANGES if name == "seed001" else {})}
    _assert_fields(pipeline.agent, expected)
    _assert_fields(pipeline.mae, SEED_MAE)
    # The seeds' env: month-long episodes, 1024 envs, the plain clip of the action.
    _assert_fields(pipeline.agent.env, {"n_envs": 1024, "episode_length": 720, "action_gain": 1.0,
                                        "fee_bps": 10.0, "slippage_bps": 2.0, "reward_scale": 100.0})
    if name == "seed000":  # seed 000 sets no exploration: SB3's defaults, no entropy floor
        _assert_fields(pipeline.agent, {"ent_coef": "auto", "use_sde": False, "min_ent_coef": 0.0})


def test_full_is_seed001_with_the_listed_departures_only() -> None:
    full, seed = AgentConfig.full(), AgentConfig.seed001()
    project_env = seed.env.with_overrides(action_gain=PROFILE_ACTION_GAIN, risk_aversion=PROFILE_RISK_AVERSION,
                                          hold_cost_bps=PROFILE_HOLD_COST_BPS, sizing=PROFILE_SIZING)
    assert full == seed.replace(env=project_env, **FULL_DEPARTURES_FROM_SEED)
    assert FULL_DEPARTURES_FROM_SEED == {"embedding": False, "top_quantiles_to_drop_per_net": 0,
                                         "prefer_live_on_eval": True, "select_after_discipline": True,
                                         "keep_last_live": True}
    assert full.env == EnvConfig.full() and EnvConfig.full().action_gain == EnvConfig.seed().action_gain == 1.0
    assert EnvConfig.full().risk_aversion == 4.0 and EnvConfig.seed().risk_aversion == 1.0
    assert EnvConfig.full().sizing == EnvConfig.quick().sizing == EnvConfig.seed().sizing == "agent"
    assert EnvConfig.full().hold_cost_bps == EnvConfig.quick().hold_cost_bps == 2.0 and EnvConfig.seed().hold_cost_bps == 0.0
    assert MAEConfig.full() == MAEConfig.seed001() == MAEConfig.seed000()
    assert PipelineConfig.full().mae == MAEConfig.seed001()
    # The quick profile keeps its own cadence.
    quick = AgentConfig.quick()
    assert quick.eval_freq != SEED004_CADENCE["eval_freq"] and quick.overfit_margin == 0.05
    assert quick.overfit_rel_gap is None


@pytest.fixture(scope="module")
def full_size_market(segment_frame: pd.DataFrame) -> MarketTensors:
    """Live-mode tensors over an untrained seed-size encoder (no cache to build)."""
    encoder = in_memory_encoder(segment_frame, MAEConfig.seed000())
    return MarketTensors.build(segment_frame, hmm_context(segment_frame), encoder, tokens=64, mode="live", device=CPU)


@pytest.mark.parametrize("name", ["seed000", "seed001"])
def test_build_model_passes_the_seed_values_to_sb3(name: str, segment_frame: pd.DataFrame,
                                                   full_size_market: MarketTensors) -> None:
    config = AgentConfig.profile(name)
    train_env, _, _ = make_envs(segment_frame, config, CPU, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SB3's replay-buffer memory note
        model = build_model(config, train_env, full_size_market, CPU, seed=0)
    assert model.n_envs == 1024 and model.batch_size == config.batch_size
    assert model.buffer_size == 2_500_000 and model.gamma == 0.95
    assert model.top_quantiles_to_drop_per_net == 2 and model.critic.n_quantiles == 25
    # Learning rate: constant for seed 000; linear from 3e-4 to 3e-5 for seed 001.
    start, middle, end = (model.lr_schedule(p) for p in (1.0, 0.5, 0.0))
    if name == "seed000":
        assert start == middle == end == pytest.approx(1e-4)
    else:
        assert (start, middle, end) == pytest.approx((3e-4, 1.65e-4, 3e-5))
        assert model.actor.optimizer.param_groups[0]["lr"] == pytest.approx(3e-4)
    # Exploration: entropy temperature, gSDE, log std.
    init = 1.0 if config.ent_coef == "auto" else 0.5
    assert math.exp(model.log_ent_coef.item()) == pytest.approx(init)
    assert model.target_entropy == pytest.approx(-1.0)
    assert model.use_sde is config.use_sde
    if config.use_sde:
        assert model.sde_sample_freq == 64
        assert torch.all(model.actor.log_std == 0.0)
    # The seeds' extractor: 64 tokens x d_model 256 plus position and cost weight, fused to 512.
    fusion = model.actor.features_extractor.fusion[0]
    assert (fusion.in_features, fusion.out_features) == (64 * 256 + 2, 512) == (16386, 512)


def test_target_entropy_reaches_tqc_and_sac(segment_frame: pd.DataFrame) -> None:
    from helpers.agent import tiny_config, tiny_encoder

    market = MarketTensors.build(segment_frame, hmm_context(segment_frame), tiny_encoder(segment_frame),
                                 tokens=4, device=CPU)
    for algo in ("tqc", "sac"):
        config = tiny_config(algo=algo, target_entropy=-0.25)
        model = build_model(config, make_envs(segment_frame, config, CPU, seed=0)[0], market, CPU, seed=0)
        assert model.target_entropy == pytest.approx(-0.25)
    with pytest.raises(ValueError, match="target_entropy"):
        AgentConfig.quick().replace(target_entropy="high")


def test_relative_overfitting_alarm_of_seed_004() -> None:
    from cryptorl_core.agent import OverfitMonitorCallback

    relative = OverfitMonitorCallback(margin=None, rel_gap=0.2)
    assert not relative.exceeded(gap=0.019, train=0.1) and relative.exceeded(gap=0.021, train=0.1)
    assert not relative.exceeded(gap=0.5, train=-0.1)  # a losing train window has no relative gap
    absolute = OverfitMonitorCallback(margin=0.05)
    assert absolute.exceeded(gap=0.051, train=10.0) and not absolute.exceeded(gap=0.049, train=0.06)
    assert not np.any([OverfitMonitorCallback(None, None).exceeded(g, 1.0) for g in (0.0, 1.0, 100.0)])


def test_learning_rate_decays_during_training(segment_frame: pd.DataFrame, tmp_path) -> None:
    """A run with ``lr_final`` ends with its optimisers near the final rate, not the start."""
    from helpers.agent import tiny_config, tiny_encoder

    from cryptorl_core.agent import load_policy, train_policy

    context = hmm_context(segment_frame)
    market = MarketTensors.build(segment_frame, context, tiny_encoder(segment_frame), tokens=1, device=CPU)
    config = tiny_config(learning_rate=1e-3, lr_final=1e-4, total_timesteps=480)
    result = train_policy(segment_frame, market, config, tmp_path, device="cpu")
    final = load_policy(result.final_model_path, market, algo=config.algo, device="cpu")  # not the selected one
    rates = [g["lr"] for opt in (final.actor.optimizer, final.critic.optimizer) for g in opt.param_groups]
    # SB3 sets the rate from the progress at the last training phase: within a few % of the end.
    assert all(1e-4 <= r < 1.5e-4 for r in rates), rates


def test_every_profile_builds_every_stage() -> None:
    """Each pipeline profile names a config for every stage, and each stage's own ``profile``
    of that name is the pipeline's (the backtest's included)."""
    from cryptorl_core.config_base import PROFILE_NAMES

    assert PROFILES == PROFILE_NAMES == PipelineConfig.PROFILES == AgentConfig.PROFILES
    for name in PROFILES:
        pipeline = PipelineConfig.profile(name)
        assert pipeline.name == name and AgentConfig.profile(name) == pipeline.agent
        for stage in ("windows", "features", "hmm", "mae", "agent", "backtest"):
            config = getattr(pipeline, stage)
            assert type(config).profile(name) == config, f"{stage} in {name}"
