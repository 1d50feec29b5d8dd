"""Training of the FiLM-conditioned TQC (or SAC, PPO, DQN, A2C) agent on one walk-forward segment.

Read :func:`train_policy` top to bottom: the segment's market tensors (built by the caller,
e.g. with :func:`segment_market`) -> envs (train / eval / train probe)
-> fingerprint -> resume or build the model -> attach the market tensors -> callbacks
(curriculum, w_cost curriculum, entropy floor, metrics, evaluation with early stopping and
overfitting monitor, checkpoints) -> learn under a termination guard (SIGTERM, SIGINT) -> final
files and the best model's evaluation.

Leakage: the agent trains on train rows only, is selected on eval rows only; test rows
are never read here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from sb3_contrib import TQC
from stable_baselines3 import A2C, DQN, PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import VecEnv

from cryptorl_core.agent.algorithms import ALGORITHMS
from cryptorl_core.agent.callbacks import (
    EntropyFloorCallback,
    MetricsCallback,
    ResumeCheckpointCallback,
)
from cryptorl_core.agent.config import AgentConfig
from cryptorl_core.agent.counterfactual import CounterfactualReplayBuffer, attach_counterfactual
from cryptorl_core.agent.curriculum import (
    CurriculumCallback,
    WCostCurriculumCallback,
    final_curriculum,
)
from cryptorl_core.agent.evaluation import (
    EarlyStoppingCallback,
    OverfitMonitorCallback,
    RolloutStats,
    SegmentEvalCallback,
    collapse_reasons,
    is_live,
    rollout_policy,
    selection_tier,
)
from cryptorl_core.agent.extractor import (
    FoundationFeatureExtractor,
    attach_market,
    extractor_kwargs,
)
from cryptorl_core.agent.loading import load_policy
from cryptorl_core.agent.market_tensors import MarketTensors
from cryptorl_core.agent.resume import (
    BEST_MODEL_FILE,
    GracefulTermination,
    TrainingInterrupted,
    latest_checkpoint,
    make_save_fn,
    mark_done,
    restore_callback_states,
)
from cryptorl_core.agent.seed_workers import run_in_workers
from cryptorl_core.device import cpu_threads, resolve_device
from cryptorl_core.encoder.artifact import LoadedEncoder
from cryptorl_core.env import BatchCryptoEnv, DiscretePositionWrapper, SegmentMarket
from cryptorl_core.provenance import training_environment
from cryptorl_core.schema import EVAL, PRICE_CLOSE_COL, PRICE_OPEN_COL, TRAIN
from cryptorl_core.seeding import seed_everything

logger = logging.getLogger(__name__)

#: SB3 ``learn`` log interval (rollouts for on-policy algorithms, episodes for off-policy ones).
LOG_INTERVALS = {"ppo": 1, "a2c": 100}
FINAL_MODEL_FILE = "final_model.zip"
CONFIG_FILE = "config.json"
HISTORY_FILE = "history.json"
#: Envs of the train-window probe the overfitting monitor evaluates beside the eval split.
TRAIN_PROBE_ENVS = 4


def seed_run_dir(out_dir: str | os.PathLike, seed: int) -> Path:
    """Where :func:`train_policy` keeps one seed's run (its best and final models, config and
    history): ``out_dir/seeds/<seed>``."""
    return Path(out_dir) / "seeds" / str(seed)


def policy_filename(algo: str) -> str:
    """Name of the published best model: ``tqc.zip`` for the default algorithm."""
    return f"{algo}.zip"


# ---------------------------------------------------------------------------- results


@dataclass
class PolicyTrainResult:
    """Outcome of :func:`train_policy`.

    :param model: the best model (by eval reward), market tensors attached.
    :param config: the configuration used.
    :param model_path: the best model's zip (``tqc.zip``).
    :param final_model_path: the model at the end of training.
    :param config_path: ``config.json``.
    :param evals: one entry per evaluation (step, eval reward, NAV, trades, action std, ...).
    :param curves: the training metrics history (step, action std / entropy, ent_coef, NAV, ...).
    :param eval_stats: the best model's deterministic run over the eval split.
    :param best_step: env transitions at which the best model was saved (-1: never evaluated,
        the final model is kept).
    :param stopped_early: whether early stopping ended training.
    :param num_timesteps: env transitions done in total.
    :param start_timesteps: env transitions already done when this call started (> 0: resumed).
    :param train_seconds: wall time of this call's ``learn``.
    :param env_steps_per_s: env transitions per second of this call (evaluations included).
    :param overfit_warned_at: step of the first overfitting warning (-1: none).
    :param collapsed: whether the executed positions fail the collapse rule (``config.collapse``)
        on the eval window and on the train probe alike (:func:`~cryptorl_core.agent.evaluation.is_live`).
    :param device: device trained on.
    :param seed: the seed.
    :param fingerprint: hash of configuration and data (decides resuming).
    :param kept_last: the kept model is the last one of training (``keep_last_live`` and live,
        or no evaluation ever kept a checkpoint), not the best eval checkpoint.
    """

    model: BaseAlgorithm
    config: AgentConfig
    model_path: Path
    final_model_path: Path
    config_path: Path
    evals: list[dict[str, float]]
    curves: list[dict[str, float]]
    eval_stats: RolloutStats
    best_step: int
    stopped_early: bool
    num_timesteps: int
    start_timesteps: int
    train_seconds: float
    env_steps_per_s: float
    overfit_warned_at: int
    collapsed: bool
    device: str
    seed: int
    fingerprint: str
    kept_last: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def resumed(self) -> bool:
        return self.start_timesteps > 0

    @property
    def kept_checkpoint(self) -> str:
        """Which model was published as the policy."""
        if self.best_step < 0:
            return "final model (no evaluation)"
        return f"last model at step {self.num_timesteps}" if self.kept_last else f"best eval at step {self.best_step}"

    def metrics(self) -> dict[str, Any]:
        """Scalars for metadata and ``config.json``."""
        return {
            "algo": self.config.algo, "num_timesteps": self.num_timesteps,
            "start_timesteps": self.start_timesteps, "resumed": self.resumed,
            "best_step": self.best_step, "kept_checkpoint": self.kept_checkpoint,
            "stopped_early": self.stopped_early, "n_evals": len(self.evals),
            "train_seconds": self.train_seconds, "env_steps_per_s": self.env_steps_per_s,
            "overfit_warned_at": self.overfit_warned_at, "collapsed": self.collapsed,
            "collapse_rule": self.config.collapse.as_dict(),
            "device": self.device, "seed": self.seed, "fingerprint": self.fingerprint,
            "kept_last": self.kept_last, "last_model": self.extra.get("last_model", {}),
            "seed_runs": self.extra.get("seed_runs", []),
            **{f"eval_{k}": v for k, v in self.eval_stats.summary().items()},
        }


@dataclass
class PolicyArtifact:
    """What the ``tqc_policy`` stage hands downstream: paths and a summary (plain data).

    :param path: the published folder.
    :param model_path: the best model's zip (``tqc.zip``).
    :param final_model_path: the model at the end of training.
    :param config_path: ``config.json`` (agent config, metrics, encoder dimensions).
    :param algo: ``tqc``, ``sac``, ``ppo``, ``dqn`` or ``a2c``.
    :param config: :meth:`AgentConfig.as_dict`.
    :param metrics: :meth:`PolicyTrainResult.metrics`.
    :param encoder_path: the ``encoder.pth`` whose embeddings the policy reads.
    :param d_model: embedding width the policy was built for.
    :param tokens: tokens per row the policy was built for.
    """

    path: str
    model_path: str
    final_model_path: str
    config_path: str
    algo: str
    config: dict[str, Any]
    metrics: dict[str, Any]
    encoder_path: str = ""
    d_model: int = 0
    tokens: int = 0

    def agent_config(self) -> AgentConfig:
        return AgentConfig.from_dict(self.config)

    def load(self, market: MarketTensors, device: str | torch.device = "auto", final: bool = False) -> BaseAlgorithm:
        """Load the policy and attach a segment's market tensors (built with
        ``MarketTensors.build(frame, regime_model.context(frame), encoder, tokens=self.tokens, ...)``)."""
        path = self.final_model_path if final else self.model_path
        return load_policy(path, market, algo=self.algo, device=device)


# ---------------------------------------------------------------------------- building blocks


def make_envs(frame: pd.DataFrame, config: AgentConfig, device: torch.device, seed: int
              ) -> tuple[BatchCryptoEnv, BatchCryptoEnv, BatchCryptoEnv]:
    """Training env (train split, random starts), eval env (eval split, one sequential run)
    and train probe (a few train-split episodes of the eval run's length).

    Evaluation judges the final objective: Consolidation curriculum values and the fixed
    cost weight ``eval_w_cost``.
    """
    train_env = BatchCryptoEnv.from_segment_frame(frame, TRAIN, config.env_config, device=device,
                                                  n_envs=config.n_envs, seed=seed)
    final = final_curriculum(config)
    judged = config.env.with_overrides(
        curriculum_lambda=final.curriculum_lambda, churn_coef=final.churn_coef, smooth_coef=final.smooth_coef,
        w_cost_low=config.eval_w_cost, w_cost_high=config.eval_w_cost, w_cost_p_zero=0.0)
    eval_env = BatchCryptoEnv.from_segment_frame(frame, EVAL, judged.with_overrides(n_envs=1), device=device,
                                                 mode="sequential", seed=seed)
    eval_steps = len(SegmentMarket.from_frame(frame, EVAL).start_rows)
    probe_cfg = judged.with_overrides(n_envs=TRAIN_PROBE_ENVS, episode_length=max(eval_steps, 1))
    probe_env = BatchCryptoEnv.from_segment_frame(frame, TRAIN, probe_cfg, device=device, seed=seed + 1)
    return train_env, eval_env, probe_env


def training_env(env: BatchCryptoEnv, config: AgentConfig) -> VecEnv:
    """The env the algorithm steps: DQN's goes through the discrete position grid
    (:class:`~cryptorl_core.env.discrete.DiscretePositionWrapper`), the others' is ``env``."""
    return DiscretePositionWrapper(env) if config.algo == "dqn" else env


def build_model(config: AgentConfig, env: VecEnv, market: MarketTensors, device: torch.device,
                seed: int, tensorboard_dir: str | os.PathLike | None = None) -> BaseAlgorithm:
    """A fresh TQC / SAC / PPO / DQN / A2C with the foundation extractor (market tensors not
    attached yet). ``env`` is :func:`training_env`'s (DQN needs its discrete action space)."""
    lr = config.learning_rate if config.lr_final is None else LinearSchedule(config.learning_rate, config.lr_final, 1.0)
    policy_kwargs: dict[str, Any] = {
        "features_extractor_class": FoundationFeatureExtractor,
        "features_extractor_kwargs": extractor_kwargs(market.d_model, market.tokens, config.features_dim,
                                                      config.film_hidden, config.film_init_std, market.n_context,
                                                      config.context_skip, config.embedding),
    }
    common = {"learning_rate": lr, "gamma": config.gamma, "seed": seed, "device": device, "verbose": 0,
              "tensorboard_log": None if tensorboard_dir is None else str(tensorboard_dir)}
    if config.algo == "dqn":
        return _dqn(config, env, policy_kwargs, common)
    policy_kwargs["log_std_init"] = config.log_std_init
    common.update(use_sde=config.use_sde, sde_sample_freq=config.sde_sample_freq)
    if config.algo in ("ppo", "a2c"):
        policy_kwargs["net_arch"] = {"pi": list(config.net_arch), "vf": list(config.net_arch)}
        return (_ppo if config.algo == "ppo" else _a2c)(config, env, policy_kwargs, common)
    return _tqc_or_sac(config, env, policy_kwargs, common)


def _ppo(config: AgentConfig, env: VecEnv, policy_kwargs: dict[str, Any], common: dict[str, Any]) -> PPO:
    """PPO with seed 004's entropy coefficient (a fixed one, at least the floor), gradient clip
    and KL target.

    :param config: the agent configuration.
    :param env: the training env.
    :param policy_kwargs: extractor and heads.
    :param common: learning rate, gamma, gSDE, seed, device, logging.
    """
    return PPO("MultiInputPolicy", env, n_steps=config.n_steps, batch_size=config.batch_size,
               n_epochs=config.n_epochs, ent_coef=max(config.ppo_ent_coef, config.min_ent_coef),
               max_grad_norm=config.ppo_max_grad_norm, target_kl=config.ppo_target_kl,
               policy_kwargs=policy_kwargs, **common)


def _a2c(config: AgentConfig, env: VecEnv, policy_kwargs: dict[str, Any], common: dict[str, Any]) -> A2C:
    """A2C with SB3's defaults for its own settings (the entropy floor raises its coefficient).

    :param config: the agent configuration (only the shared settings in ``common`` are read).
    :param env: the training env.
    :param policy_kwargs: extractor and heads.
    :param common: learning rate, gamma, gSDE, seed, device, logging.
    """
    return A2C("MultiInputPolicy", env, policy_kwargs=policy_kwargs, **common)


def _dqn(config: AgentConfig, env: VecEnv, policy_kwargs: dict[str, Any], common: dict[str, Any]) -> DQN:
    """DQN over the discrete position grid: the config's replay settings, SB3's defaults for
    the target network and the epsilon-greedy schedule.

    :param config: the agent configuration.
    :param env: the :class:`~cryptorl_core.env.discrete.DiscretePositionWrapper` env.
    :param policy_kwargs: extractor (the Q-network's hidden layers are added here).
    :param common: learning rate, gamma, seed, device, logging.
    """
    policy_kwargs["net_arch"] = list(config.net_arch)
    return DQN("MultiInputPolicy", env, buffer_size=config.buffer_size, batch_size=config.batch_size,
               learning_starts=config.learning_starts, train_freq=(config.train_freq, "step"),
               gradient_steps=config.gradient_steps, policy_kwargs=policy_kwargs, **common)


def _tqc_or_sac(config: AgentConfig, env: VecEnv, policy_kwargs: dict[str, Any],
                common: dict[str, Any]) -> TQC | SAC:
    """TQC (with its quantile critics) or SAC, with the config's off-policy settings.

    :param config: the agent configuration.
    :param env: the training env.
    :param policy_kwargs: extractor and ``log_std_init`` (heads and critics are added here).
    :param common: learning rate, gamma, gSDE, seed, device, logging.
    """
    policy_kwargs["net_arch"] = list(config.net_arch)
    policy_kwargs["n_critics"] = config.n_critics
    off_policy = {"buffer_size": config.buffer_size, "batch_size": config.batch_size,
                  "learning_starts": config.learning_starts, "train_freq": (config.train_freq, "step"),
                  "gradient_steps": config.gradient_steps, "tau": config.tau, "ent_coef": config.ent_coef,
                  "target_entropy": config.target_entropy}
    if config.counterfactual_fraction > 0:
        off_policy.update(replay_buffer_class=CounterfactualReplayBuffer,
                          replay_buffer_kwargs={"fraction": config.counterfactual_fraction})
    if config.algo == "tqc":
        policy_kwargs["n_quantiles"] = config.n_quantiles
        return TQC("MultiInputPolicy", env, top_quantiles_to_drop_per_net=config.top_quantiles_to_drop_per_net,
                   policy_kwargs=policy_kwargs, **off_policy, **common)
    return SAC("MultiInputPolicy", env, policy_kwargs=policy_kwargs, **off_policy, **common)


def run_fingerprint(config: AgentConfig, market: MarketTensors, frame: pd.DataFrame, seed: int) -> str:
    """Hash of configuration, seed, prices, HMM context and (a sample of) the embeddings:
    a checkpoint resumes only a run with the same one."""
    import hashlib

    # One seed's training does not depend on how many seeds run, nor where: a run interrupted
    # in a seed worker resumes when re-run in this process, and the other way round.
    # Nor does it depend on which of its models is kept at the end (keep_last_live).
    one_run = config.replace(n_seeds=1, seed_workers=1, collapse_retries=0, fail_on_collapse=True,
                             keep_last_live=False)
    h = hashlib.sha256(f"{one_run.fingerprint()}|{seed}|{market.mode}|{market.tokens}".encode())
    h.update(frame[[PRICE_OPEN_COL, PRICE_CLOSE_COL]].to_numpy().tobytes())
    h.update(market.context.detach().cpu().numpy().tobytes())
    if market.embeddings is not None:
        stride = max(1, market.n_rows // 64)  # rows, so hashing stays cheap for a 760 MB cache
        h.update(market.embeddings[::stride].detach().float().cpu().numpy().tobytes())
    else:
        for t in market.encoder.state_dict().values():
            h.update(t.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


# ---------------------------------------------------------------------------- training


def segment_market(frame: pd.DataFrame, context: pd.DataFrame, encoder: LoadedEncoder, config: AgentConfig,
                   device: str | torch.device = "auto", mode: str = "cache") -> MarketTensors:
    """The market tensors ``config`` trains on (its ``tokens`` and ``cache_dtype``).

    :param frame: the segment frame.
    :param context: the HMM context of every frame row (``RegimeModel.context(frame)``).
    :param encoder: the frozen encoder (``EncoderArtifact.load(device)``).
    :param config: the agent configuration.
    :param device: where the tensors live.
    :param mode: ``"cache"`` (embedding cache) or ``"live"`` (frozen encoder in every forward).
    """
    return MarketTensors.build(frame, context, encoder, tokens=config.tokens, mode=mode,
                               device=resolve_device(device), cache_dtype=config.cache_dtype)


def train_policy(
    frame: pd.DataFrame,
    market: MarketTensors,
    config: AgentConfig,
    out_dir: str | os.PathLike,
    checkpoint_dir: str | os.PathLike | None = None,
    device: str | torch.device = "auto",
    seed: int | None = None,
    tensorboard_dir: str | os.PathLike | None = None,
    extra_callbacks: Sequence[BaseCallback] = (),
) -> PolicyTrainResult:
    """Train ``config.n_seeds`` agents (more if collapsed) and keep the best live one on the eval split.

    Seeds are ``seed, seed + 1, ...``. Each run keeps its best eval checkpoint among those
    that pass the collapse rule (:class:`~cryptorl_core.agent.evaluation.SegmentEvalCallback`).
    When every run so far is collapsed (on the eval window and the train probe alike,
    :func:`~cryptorl_core.agent.evaluation.is_live`), up to ``config.collapse_retries``
    more seeds are trained; then :class:`PolicyCollapsedError` is raised rather than a dead
    policy published (unless ``config.fail_on_collapse`` is off: then the best collapsed run is
    kept, marked ``collapsed``). Among live runs, the highest eval reward wins, after those live
    on the eval window itself when ``config.prefer_live_on_eval`` (:func:`selection_tier`). With
    ``config.seed_workers`` above 1 the first ``n_seeds`` runs train at once in worker processes
    (:func:`train_seeds_in_workers`; not with ``extra_callbacks``, which stay in this process).
    Runs live under ``out_dir/seeds/<seed>`` (checkpoints under ``checkpoint_dir/seed-<seed>``);
    the winner's files are copied to ``out_dir``. Parameters as :func:`train_one_seed`.

    :raises PolicyCollapsedError: no run produced a policy that passes the collapse rule.
    :raises TrainingInterrupted: SIGTERM or SIGINT arrived; with a ``checkpoint_dir`` each
        interrupted seed saved a checkpoint first.
    """
    out = Path(out_dir)
    base_seed = config.seed if seed is None else int(seed)

    def seed_call(s: int) -> dict[str, Any]:
        ckpt = None if checkpoint_dir is None else Path(checkpoint_dir) / f"seed-{s}"
        return {"frame": frame, "market": market, "config": config, "out_dir": seed_run_dir(out, s),
                "checkpoint_dir": ckpt, "device": device, "seed": s, "tensorboard_dir": tensorboard_dir,
                "extra_callbacks": extra_callbacks}

    first = [seed_call(base_seed + k) for k in range(config.n_seeds)]
    if config.seed_workers > 1 and len(first) > 1 and not extra_callbacks:
        runs = train_seeds_in_workers(first, market, config, device)
    else:
        runs = [train_one_seed(**call) for call in first]
    # Retries, one at a time: each only if every run so far is collapsed.
    for k in range(config.n_seeds, config.n_seeds + config.collapse_retries):
        if any(not r.collapsed for r in runs):
            break
        runs.append(train_one_seed(**seed_call(base_seed + k)))
    live = [r for r in runs if not r.collapsed]
    if not live and config.fail_on_collapse:
        raise PolicyCollapsedError(runs, config)
    chosen = max(live or runs, key=lambda r: (selection_tier(r.eval_stats, config.collapse, config.prefer_live_on_eval),
                                              r.eval_stats.reward))
    chosen.extra["seed_runs"] = [{"seed": r.seed, "eval_reward": r.eval_stats.reward, "collapsed": r.collapsed,
                                  "best_step": r.best_step, "eval_trades": r.eval_stats.n_trades,
                                  "eval_modal_share": r.eval_stats.modal_share, "kept_last": r.kept_last,
                                  "last_model_live": r.extra["last_model"]["live"],
                                  "resumed_from_step": r.start_timesteps} for r in runs]
    return publish_run(chosen, out)


def train_seeds_in_workers(calls: Sequence[dict[str, Any]], market: MarketTensors, config: AgentConfig,
                           device: str | torch.device) -> list[PolicyTrainResult]:
    """:func:`train_one_seed` for each call, ``config.seed_workers`` spawned processes at once
    (:func:`~cryptorl_core.agent.seed_workers.run_in_workers`). The market tensors travel on
    the CPU; each run's best model is loaded back here, onto ``device``."""
    host = market.to("cpu")
    detached = run_in_workers(_train_one_seed_detached, [{**c, "market": host} for c in calls],
                              config.seed_workers)
    dev = resolve_device(device)
    market = market.to(dev)
    return [dataclasses.replace(r, model=load_policy(r.model_path, market, algo=config.algo, device=dev))
            for r in detached]


def _train_one_seed_detached(**kwargs: Any) -> PolicyTrainResult:
    """:func:`train_one_seed` in a worker process: the result without its model (the caller
    loads it from ``model_path``), which would drag the market tensors back with it."""
    return dataclasses.replace(train_one_seed(**kwargs), model=None)


class PolicyCollapsedError(RuntimeError):
    """Every training run ended with a policy that fails the collapse rule on the eval window
    and on the train probe.

    :param runs: the runs, one per seed.
    :param config: the configuration (rule, retries).
    """

    def __init__(self, runs: Sequence[PolicyTrainResult], config: AgentConfig) -> None:
        detail = "; ".join(f"seed {r.seed}: eval window: {'; '.join(r.extra['collapse']['eval'])}; train probe: "
                           f"{'; '.join(r.extra['collapse']['train_probe'])}" for r in runs)
        super().__init__(
            f"no policy passed the collapse rule ({config.collapse.as_dict()}) on the eval window or the "
            f"train probe after {len(runs)} seeds: {detail}. Train longer (total_timesteps), raise "
            f"collapse_retries or min_ent_coef, or check the inputs.")
        self.runs = list(runs)


def publish_run(run: PolicyTrainResult, out: Path) -> PolicyTrainResult:
    """Copy one seed's files (model, final model, config, history) to ``out``; the result's
    paths point at the copies."""
    out.mkdir(parents=True, exist_ok=True)
    copies = {}
    for name, src in (("model_path", run.model_path), ("final_model_path", run.final_model_path),
                      ("config_path", run.config_path)):
        copies[name] = out / src.name
        shutil.copyfile(src, copies[name])
    shutil.copyfile(run.config_path.parent / HISTORY_FILE, out / HISTORY_FILE)
    config_doc = json.loads(copies["config_path"].read_text())
    config_doc["metrics"] = run.metrics()
    copies["config_path"].write_text(json.dumps(config_doc, indent=2, default=str))
    return dataclasses.replace(run, **copies)


def train_one_seed(
    frame: pd.DataFrame,
    market: MarketTensors,
    config: AgentConfig,
    out_dir: str | os.PathLike,
    checkpoint_dir: str | os.PathLike | None = None,
    device: str | torch.device = "auto",
    seed: int | None = None,
    tensorboard_dir: str | os.PathLike | None = None,
    extra_callbacks: Sequence[BaseCallback] = (),
) -> PolicyTrainResult:
    """Train one agent on the train split of a segment and keep its best model on the eval split.

    :param frame: the segment frame (technical columns, ``split``, prices).
    :param market: the segment's market tensors (:func:`segment_market`: HMM context plus the
        frozen encoder's embedding cache, or the encoder itself in live mode); moved to ``device``.
    :param config: hyper-parameters (:meth:`AgentConfig.quick` / :meth:`AgentConfig.full`).
    :param out_dir: where ``tqc.zip``, ``final_model.zip``, ``config.json`` and
        ``history.json`` are written.
    :param checkpoint_dir: resume folder; a re-run with the same folder (same config and data)
        continues from its last checkpoint. ``None`` disables checkpoints and resuming.
    :param device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
    :param seed: seed (default ``config.seed``); recorded in the result.
    :param tensorboard_dir: TensorBoard log folder (``None``: no TensorBoard files).
    :param extra_callbacks: more callbacks, run after the built-in ones (e.g. to interrupt a test).
    :raises TrainingInterrupted: SIGTERM or SIGINT arrived with a ``checkpoint_dir``; a checkpoint
        was saved first (without one, the signal has its usual effect).
    """
    dev = resolve_device(device)
    if str(device).startswith("cuda") and dev.type != "cuda":
        logger.warning("CUDA requested but not available; training the agent on CPU")
    seed = config.seed if seed is None else int(seed)
    seed_everything(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    logger.info("training %s on %s, %d envs, %d steps, seed %d", config.algo, dev, config.n_envs,
                config.total_timesteps, seed)

    # Market tensors: built once by the caller (the encoder never runs in a gradient step).
    market = market.to(dev)
    batch_env, eval_env, probe_env = make_envs(frame, config, dev, seed)
    train_env = training_env(batch_env, config)
    fingerprint = run_fingerprint(config, market, frame, seed)

    # Resume from the last checkpoint of the same run, else start fresh.
    checkpoint = latest_checkpoint(ckpt_dir, fingerprint)
    algo_cls = ALGORITHMS[config.algo]
    if checkpoint is not None:
        model = algo_cls.load(checkpoint.model_path, env=train_env, device=dev,
                              tensorboard_log=None if tensorboard_dir is None else str(tensorboard_dir))
        if checkpoint.replay_path.exists() and hasattr(model, "load_replay_buffer"):
            model.load_replay_buffer(checkpoint.replay_path)
        logger.info("resuming %s from %s at %d steps", config.algo, checkpoint.path, model.num_timesteps)
    else:
        model = build_model(config, train_env, market, dev, seed, tensorboard_dir)
    attach_market(model, market)
    attach_counterfactual(model, batch_env, seed)
    if tensorboard_dir is None:
        # SB3's default logger would leave an empty <tmp>/SB3-<time> folder behind every run.
        model.set_logger(Logger(folder=None, output_formats=[]))
    start_timesteps = int(model.num_timesteps)

    # Callbacks: curricula, entropy floor, metrics, evaluation (+ early stop, overfit), checkpoints.
    work_dir = ckpt_dir if ckpt_dir is not None else out
    best_path = work_dir / BEST_MODEL_FILE
    early_stop = EarlyStoppingCallback(config.patience, config.min_evals, config.min_delta)
    overfit = OverfitMonitorCallback(config.overfit_margin, config.overfit_rel_gap)
    evaluator = SegmentEvalCallback(eval_env, config.eval_freq, best_path, train_probe_env=probe_env,
                                    reward_scale=config.env.reward_scale, probe_seed=seed + 1,
                                    after_eval=[early_stop, overfit], collapse_rule=config.collapse,
                                    prefer_live_on_eval=config.prefer_live_on_eval,
                                    select_from_step=config.select_from_step)
    metrics = MetricsCallback(config.log_freq)
    stateful = [evaluator, early_stop, overfit, metrics]
    callbacks: list[BaseCallback] = [
        CurriculumCallback(config), WCostCurriculumCallback(config),
        EntropyFloorCallback(config.min_ent_coef), metrics, evaluator,
    ]
    if checkpoint is not None:
        restore_callback_states(stateful, checkpoint.state.get("callbacks", {}))
    guard = GracefulTermination()
    checkpointer = None
    if ckpt_dir is not None:
        save_fn = make_save_fn(ckpt_dir, stateful, {"fingerprint": fingerprint, "algo": config.algo},
                               config.keep_checkpoints, config.save_replay_buffer)
        checkpointer = ResumeCheckpointCallback(save_fn, config.checkpoint_freq, lambda: guard.requested)
        callbacks.append(checkpointer)
    callbacks.extend(extra_callbacks)

    # Learn (continuing the step counter on resume), unless a previous call already finished.
    remaining = config.total_timesteps - model.num_timesteps
    t0 = time.perf_counter()
    if remaining > 0 and not early_stop.stopped:
        # The guard only when a checkpoint callback reads its flag: with nothing to save, a
        # signal keeps its usual effect (Ctrl-C stops at once) instead of waiting for the end.
        with (guard if checkpointer is not None else contextlib.nullcontext()), \
                cpu_threads(config.cpu_threads if dev.type == "cpu" else None):
            model.learn(remaining, callback=CallbackList(callbacks), reset_num_timesteps=checkpoint is None,
                        tb_log_name=config.algo, log_interval=LOG_INTERVALS.get(config.algo, 4))
    train_seconds = time.perf_counter() - t0
    if checkpointer is not None and guard.requested:
        saved = checkpointer.saved[-1] if checkpointer.saved else None
        raise TrainingInterrupted(saved, int(model.num_timesteps), guard.signum)

    # Final files: the last model, the best one (or the last if never evaluated), the config.
    final_path = out / FINAL_MODEL_FILE
    model.save(final_path)
    # The last model is never selected on eval; it is the one kept under keep_last_live, if live.
    final_eval = rollout_policy(model, eval_env, True, config.env.reward_scale)
    final_probe = rollout_policy(model, probe_env, True, config.env.reward_scale, seed + 1)
    final_live = is_live(final_eval, final_probe, config.collapse)
    kept_last = (config.keep_last_live and final_live) or not best_path.exists()
    model_path = out / policy_filename(config.algo)
    shutil.copyfile(final_path if kept_last else best_path, model_path)
    best = load_policy(model_path, market, algo=config.algo, device=dev)
    if kept_last:
        eval_stats, probe_stats = final_eval, final_probe
    else:
        eval_stats = rollout_policy(best, eval_env, True, config.env.reward_scale)
        probe_stats = rollout_policy(best, probe_env, True, config.env.reward_scale, seed + 1)
    collapsed = not is_live(eval_stats, probe_stats, config.collapse)
    done = time.perf_counter() - t0
    result = PolicyTrainResult(
        model=best, config=config, model_path=model_path, final_model_path=final_path,
        config_path=out / CONFIG_FILE, evals=evaluator.history, curves=metrics.history,
        eval_stats=eval_stats, best_step=evaluator.best_step if best_path.exists() else -1, kept_last=kept_last,
        stopped_early=early_stop.stopped, num_timesteps=int(model.num_timesteps),
        start_timesteps=start_timesteps, train_seconds=train_seconds,
        env_steps_per_s=(model.num_timesteps - start_timesteps) / max(train_seconds, 1e-9),
        overfit_warned_at=overfit.warned_at, collapsed=collapsed, device=str(dev), seed=seed,
        fingerprint=fingerprint, extra={"seconds_total": done, "mode": market.mode,
                                        "d_model": market.d_model, "tokens": market.tokens,
                                        "environment": training_environment(dev)},
    )
    result.config_path.write_text(json.dumps({"config": config.as_dict(), "metrics": result.metrics(),
                                              "d_model": market.d_model, "tokens": market.tokens,
                                              "environment": result.extra["environment"]}, indent=2, default=str))
    (out / HISTORY_FILE).write_text(json.dumps({"evals": result.evals, "curves": result.curves}, default=float))
    if ckpt_dir is not None:
        mark_done(ckpt_dir, {"fingerprint": fingerprint, "num_timesteps": result.num_timesteps})
    result.extra["last_model"] = {"live": final_live, "eval_reward": final_eval.reward,
                                  "eval_trades": final_eval.n_trades, "eval_modal_share": final_eval.modal_share}
    result.extra["train_probe"] = {"action_std": probe_stats.action_std, "n_trades": probe_stats.n_trades,
                                   "modal_share": probe_stats.modal_share}
    result.extra["collapse"] = {"eval": collapse_reasons(eval_stats, config.collapse),
                                "train_probe": collapse_reasons(probe_stats, config.collapse)}
    if collapsed:
        logger.warning("policy looks collapsed on the eval window (%s) and the train probe (%s)",
                       "; ".join(result.extra["collapse"]["eval"]), "; ".join(result.extra["collapse"]["train_probe"]))
    return result
