"""Unit tests of the agent: extractor (FiLM, frozen encoder, dimension checks, attach), market
tensors, curricula, entropy floor, evaluation children, checkpoints, SIGTERM guard."""

from __future__ import annotations

import math
import os
import signal
import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from helpers.agent import TINY_MAE, hmm_context, in_memory_encoder, tiny_config, tiny_encoder
from stable_baselines3.common.logger import configure as configure_logger

from cryptorl_core.agent import (
    AgentConfig,
    EarlyStoppingCallback,
    EntropyFloorCallback,
    ExtractorDimensionError,
    FoundationFeatureExtractor,
    GracefulTermination,
    MarketNotAttachedError,
    MarketTensors,
    OverfitMonitorCallback,
    SegmentEvalCallback,
    attach_market,
    build_model,
    curriculum_values,
    foundation_extractors,
    list_checkpoints,
    make_envs,
    save_checkpoint,
    w_cost_distribution,
)
from cryptorl_core.agent.curriculum import CurriculumCallback, WCostCurriculumCallback
from cryptorl_core.agent.evaluation import RolloutStats, selection_tier
from cryptorl_core.backtest.config import BacktestConfig
from cryptorl_core.encoder import LoadedEncoder
from cryptorl_core.policy_stats import CollapseRule, collapse_stats

CPU = torch.device("cpu")


def _model(config, envs, market):
    """A model with a silent logger, as callbacks expect outside ``learn``."""
    model = build_model(config, envs[0], market, CPU, seed=0)
    model.set_logger(configure_logger(None, []))
    return model


@pytest.fixture(scope="module")
def context(segment_frame: pd.DataFrame) -> pd.DataFrame:
    return hmm_context(segment_frame)


@pytest.fixture(scope="module")
def encoder(segment_frame: pd.DataFrame) -> LoadedEncoder:
    return tiny_encoder(segment_frame)


@pytest.fixture(scope="module")
def cache_market(segment_frame, context, encoder) -> MarketTensors:
    return MarketTensors.build(segment_frame, context, encoder, tokens=4, device=CPU)


@pytest.fixture(scope="module")
def envs(segment_frame):
    return make_envs(segment_frame, tiny_config(), CPU, seed=0)


def _extractor(envs, market: MarketTensors, **kw) -> FoundationFeatureExtractor:
    torch.manual_seed(0)
    ext = FoundationFeatureExtractor(envs[0].observation_space, market.d_model, market.tokens,
                                     features_dim=16, film_hidden=8, **kw)
    ext.attach(market)
    return ext


def _obs(rows, position=0.0, w_cost=0.5) -> dict[str, torch.Tensor]:
    n = len(rows)
    return {"market": torch.tensor(rows, dtype=torch.float32).reshape(n, 1),
            "position": torch.full((n, 1), position), "w_cost": torch.full((n, 1), w_cost)}


# ---------------------------------------------------------------------------- extractor


def test_extractor_output_and_film_starts_near_identity(envs, cache_market):
    ext = _extractor(envs, cache_market)
    out = ext(_obs([100, 2000, 9000]))
    assert out.shape == (3, 16) and torch.isfinite(out).all()
    gamma, beta = ext.film_params(cache_market.context[:50])
    assert (gamma - 1).abs().max() < 0.3 and beta.abs().max() < 0.3
    assert not torch.allclose(gamma, torch.ones_like(gamma))  # but already regime-dependent


def test_film_changes_output_when_hmm_context_changes(envs, cache_market):
    ext = _extractor(envs, cache_market)
    obs = _obs([500, 5000])
    base = ext(obs)
    flipped = MarketTensors(context=cache_market.context.flip(1).contiguous(), embeddings=cache_market.embeddings)
    ext.attach(flipped)
    assert not torch.allclose(base, ext(obs), atol=1e-5)
    # and the embeddings themselves are unchanged: only the context moved the output
    assert torch.equal(flipped.embeddings_at(obs["market"]), cache_market.embeddings_at(obs["market"]))


def test_live_mode_matches_cache_and_no_gradient_reaches_the_frozen_encoder(segment_frame, context, envs, encoder):
    live = MarketTensors.build(segment_frame, context, encoder, tokens=4, mode="live", device=CPU)
    cache = MarketTensors.build(segment_frame, context, encoder, tokens=4, device=CPU)
    rows = torch.tensor([[70.0], [4000.0]])
    torch.testing.assert_close(live.embeddings_at(rows), cache.embeddings_at(rows), atol=1e-5, rtol=1e-4)
    ext = _extractor(envs, live)
    ext(_obs([70, 4000, 8000])).sum().backward()
    assert all(not p.requires_grad and p.grad is None for p in encoder.model.parameters())
    assert all(p.grad is not None for p in ext.fusion.parameters())
    assert all(p.grad is not None for p in ext.film.parameters())
    # the encoder is not a submodule: its weights are neither trained nor saved with the policy
    assert not any(k.startswith("encoder") or ".encoder." in k for k in ext.state_dict())


def test_cache_mode_optimisers_hold_no_encoder_parameters(segment_frame, envs, cache_market, encoder):
    model = _model(tiny_config(), envs, cache_market)
    attach_market(model, cache_market)
    encoder_ids = {id(p) for p in encoder.model.parameters()}
    optimised = [p for opt in (model.actor.optimizer, model.critic.optimizer) for g in opt.param_groups for p in g["params"]]
    assert optimised and not encoder_ids & {id(p) for p in optimised}
    n_encoder = sum(p.numel() for p in encoder.model.parameters())
    assert all(p.numel() != n_encoder for p in optimised)


def test_dimension_mismatch_names_both_values(segment_frame, context, envs, cache_market):
    ext = _extractor(envs, cache_market)
    wide = in_memory_encoder(segment_frame, TINY_MAE.replace(d_model=16))
    other = MarketTensors.build(segment_frame, context, wide, tokens=4, device=CPU)
    with pytest.raises(ExtractorDimensionError, match=r"built for 8.*gives 16"):
        ext.attach(other)
    pooled = MarketTensors.from_cache(segment_frame, context, cache_market.embeddings, tokens=2, device=CPU)
    with pytest.raises(ExtractorDimensionError, match=r"tokens per row: the policy was built for 4, the market tensors give 2"):
        ext.attach(pooled)


def test_market_tensors_reject_bad_inputs(segment_frame, context, encoder):
    with pytest.raises(ValueError, match="rows"):
        MarketTensors.build(segment_frame, context.iloc[:-5], encoder, device=CPU)
    with pytest.raises(ValueError, match="lacks columns"):
        MarketTensors.build(segment_frame, context.drop(columns="hmm_entropy"), encoder, device=CPU)
    with pytest.raises(ValueError, match="divide"):
        MarketTensors.build(segment_frame, context, encoder, tokens=5, device=CPU)


def test_attach_reaches_every_extractor_and_tensors_are_not_saved(tmp_path, envs, cache_market):
    model = _model(tiny_config(), envs, cache_market)
    extractors = foundation_extractors(model)
    assert len(extractors) == 3  # actor, critic, critic target (TQC does not share them)
    with pytest.raises(MarketNotAttachedError, match="attach_market"):
        model.predict({k: v.numpy() for k, v in _obs([100]).items()}, deterministic=True)
    assert attach_market(model, cache_market) == 3
    assert all(e.market.embeddings is cache_market.embeddings for e in extractors)  # shared, not copied
    assert not any(torch.equal(v, cache_market.context) for v in model.policy.state_dict().values()
                   if v.shape == cache_market.context.shape)
    kwargs = model.policy_kwargs["features_extractor_kwargs"]
    assert all(isinstance(v, int | float) for v in kwargs.values())
    path = tmp_path / "m.zip"
    model.save(path)
    assert path.stat().st_size < cache_market.nbytes()  # the cache is not in the zip
    ppo = _model(tiny_config(algo="ppo", batch_size=64), envs, cache_market)
    assert attach_market(ppo, cache_market) == 1  # PPO shares one extractor


# ---------------------------------------------------------------------------- curricula


def test_three_phase_curriculum_values():
    cfg = AgentConfig.full()
    start, d_end, c_end, late = (curriculum_values(p, cfg) for p in (0.0, 0.1, 0.3, 0.9))
    assert (start.phase, start.churn_coef, start.smooth_coef, start.curriculum_lambda) == (0, 0.0, 0.0, 0.0)
    assert d_end.phase == 1 and d_end.churn_coef == pytest.approx(0.10) and d_end.smooth_coef == 0.0
    assert c_end.phase == 2 and c_end.churn_coef == pytest.approx(0.50) and c_end.smooth_coef == pytest.approx(0.02)
    assert c_end.curriculum_lambda == pytest.approx(0.4) and late == c_end
    mid = curriculum_values(0.2, cfg)
    assert 0.10 < mid.churn_coef < 0.50 and 0 < mid.smooth_coef < 0.02 and 0 < mid.curriculum_lambda < 0.4


def test_w_cost_curriculum_widens():
    cfg = AgentConfig.full()
    early, late = w_cost_distribution(0.0, cfg), w_cost_distribution(1.0, cfg)
    assert early.high == pytest.approx(cfg.w_cost_start_high) and late.high == 1.0
    assert early.p_zero > late.p_zero


def _drive(callback, model, num_timesteps: int) -> None:
    model.num_timesteps = num_timesteps
    callback.on_step()


def test_curriculum_callbacks_set_the_env(envs, cache_market):
    cfg = tiny_config()
    env = envs[0]
    model = _model(cfg, envs, cache_market)
    cur, wc = CurriculumCallback(cfg), WCostCurriculumCallback(cfg)
    for cb in (cur, wc):
        cb.init_callback(model)
        cb.on_training_start({}, {})
    assert env.churn_coef == 0.0 and env.curriculum_lambda == 0.0
    assert env.w_cost_high == pytest.approx(cfg.w_cost_start_high)
    for cb in (cur, wc):
        _drive(cb, model, cfg.total_timesteps)
    final = curriculum_values(1.0, cfg)
    assert (env.churn_coef, env.smooth_coef, env.curriculum_lambda) == (
        final.churn_coef, final.smooth_coef, final.curriculum_lambda)
    assert env.w_cost_high == 1.0 and env.w_cost_p_zero == pytest.approx(cfg.w_cost_final_p_zero)


# ---------------------------------------------------------------------------- entropy floor


def test_entropy_floor_clamps_learned_coefficient_after_every_optimiser_step(envs, cache_market):
    model = _model(tiny_config(), envs, cache_market)
    floor = EntropyFloorCallback(0.05)
    floor.init_callback(model)
    floor.on_training_start({}, {})
    with torch.no_grad():
        model.log_ent_coef.fill_(math.log(1e-4))
    model.log_ent_coef.grad = torch.ones_like(model.log_ent_coef)  # pushes it further down
    model.ent_coef_optimizer.step()
    assert math.exp(model.log_ent_coef.item()) == pytest.approx(0.05)
    floor.on_training_end()
    with torch.no_grad():
        model.log_ent_coef.fill_(math.log(1e-4))
    model.ent_coef_optimizer.step()
    assert math.exp(model.log_ent_coef.item()) < 0.05  # the hook is removed after training


def test_entropy_floor_raises_fixed_coefficients(envs, cache_market):
    sac = _model(tiny_config(algo="sac", ent_coef=0.001), envs, cache_market)
    cb = EntropyFloorCallback(0.01)
    cb.init_callback(sac)
    cb.on_training_start({}, {})
    assert sac.ent_coef_tensor.item() == pytest.approx(0.01)
    ppo = _model(tiny_config(algo="ppo", ent_coef=0.0), envs, cache_market)
    assert ppo.ent_coef >= 0.01  # PPO is built at the floor already
    ppo.ent_coef = 0.001
    cb = EntropyFloorCallback(0.01)
    cb.init_callback(ppo)
    cb.on_training_start({}, {})
    assert ppo.ent_coef == 0.01


# ---------------------------------------------------------------------------- evaluation children


def _stats(reward: float, perf: float = 0.0) -> RolloutStats:
    return RolloutStats(reward, reward / 100, perf, 1.0, 10, 100, 0.0, 0.3, 2.0, 0.5)


def _parent(model) -> SimpleNamespace:
    return SimpleNamespace(last_result=None, last_train_result=None, model=model, last_eligible=True,
                           last_tier=0, has_best=True)


def _child(cb, envs, cache_market):
    model = _model(tiny_config(), envs, cache_market)
    cb.init_callback(model)
    cb.parent = _parent(model)
    return cb


def test_early_stopping_waits_for_min_evals_then_patience(envs, cache_market):
    cb = _child(EarlyStoppingCallback(patience=2, min_evals=4), envs, cache_market)
    verdicts = []
    for reward in (1.0, 0.5, 0.4, 0.3, 0.2):
        cb.parent.last_result = _stats(reward)
        verdicts.append(cb.on_step())
    # no improvement after eval 1: patience is exhausted at eval 3, but min_evals is 4
    assert verdicts == [True, True, True, False, False] and cb.stopped
    restored = EarlyStoppingCallback(patience=2, min_evals=4)
    restored.load_state_dict(cb.state_dict())
    assert restored.since_best == cb.since_best and restored.stopped


def test_early_stopping_never_stops_on_collapsed_evaluations(envs, cache_market):
    """A flat policy's eval reward (0.0) is not an improvement, and training goes on while no
    evaluated policy passed the collapse rule."""
    cb = _child(EarlyStoppingCallback(patience=1, min_evals=1), envs, cache_market)
    cb.parent.last_eligible = cb.parent.has_best = False
    for _ in range(5):
        cb.parent.last_result = _stats(0.0)
        assert cb.on_step()
    assert cb.best == -np.inf and not cb.stopped
    cb.parent.last_eligible = cb.parent.has_best = True
    cb.parent.last_result = _stats(-0.5)
    assert cb.on_step() and cb.best == -0.5
    cb.parent.last_result = _stats(-0.6)
    assert not cb.on_step() and cb.stopped


def _run(positions: list[float], reward: float = 0.0) -> RolloutStats:
    """A deterministic run that held these positions (the collapse rule reads only them)."""
    return RolloutStats(reward, 0.0, 0.0, 1.0, 0, len(positions), 0.0, 0.0, 0.0,
                        collapse_stats(positions).modal_share, positions=positions)


def test_eval_callback_keeps_only_policies_passing_the_collapse_rule(envs, cache_market, tmp_path):
    model = _model(tiny_config(), envs, cache_market)
    attach_market(model, cache_market)
    cb = SegmentEvalCallback(envs[1], 1, tmp_path / "best.zip", collapse_rule=CollapseRule())
    month = 720  # an eval window: the rule asks for ceil(10 * 720 / 2160) = 4 trades
    flat = _run([0.0] * month)
    saturated = _run([1.0] * 700 + [0.5, 1.0] * 10)  # 20 trades, but +1.0 held 98.6 % of the time
    few_trades = _run([1.0] * 360 + [0.0] * 360)  # 1 trade
    moving = _run(([1.0] * 90 + [-0.5] * 90) * 4, reward=-1.0)  # 7 trades, modal share 50 %
    assert not cb.eligible(flat) and not cb.eligible(saturated) and not cb.eligible(few_trades)
    assert cb.eligible(moving)
    # Holding still through a one-regime eval month is live if the policy moves on the train probe.
    assert cb.eligible(flat, train=moving) and not cb.eligible(flat, train=saturated)
    # The rule is the backtest's: the same verdict on the same positions.
    for run in (flat, saturated, few_trades, moving):
        assert cb.eligible(run) == (not BacktestConfig().collapse.verdict(collapse_stats(run.positions))[0])
    assert SegmentEvalCallback(envs[1], 1, collapse_rule=CollapseRule.off()).eligible(flat)
    strict = SegmentEvalCallback(envs[1], 1, tmp_path / "best.zip", collapse_rule=CollapseRule(min_trades=10**9))
    strict.init_callback(model)
    strict.num_timesteps = 100
    strict.evaluate()
    assert not strict.last_eligible and not strict.has_best and not (tmp_path / "best.zip").exists()


def test_preferring_live_on_eval_ranks_eval_live_policies_first(envs, cache_market):
    rule = CollapseRule()
    held = _run([1.0] * 720, reward=5.0)  # one position all month: live on the train probe only
    moving = _run(([1.0] * 90 + [-0.5] * 90) * 4, reward=1.0)
    assert selection_tier(moving, rule, True) == 1 and selection_tier(held, rule, True) == 0
    assert selection_tier(moving, rule, False) == selection_tier(held, rule, False) == 0  # eval reward alone
    assert selection_tier(held, None, True) == 0
    # Early stopping counts the step up to an eval-live policy as an improvement, lower reward or not.
    cb = _child(EarlyStoppingCallback(patience=1, min_evals=1), envs, cache_market)
    cb.parent.last_eligible = cb.parent.has_best = True
    cb.parent.last_result, cb.parent.last_tier = held, 0
    assert cb.on_step() and cb.best == 5.0
    cb.parent.last_result, cb.parent.last_tier = moving, 1
    assert cb.on_step() and (cb.best_tier, cb.best) == (1, 1.0)
    cb.parent.last_result, cb.parent.last_tier = held, 0
    assert not cb.on_step() and cb.stopped  # a probe-only policy is no improvement on an eval-live one
    # Both tiers survive a resume.
    evaluator = SegmentEvalCallback(envs[1], 1, collapse_rule=rule, prefer_live_on_eval=True)
    evaluator.best_tier, evaluator.best_reward = 1, 1.0
    resumed = SegmentEvalCallback(envs[1], 1, collapse_rule=rule, prefer_live_on_eval=True)
    resumed.load_state_dict(evaluator.state_dict())
    again = EarlyStoppingCallback(patience=1, min_evals=1)
    again.load_state_dict(cb.state_dict())
    assert (resumed.best_tier, resumed.best_reward, again.best_tier) == (1, 1.0, 1)


def test_overfit_monitor_warns_once_when_eval_falls_behind(envs, cache_market, caplog):
    cb = _child(OverfitMonitorCallback(margin=0.05), envs, cache_market)
    cb.parent.last_result, cb.parent.last_train_result = _stats(0.0, perf=0.01), _stats(0.0, perf=0.03)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cb.on_step()  # gap 0.02: fine
    cb.parent.last_train_result = _stats(0.0, perf=0.2)
    with pytest.warns(RuntimeWarning, match="eval window's reward per step 0.0100 is 0.1900 below "
                                            "the train window's 0.2000"):
        cb.on_step()
    assert cb.warned and cb.gaps[-1][1] == pytest.approx(0.19) and "overfitting" in caplog.text
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cb.on_step()  # only once
    assert len(cb.gaps) == 3


# ---------------------------------------------------------------------------- checkpoints, SIGTERM


def test_rotating_checkpoints_keep_the_last_n(tmp_path, envs, cache_market):
    model = _model(tiny_config(), envs, cache_market)
    for step in (100, 200, 300, 400):
        model.num_timesteps = step
        save_checkpoint(model, tmp_path, {"fingerprint": "x"}, keep_last=2)
    kept = list_checkpoints(tmp_path)
    assert [c.num_timesteps for c in kept] == [300, 400]
    assert all(c.model_path.exists() and c.replay_path.exists() for c in kept)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_graceful_termination_sets_a_flag_and_restores_the_handlers(sig: int):
    """A run cancel (SIGTERM to a worker; SIGINT as Dagster passes it on to a step process) and
    Ctrl-C only set the flag, however often they come; both handlers are restored on exit."""
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    with GracefulTermination() as guard:
        assert not guard.requested
        os.kill(os.getpid(), sig)  # would end pytest without the guard
        os.kill(os.getpid(), sig)
        assert guard.requested and guard.signum == sig
    assert {s: signal.getsignal(s) for s in before} == before


def test_config_round_trips_through_json():
    cfg = AgentConfig.quick()
    assert AgentConfig.from_dict(cfg.as_dict()) == cfg
    assert cfg.fingerprint() != AgentConfig.full().fingerprint()
    with pytest.raises(ValueError, match="algo"):
        AgentConfig(algo="ddpg")  # dqn and a2c are plan B algorithms (tests/test_plan_b.py)
    assert cfg.collapse == BacktestConfig().collapse  # one rule for selection and the backtest
