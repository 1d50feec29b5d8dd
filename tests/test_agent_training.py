"""Short real training runs: outputs, algorithm choice, resume after a crash and after SIGTERM,
reproducibility, and the quick profile's non-collapsed policy on synthetic data."""

from __future__ import annotations

import json
import os
import signal
import tempfile
import threading
import time

import numpy as np
import pandas as pd
import pytest
import torch
from helpers.agent import SendSignal, hmm_context, in_memory_encoder, tiny_config, tiny_encoder
from stable_baselines3.common.callbacks import BaseCallback

from cryptorl_core.agent import (
    AgentConfig,
    MarketTensors,
    PolicyCollapsedError,
    TrainingInterrupted,
    list_checkpoints,
    load_policy,
    rollout_policy,
    segment_market,
    train_policy,
)
from cryptorl_core.agent.curriculum import final_curriculum
from cryptorl_core.agent.seed_workers import run_in_workers
from cryptorl_core.encoder import MAEConfig
from cryptorl_core.env import BatchCryptoEnv
from cryptorl_core.policy_stats import CollapseRule
from cryptorl_core.provenance import training_environment
from cryptorl_core.schema import TEST

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def context(segment_frame: pd.DataFrame) -> pd.DataFrame:
    return hmm_context(segment_frame)


@pytest.fixture(scope="module")
def market(segment_frame, context) -> MarketTensors:
    return MarketTensors.build(segment_frame, context, tiny_encoder(segment_frame), tokens=1, device=CPU)


class Crash(BaseCallback):
    """Simulates a crash (an exception out of ``learn``) after ``at`` env transitions."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at = at

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.at:
            raise RuntimeError("simulated crash")
        return True


def test_no_checkpoint_from_before_the_end_of_discipline_is_kept(tmp_path, segment_frame, market):
    # Evaluations every 80 transitions; Discipline ends at half of the 480: 240.
    cfg = tiny_config(collapse=CollapseRule.off(), eval_freq=80, discipline_end=0.5, discovery_end=0.2,
                      select_after_discipline=True, min_evals=1, patience=1)
    assert cfg.select_from_step == 240 and cfg.replace(select_after_discipline=False).select_from_step == 0
    res = train_policy(segment_frame, market, cfg, tmp_path / "out", tmp_path / "ckpt", device="cpu")
    steps = [int(e["step"]) for e in res.evals]
    # Early evaluations are recorded, and early stopping (patience 1) still waited for a kept one.
    assert steps[:3] == [80, 160, 240] and res.best_step >= 240
    assert [bool(e["eligible"]) for e in res.evals[:2]] == [False, False]


def test_short_run_writes_outputs_and_logs(tmp_path, segment_frame, context, market):
    cfg = tiny_config(collapse=CollapseRule.off())  # every evaluation may be kept
    res = train_policy(segment_frame, market, cfg, tmp_path / "out", tmp_path / "ckpt",
                       device="cpu", tensorboard_dir=tmp_path / "tb")
    assert res.num_timesteps == 480 and res.start_timesteps == 0
    assert res.model_path.name == "tqc.zip" and res.model_path.exists() and res.final_model_path.exists()
    # The profile keeps the last model when it is live (keep_last_live), as here with the rule off.
    assert len(res.evals) == 2 and res.best_step in (240, 480) and res.kept_checkpoint == "last model at step 480"
    saved = json.loads(res.config_path.read_text())
    assert AgentConfig.from_dict(saved["config"]) == cfg and saved["metrics"]["seed"] == 0
    assert saved["environment"] == res.extra["environment"] == training_environment("cpu")
    assert res.curves and {"action_std", "action_entropy_bits", "ent_coef", "log_std"} <= set(res.curves[0])
    assert any(f.name.startswith("events.out.tfevents") for f in (tmp_path / "tb").rglob("*"))
    assert (tmp_path / "ckpt" / "seed-0" / "DONE.json").exists() and not list_checkpoints(tmp_path / "ckpt" / "seed-0")
    # The published model reloads and needs only the market tensors re-attached.
    again = load_policy(res.model_path, market, algo="tqc", device="cpu")
    obs = {"market": np.array([[5000.0]], np.float32), "position": np.zeros((1, 1), np.float32),
           "w_cost": np.full((1, 1), 0.5, np.float32)}
    np.testing.assert_allclose(again.predict(obs, deterministic=True)[0], res.model.predict(obs, deterministic=True)[0])


def test_a_run_without_tensorboard_leaves_no_logger_folder(tmp_path, segment_frame, market, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # where SB3's default logger writes
    monkeypatch.delenv("SB3_LOGDIR")  # the suite's folder for test helpers (conftest), not the trainer's
    (tmp_path / "tmp").mkdir()
    res = train_policy(segment_frame, market, tiny_config(collapse=CollapseRule.off()), tmp_path / "out", device="cpu")
    assert res.num_timesteps == 480 and res.curves  # training and its curves as usual
    assert not list((tmp_path / "tmp").iterdir())


def _same_weights(a, b) -> bool:
    """Whether two models' policies hold the same weights, tensor by tensor."""
    sa, sb = a.policy.state_dict(), b.policy.state_dict()
    return all(torch.equal(sa[k], sb[k]) for k in sa)


def test_keep_last_live_keeps_the_last_model_and_falls_back_to_the_best_when_it_is_dead(
        tmp_path, segment_frame, market, monkeypatch):
    from cryptorl_core.agent import train as train_module

    cfg = tiny_config(collapse=CollapseRule.off(), eval_freq=80, patience=100, min_evals=100, keep_last_live=False)
    best = train_policy(segment_frame, market, cfg, tmp_path / "best", device="cpu")
    last = train_policy(segment_frame, market, cfg.replace(keep_last_live=True), tmp_path / "last", device="cpu")
    final = load_policy(last.final_model_path, market, algo="tqc", device="cpu")
    assert best.best_step < 480 and not best.kept_last  # an early checkpoint won on eval ...
    assert last.kept_last and last.kept_checkpoint == "last model at step 480" and _same_weights(last.model, final)
    assert not _same_weights(best.model, final)  # ... which keep_last_live does not keep
    assert last.fingerprint == best.fingerprint  # the same training either way
    saved = json.loads(last.config_path.read_text())["metrics"]
    assert saved["kept_last"] and saved["last_model"]["live"] and saved["seed_runs"][0]["last_model_live"]
    # A collapsed last model is never kept: its first liveness check (the last model's) fails.
    verdicts = iter([False])
    monkeypatch.setattr(train_module, "is_live", lambda *a: next(verdicts, True))
    dead = train_policy(segment_frame, market, cfg.replace(keep_last_live=True), tmp_path / "dead", device="cpu")
    assert not dead.kept_last and dead.best_step == best.best_step and _same_weights(dead.model, best.model)
    assert not json.loads(dead.config_path.read_text())["metrics"]["last_model"]["live"]


@pytest.mark.parametrize("algo", ["sac", "ppo"])
def test_other_algorithms_train(tmp_path, segment_frame, context, market, algo):
    cfg = tiny_config(algo=algo, total_timesteps=256, eval_freq=256, batch_size=64)
    res = train_policy(segment_frame, market, cfg, tmp_path, device="cpu")
    assert res.model_path.name == f"{algo}.zip" and res.num_timesteps >= 256
    assert type(res.model).__name__ == algo.upper() and len(res.evals) == 1


def test_resume_after_a_crash_continues_from_the_checkpoint(tmp_path, segment_frame, context, market):
    cfg = tiny_config()
    ckpt = tmp_path / "ckpt"
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_policy(segment_frame, market, cfg, tmp_path / "out", ckpt, device="cpu", extra_callbacks=[Crash(360)])
    saved = list_checkpoints(ckpt / "seed-0")
    assert [c.num_timesteps for c in saved] == [160, 320]  # rotating, every 160 transitions
    evals_before = saved[-1].state["callbacks"]["eval"]["history"]
    res = train_policy(segment_frame, market, cfg, tmp_path / "out", ckpt, device="cpu")
    assert res.start_timesteps == 320 and res.resumed and res.num_timesteps == 480
    # the evaluation history of the first attempt was restored, not restarted
    assert res.evals[: len(evals_before)] == evals_before and [e["step"] for e in res.evals] == [240, 480]
    assert res.curves[0]["step"] < 320 < res.curves[-1]["step"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_termination_signal_saves_a_checkpoint_and_the_rerun_resumes(tmp_path, segment_frame, context,
                                                                       market, sig: int):
    cfg = tiny_config(checkpoint_freq=10_000)  # no periodic checkpoint: only the one on the signal
    ckpt = tmp_path / "ckpt"
    handler_before = signal.getsignal(sig)
    with pytest.raises(TrainingInterrupted, match=signal.Signals(sig).name) as info:
        train_policy(segment_frame, market, cfg, tmp_path / "out", ckpt, device="cpu",
                     extra_callbacks=[SendSignal(200, sig)])
    assert signal.getsignal(sig) is handler_before
    step = info.value.num_timesteps
    assert 200 <= step < 480 and [c.num_timesteps for c in list_checkpoints(ckpt / "seed-0")] == [step]
    assert not (tmp_path / "out" / "tqc.zip").exists()  # nothing published by the interrupted run
    res = train_policy(segment_frame, market, cfg, tmp_path / "out", ckpt, device="cpu")
    assert res.start_timesteps == step and res.num_timesteps == 480


def test_without_a_checkpoint_folder_ctrl_c_stops_training_at_once(tmp_path, segment_frame, context, market):
    """With nothing to save, the guard stays off: Ctrl-C is a KeyboardInterrupt at once, not a
    flag that no checkpoint callback reads while training runs on to the end."""
    cfg = tiny_config(checkpoint_freq=10_000)
    stopper = SendSignal(200, signal.SIGINT)
    # Python's own Ctrl-C handler, whatever this process inherited: a shell starts a background
    # job (`make test &`, nohup) with SIGINT ignored, and Python then installs no handler at all.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            train_policy(segment_frame, market, cfg, tmp_path / "out", device="cpu", extra_callbacks=[stopper])
    finally:
        signal.signal(signal.SIGINT, previous)
    assert stopper.sent and stopper.num_timesteps < cfg.total_timesteps
    assert not (tmp_path / "out" / "tqc.zip").exists()


def test_same_seed_gives_the_same_policy(tmp_path, segment_frame, context, market):
    cfg = tiny_config(total_timesteps=320, eval_freq=10_000)
    a = train_policy(segment_frame, market, cfg, tmp_path / "a", device="cpu", seed=3)
    b = train_policy(segment_frame, market, cfg, tmp_path / "b", device="cpu", seed=3)
    c = train_policy(segment_frame, market, cfg, tmp_path / "c", device="cpu", seed=4)
    assert _same_weights(a.model, b.model)
    assert not _same_weights(a.model, c.model)
    assert a.eval_stats.actions == b.eval_stats.actions


def test_collapsed_runs_retry_new_seeds_then_fail_without_publishing(tmp_path, segment_frame, context, market):
    cfg = tiny_config(total_timesteps=240, eval_freq=240, collapse=CollapseRule(min_trades=10**6), collapse_retries=1,
                      fail_on_collapse=True)
    with pytest.raises(PolicyCollapsedError, match="after 2 seeds") as info:
        train_policy(segment_frame, market, cfg, tmp_path / "out", device="cpu")
    assert [r.seed for r in info.value.runs] == [0, 1] and all(r.collapsed for r in info.value.runs)
    assert all(r.best_step == -1 for r in info.value.runs)  # no collapsed checkpoint was ever kept
    assert not (tmp_path / "out" / "tqc.zip").exists()


def test_best_of_seeds_is_chosen_on_eval_reward(tmp_path, segment_frame, context, market):
    cfg = tiny_config(total_timesteps=240, eval_freq=240, n_seeds=2, collapse=CollapseRule.off())
    res = train_policy(segment_frame, market, cfg, tmp_path / "out", device="cpu")
    runs = res.extra["seed_runs"]
    assert [r["seed"] for r in runs] == [0, 1]
    assert res.eval_stats.reward == max(r["eval_reward"] for r in runs) and res.seed in (0, 1)
    saved = json.loads(res.config_path.read_text())["metrics"]
    assert res.model_path.parent == tmp_path / "out" and saved["seed"] == res.seed
    assert len(saved["seed_runs"]) == 2


def test_seed_workers_train_the_same_policies_as_one_process(tmp_path, segment_frame, context, market):
    cfg = tiny_config(total_timesteps=240, eval_freq=240, n_seeds=2, collapse=CollapseRule.off())
    alone = train_policy(segment_frame, market, cfg, tmp_path / "alone", device="cpu")
    workers = train_policy(segment_frame, market, cfg.replace(seed_workers=2), tmp_path / "workers", device="cpu")
    assert workers.extra["seed_runs"] == alone.extra["seed_runs"] and workers.seed == alone.seed
    assert _same_weights(alone.model, workers.model)
    # the kept model came back loaded, market attached: it acts here as the one trained here
    env_cfg = cfg.env.with_overrides(n_envs=1)
    a, w = (rollout_policy(m, BatchCryptoEnv.from_segment_frame(segment_frame, "eval", env_cfg, mode="sequential"),
                           reward_scale=cfg.env.reward_scale, seed=0) for m in (alone.model, workers.model))
    assert len(w.actions) > 0 and w.actions == a.actions
    assert (tmp_path / "workers" / "seeds" / "1" / "tqc.zip").exists()


def test_worker_results_keep_their_order_and_a_worker_error_reaches_the_caller():
    assert run_in_workers(json.loads, [{"s": "[1, 2]"}, {"s": '{"a": 1}'}], 2) == [[1, 2], {"a": 1}]
    with pytest.raises(json.JSONDecodeError):
        run_in_workers(json.loads, [{"s": "{not json"}, {"s": "[]"}], 2)


def test_sigterm_reaches_the_seed_workers_which_checkpoint_and_resume(tmp_path, segment_frame, context, market):
    """Dagster's cancel signals the run's process; each seed worker saves its own checkpoint,
    and a re-run (here in one process) resumes both seeds."""
    cfg = tiny_config(total_timesteps=4_000, eval_freq=100_000, checkpoint_freq=160, n_seeds=2, seed_workers=2)
    ckpt = tmp_path / "ckpt"

    def cancel_once_both_train() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not all(list_checkpoints(ckpt / f"seed-{s}") for s in (0, 1)):
            time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGTERM)

    handler_before = signal.getsignal(signal.SIGTERM)
    canceller = threading.Thread(target=cancel_once_both_train, daemon=True)
    canceller.start()
    with pytest.raises(TrainingInterrupted, match="SIGTERM"):
        train_policy(segment_frame, market, cfg, tmp_path / "out", ckpt, device="cpu")
    canceller.join()
    assert signal.getsignal(signal.SIGTERM) is handler_before
    saved = {s: max(c.num_timesteps for c in list_checkpoints(ckpt / f"seed-{s}")) for s in (0, 1)}
    assert all(0 < step < 4_000 for step in saved.values())
    assert not (tmp_path / "out" / "tqc.zip").exists()  # nothing published by the interrupted run
    res = train_policy(segment_frame, market, cfg.replace(seed_workers=1), tmp_path / "out", ckpt, device="cpu")
    assert {r["seed"]: r["resumed_from_step"] for r in res.extra["seed_runs"]} == saved
    assert res.num_timesteps == 4_000


@pytest.mark.slow
def test_quick_profile_policy_is_not_collapsed_on_synthetic_data(tmp_path, segment_frame, context):
    """The quick profile (untrained quick-size encoder: the regime signal reaches the policy
    through the HMM FiLM context) trades and varies its position on the eval and test windows."""
    encoder = in_memory_encoder(segment_frame, MAEConfig.quick())
    cfg = AgentConfig.quick()
    res = train_policy(segment_frame, segment_market(segment_frame, context, encoder, cfg, "cpu"), cfg, tmp_path,
                       device="cpu")
    ev = res.eval_stats
    assert not res.collapsed
    assert not cfg.collapse.verdict(ev.position_stats)[0] or not res.extra["collapse"]["train_probe"]
    final = final_curriculum(cfg)
    test_cfg = cfg.env.with_overrides(n_envs=1, curriculum_lambda=final.curriculum_lambda, churn_coef=final.churn_coef,
                                      smooth_coef=final.smooth_coef, w_cost_low=cfg.eval_w_cost,
                                      w_cost_high=cfg.eval_w_cost, w_cost_p_zero=0.0)
    test = rollout_policy(res.model, BatchCryptoEnv.from_segment_frame(segment_frame, TEST, test_cfg, mode="sequential"),
                          reward_scale=cfg.env.reward_scale)
    print(f"quick profile: eval modal share {ev.modal_share:.3f}, trades {ev.n_trades:.0f}, nav {ev.nav:.4f}; "
          f"test modal share {test.modal_share:.3f}, trades {test.n_trades:.0f}, nav {test.nav:.4f}")
    assert cfg.collapse.verdict(test.position_stats) == (False, [])
