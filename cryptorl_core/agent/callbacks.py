"""Training callbacks, one job each (Stable-Baselines3 ``BaseCallback`` subclasses).

- :class:`CurriculumCallback`: three-phase cost curriculum on the env's attributes;
- :class:`WCostCurriculumCallback`: widens the MORL cost-weight distribution over training;
- :class:`EntropyFloorCallback`: keeps the entropy coefficient at or above a floor;
- :class:`EvalCallback`: periodic deterministic evaluation on the eval split, best-model save,
  with after-evaluation children :class:`EarlyStoppingCallback` and :class:`OverfitMonitorCallback`;
- :class:`MetricsCallback`: NAV, reward components, action statistics, ent_coef, log_std to
  the SB3 logger (TensorBoard), and a history for the training curves;
- :class:`CheckpointCallback`: rotating resume checkpoints, and the SIGTERM save.

Callbacks whose state must survive a resume implement ``state_dict()`` / ``load_state_dict()``
(plain JSON values); :mod:`cryptorl_core.agent.checkpointing` stores them with the model.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv

from cryptorl_core.agent.config import AgentConfig
from cryptorl_core.env.discrete import env_actions
from cryptorl_core.policy_stats import collapse_stats

logger = logging.getLogger(__name__)


class StatefulCallback(BaseCallback):
    """A callback whose counters are saved with resume checkpoints."""

    #: Key of this callback's state in a checkpoint.
    state_key: str = ""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""


def training_progress(num_timesteps: int, total_timesteps: int) -> float:
    """Fraction of training done, in ``[0, 1]``."""
    return min(1.0, max(0.0, num_timesteps / max(total_timesteps, 1)))


def _ramp(x: float, start: float, end: float) -> float:
    """0 before ``start``, 1 after ``end``, linear in between."""
    if end <= start:
        return 1.0 if x >= end else 0.0
    return min(1.0, max(0.0, (x - start) / (end - start)))


# ---------------------------------------------------------------------------- curricula


@dataclass(frozen=True)
class CurriculumValues:
    """Cost-shaping values of the env at one point of training.

    :param phase: 0 Discovery, 1 Discipline, 2 Consolidation.
    :param churn_coef: penalty per unit of ``|dpos|``.
    :param smooth_coef: penalty on the squared change of ``dpos``.
    :param curriculum_lambda: weight of the whole cost term.
    """

    phase: int
    churn_coef: float
    smooth_coef: float
    curriculum_lambda: float


PHASE_NAMES = ("discovery", "discipline", "consolidation")


def curriculum_values(progress: float, config: AgentConfig) -> CurriculumValues:
    """The three-phase curriculum.

    - Discovery (``0 .. discovery_end``): churn ``0 -> churn_discovery``, no smoothness penalty,
      so the agent first finds out that positions pay;
    - Discipline (``.. discipline_end``): churn ``-> churn_final``, smoothness ``0 -> smooth_final``;
    - Consolidation (rest): fixed.

    ``curriculum_lambda`` ramps ``0 -> lambda_final`` over Discovery and Discipline.
    """
    d_end, c_end = config.discovery_end, config.discipline_end
    if progress < d_end:
        phase = 0
        churn = config.churn_discovery * _ramp(progress, 0.0, d_end)
        smooth = 0.0
    else:
        phase = 1 if progress < c_end else 2
        f = _ramp(progress, d_end, c_end)
        churn = config.churn_discovery + (config.churn_final - config.churn_discovery) * f
        smooth = config.smooth_final * f
    lam = config.lambda_final * _ramp(progress, 0.0, c_end)
    return CurriculumValues(phase, float(churn), float(smooth), float(lam))


def final_curriculum(config: AgentConfig) -> CurriculumValues:
    """The Consolidation values (what evaluation judges the policy against)."""
    return curriculum_values(1.0, config)


class CurriculumCallback(BaseCallback):
    """Sets ``churn_coef``, ``smooth_coef`` and ``curriculum_lambda`` on the training env
    from training progress (:func:`curriculum_values`).

    :param config: the agent configuration (phase boundaries and targets, total timesteps).
    """

    def __init__(self, config: AgentConfig, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.config = config
        self.current: CurriculumValues | None = None

    def _apply(self) -> None:
        values = curriculum_values(training_progress(self.num_timesteps, self.config.total_timesteps), self.config)
        if values != self.current:
            env = self.training_env
            env.set_attr("churn_coef", values.churn_coef)
            env.set_attr("smooth_coef", values.smooth_coef)
            env.set_attr("curriculum_lambda", values.curriculum_lambda)
            self.current = values
        self.logger.record("curriculum/phase", values.phase)
        self.logger.record("curriculum/lambda", values.curriculum_lambda)
        self.logger.record("curriculum/churn_coef", values.churn_coef)
        self.logger.record("curriculum/smooth_coef", values.smooth_coef)

    def _on_training_start(self) -> None:
        self._apply()

    def _on_step(self) -> bool:
        self._apply()
        return True


@dataclass(frozen=True)
class WCostDistribution:
    """Arguments of ``BatchCryptoEnv.set_w_cost_distribution``."""

    low: float
    high: float
    p_zero: float


def w_cost_distribution(progress: float, config: AgentConfig) -> WCostDistribution:
    """MORL cost-weight curriculum: ``w_cost ~ U[0, high]`` (0 with probability ``p_zero``),
    ``high`` widening linearly from ``w_cost_start_high`` to 1 and ``p_zero`` shrinking from
    ``w_cost_start_p_zero`` to ``w_cost_final_p_zero`` by ``w_cost_widen_end``. Early episodes
    are mostly cheap, so the agent learns to trade before it learns what trading costs."""
    f = _ramp(progress, 0.0, config.w_cost_widen_end)
    high = config.w_cost_start_high + (1.0 - config.w_cost_start_high) * f
    p_zero = config.w_cost_start_p_zero + (config.w_cost_final_p_zero - config.w_cost_start_p_zero) * f
    return WCostDistribution(0.0, float(high), float(p_zero))


class WCostCurriculumCallback(BaseCallback):
    """Widens the training env's ``w_cost`` distribution over training (:func:`w_cost_distribution`).

    New values apply to episodes that start afterwards (running episodes keep their weight).

    :param config: the agent configuration.
    :param min_change: re-send the distribution only when ``high`` or ``p_zero`` moved this much.
    """

    def __init__(self, config: AgentConfig, min_change: float = 1e-3, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.config = config
        self.min_change = min_change
        self.current: WCostDistribution | None = None

    def _apply(self, force: bool = False) -> None:
        dist = w_cost_distribution(training_progress(self.num_timesteps, self.config.total_timesteps), self.config)
        cur = self.current
        if force or cur is None or abs(dist.high - cur.high) >= self.min_change or abs(dist.p_zero - cur.p_zero) >= self.min_change:
            self.training_env.env_method("set_w_cost_distribution", dist.low, dist.high, dist.p_zero)
            self.current = dist
            self.logger.record("curriculum/w_cost_high", dist.high)
            self.logger.record("curriculum/w_cost_p_zero", dist.p_zero)

    def _on_training_start(self) -> None:
        self._apply(force=True)

    def _on_step(self) -> bool:
        self._apply()
        return True


# ---------------------------------------------------------------------------- entropy floor


def current_ent_coef(model: BaseAlgorithm) -> float:
    """The entropy coefficient in use (learned or fixed, any of TQC, SAC, PPO)."""
    log_ent = getattr(model, "log_ent_coef", None)
    if isinstance(log_ent, torch.Tensor):
        return float(log_ent.detach().exp().item())
    tensor = getattr(model, "ent_coef_tensor", None)
    if isinstance(tensor, torch.Tensor):
        return float(tensor.item())
    return float(getattr(model, "ent_coef", float("nan")))


class EntropyFloorCallback(BaseCallback):
    """Keeps the entropy coefficient at or above ``min_ent_coef`` (anti-collapse).

    - learned coefficient (TQC/SAC ``ent_coef="auto..."``): ``log_ent_coef`` is clamped right
      after every step of its optimiser (a ``register_step_post_hook``), so no gradient step
      ever uses a smaller value, and once more at every env step;
    - fixed coefficient (TQC/SAC float, PPO): raised to the floor once at training start.

    :param min_ent_coef: the floor (> 0).
    """

    def __init__(self, min_ent_coef: float = 0.01, verbose: int = 0) -> None:
        super().__init__(verbose)
        if min_ent_coef <= 0:
            raise ValueError(f"min_ent_coef must be > 0, got {min_ent_coef}")
        self.min_ent_coef = float(min_ent_coef)
        self.n_clamps = 0
        self._hook: Any = None

    def clamp(self) -> bool:
        """Apply the floor now; return True if it changed the coefficient."""
        model = self.model
        log_ent = getattr(model, "log_ent_coef", None)
        if isinstance(log_ent, torch.Tensor):
            floor = math.log(self.min_ent_coef)
            if float(log_ent.detach().min()) < floor:
                with torch.no_grad():
                    log_ent.clamp_(min=floor)
                self.n_clamps += 1
                return True
            return False
        tensor = getattr(model, "ent_coef_tensor", None)
        if isinstance(tensor, torch.Tensor):
            if float(tensor) < self.min_ent_coef:
                tensor.fill_(self.min_ent_coef)
                self.n_clamps += 1
                return True
            return False
        if isinstance(getattr(model, "ent_coef", None), float | int) and model.ent_coef < self.min_ent_coef:
            model.ent_coef = self.min_ent_coef  # PPO reads it in every loss
            self.n_clamps += 1
            return True
        return False

    def _on_training_start(self) -> None:
        optimizer = getattr(self.model, "ent_coef_optimizer", None)
        if optimizer is not None:
            self._hook = optimizer.register_step_post_hook(lambda *_: self.clamp())
        self.clamp()

    def _on_step(self) -> bool:
        self.clamp()
        self.logger.record("train/ent_coef_floor_clamps", self.n_clamps)
        return True

    def _on_training_end(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None


# ---------------------------------------------------------------------------- evaluation


@dataclass
class RolloutStats:
    """Deterministic policy run until every env finished one episode.

    :param reward: mean episode reward (the MORL reward the env pays).
    :param reward_per_step: mean reward per step.
    :param perf_per_step: mean performance reward per step (``reward_scale * log`` NAV growth).
    :param nav: mean final NAV.
    :param n_trades: mean position changes per episode.
    :param length: mean episode length.
    :param action_mean: mean raw action of env 0.
    :param action_std: std of env 0's raw actions over its episode (collapse indicator).
    :param action_entropy_bits: entropy of env 0's action histogram on the 0.1 grid.
    :param actions: env 0's raw actions, in time order.
    :param positions: env 0's executed positions, in time order.
    :param navs: env 0's NAV after each step.
    """

    reward: float
    reward_per_step: float
    perf_per_step: float
    nav: float
    n_trades: float
    length: float
    action_mean: float
    action_std: float
    action_entropy_bits: float
    actions: list[float] = field(default_factory=list, repr=False)
    positions: list[float] = field(default_factory=list, repr=False)
    navs: list[float] = field(default_factory=list, repr=False)

    def summary(self) -> dict[str, float]:
        """The scalars (no traces)."""
        d = asdict(self)
        for key in ("actions", "positions", "navs"):
            d.pop(key)
        return d


def rollout_policy(model: BaseAlgorithm, env: VecEnv, deterministic: bool = True,
                   reward_scale: float = 1.0, seed: int | None = None) -> RolloutStats:
    """Run ``model`` in ``env`` (a ``BatchCryptoEnv``) until each env ends its first episode.

    :param model: the trained model (market tensors attached); a discrete one's indices are
        mapped to the env's actions (:func:`~cryptorl_core.env.discrete.env_actions`).
    :param env: evaluation env, e.g. ``mode="sequential"`` over the eval split.
    :param deterministic: use the policy's mean action.
    :param reward_scale: the env's ``reward_scale``, to turn final NAV into a per-step
        performance reward.
    :param seed: reseed the env first (same start rows and cost weights every call).
    """
    if seed is not None:
        env.seed(seed)
    obs = env.reset()
    n = env.num_envs
    finished = np.zeros(n, dtype=bool)
    episodes: list[dict[str, float]] = [{} for _ in range(n)]
    actions0: list[float] = []
    positions0: list[float] = []
    navs0: list[float] = []
    nav_attr = hasattr(env, "nav")
    while not finished.all():
        action, _ = model.predict(obs, deterministic=deterministic)
        action = env_actions(action, model.action_space, getattr(env, "config", None))
        if not finished[0]:
            actions0.append(float(np.asarray(action).reshape(n, -1)[0, 0]))
        obs, _, dones, infos = env.step(action)
        if not finished[0]:
            positions0.append(float(infos[0]["terminal_observation"]["position"][0]) if dones[0]
                              else float(obs["position"][0, 0]))
            navs0.append(float(infos[0]["nav"]) if dones[0] else (float(env.nav[0]) if nav_attr else math.nan))
        for i in np.flatnonzero(dones & ~finished):
            info = infos[i]
            length = max(int(info["episode"]["l"]), 1)
            episodes[i] = {"reward": float(info["episode"]["r"]), "length": length, "nav": float(info["nav"]),
                           "n_trades": float(info["n_trades"])}
            finished[i] = True
    acts = np.asarray(actions0, dtype=float)
    reward = float(np.mean([e["reward"] for e in episodes]))
    length = float(np.mean([e["length"] for e in episodes]))
    perf = float(np.mean([reward_scale * math.log(max(e["nav"], 1e-12)) / e["length"] for e in episodes]))
    return RolloutStats(
        reward=reward,
        reward_per_step=float(np.mean([e["reward"] / e["length"] for e in episodes])),
        perf_per_step=perf,
        nav=float(np.mean([e["nav"] for e in episodes])),
        n_trades=float(np.mean([e["n_trades"] for e in episodes])),
        length=length,
        action_mean=float(acts.mean()),
        action_std=float(acts.std()),
        action_entropy_bits=collapse_stats(acts).entropy_bits,
        actions=acts.tolist(),
        positions=positions0,
        navs=navs0,
    )


def clears_floors(stats: RolloutStats, min_action_std: float, min_trades: float) -> bool:
    """Whether a deterministic run's action std and trade count reach the collapse floors."""
    return stats.action_std >= min_action_std and stats.n_trades >= min_trades


def is_live(eval_stats: RolloutStats, train_stats: RolloutStats | None, min_action_std: float,
            min_trades: float) -> bool:
    """A policy is live (not collapsed) when it clears the floors on the eval window or on the
    train probe's episodes of the same length.

    Why both: a policy that reads the regime holds still through a one-regime eval month (a
    whole month of range, where flat is right), yet moves across the train year's regimes;
    a collapsed policy, one that ignores its inputs, is constant on both.
    """
    return clears_floors(eval_stats, min_action_std, min_trades) or (
        train_stats is not None and clears_floors(train_stats, min_action_std, min_trades))


class EvalCallback(StatefulCallback):
    """Every ``eval_freq`` env transitions: run the deterministic policy over the eval split,
    keep the best model, and run the after-evaluation children (early stopping, overfitting
    monitor), which may stop training.

    :param eval_env: env over the eval split (``mode="sequential"``, or a few random envs).
    :param eval_freq: env transitions (all envs together) between two evaluations.
    :param best_model_path: where the best model is saved (``.zip``); None: not saved.
    :param train_probe_env: optional env over the train split evaluated the same way (the
        overfitting monitor compares it with the eval split).
    :param reward_scale: the env's ``reward_scale``.
    :param probe_seed: seed of the train probe's episodes (the same ones at every evaluation).
    :param after_eval: children called after each evaluation (their ``parent`` is this callback).
    :param min_action_std: an evaluated policy whose action std is below this ...
    :param min_trades: ... or that trades fewer times, on the eval window and on the train probe
        alike (:func:`is_live`), is collapsed: never kept as the best model, however high its
        eval reward (a flat policy's 0.0 beats a slightly negative one).
    """

    state_key = "eval"

    def __init__(self, eval_env: VecEnv, eval_freq: int, best_model_path: str | Path | None = None,
                 train_probe_env: VecEnv | None = None, reward_scale: float = 1.0,
                 probe_seed: int | None = 0, after_eval: Sequence[BaseCallback] = (),
                 min_action_std: float = 0.0, min_trades: float = 0.0, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.min_action_std, self.min_trades = float(min_action_std), float(min_trades)
        self.eval_env = eval_env
        self.train_probe_env = train_probe_env
        self.eval_freq = int(eval_freq)
        self.best_model_path = Path(best_model_path) if best_model_path is not None else None
        self.reward_scale = reward_scale
        self.probe_seed = probe_seed
        self.after_eval = list(after_eval)
        for child in self.after_eval:
            child.parent = self
        self.history: list[dict[str, float]] = []
        self.best_reward = -math.inf
        self.best_step = -1
        self.last_result: RolloutStats | None = None
        self.last_train_result: RolloutStats | None = None
        self.last_improved = self.last_eligible = False
        self._next_eval = self.eval_freq

    def _init_callback(self) -> None:
        for child in self.after_eval:
            child.init_callback(self.model)

    def _on_training_start(self) -> None:
        for child in self.after_eval:
            child.on_training_start(self.locals, self.globals)
        # After a resume, the next evaluation is the first multiple of eval_freq still ahead.
        self._next_eval = max(self._next_eval, (self.num_timesteps // self.eval_freq + 1) * self.eval_freq)

    def evaluate(self) -> bool:
        """Run one evaluation now; return False if a child asks to stop."""
        result = rollout_policy(self.model, self.eval_env, True, self.reward_scale)
        train = rollout_policy(self.model, self.train_probe_env, True, self.reward_scale,
                               self.probe_seed) if self.train_probe_env else None
        self.last_result, self.last_train_result = result, train
        self.last_eligible = self.eligible(result, train)
        self.last_improved = self.last_eligible and result.reward > self.best_reward
        if self.last_improved:
            self.best_reward, self.best_step = result.reward, self.num_timesteps
            if self.best_model_path is not None:
                self.best_model_path.parent.mkdir(parents=True, exist_ok=True)
                self.model.save(self.best_model_path)
        entry = {"step": self.num_timesteps, **result.summary(), "eligible": float(self.last_eligible)}
        if train is not None:
            entry["train_reward_per_step"] = train.reward_per_step
            entry["train_perf_per_step"] = train.perf_per_step
        self.history.append(entry)
        for key in ("reward", "reward_per_step", "perf_per_step", "nav", "n_trades", "action_std", "action_entropy_bits"):
            self.logger.record(f"eval/{key}", entry[key])
        self.logger.record("eval/best_reward", self.best_reward)
        if self.verbose:
            logger.info("eval at %d: reward %.3f (best %.3f at %d), nav %.4f, trades %.0f, action std %.3f",
                        self.num_timesteps, result.reward, self.best_reward, self.best_step,
                        result.nav, result.n_trades, result.action_std)
        keep_going = True
        for child in self.after_eval:
            keep_going = child.on_step() and keep_going
        return keep_going

    def eligible(self, result: RolloutStats, train: RolloutStats | None = None) -> bool:
        """Whether an evaluated policy is live (may be kept as the best): see :func:`is_live`."""
        return is_live(result, train, self.min_action_std, self.min_trades)

    @property
    def has_best(self) -> bool:
        """Whether an eligible model was kept."""
        return self.best_step >= 0

    def _on_step(self) -> bool:
        if self.num_timesteps < self._next_eval:
            return True
        self._next_eval = (self.num_timesteps // self.eval_freq + 1) * self.eval_freq
        return self.evaluate()

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history, "best_reward": self.best_reward, "best_step": self.best_step,
                "next_eval": self._next_eval}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history = list(state.get("history", []))
        self.best_reward = float(state.get("best_reward", -math.inf))
        self.best_step = int(state.get("best_step", -1))
        self._next_eval = int(state.get("next_eval", self.eval_freq))

    @property
    def n_evals(self) -> int:
        return len(self.history)


class EarlyStoppingCallback(StatefulCallback):
    """Child of :class:`EvalCallback`: stop after ``patience`` evaluations without an
    improvement of at least ``min_delta``, but never before ``min_evals`` evaluations, and
    never while no evaluated policy cleared the collapse floors (a collapsed evaluation is
    never an improvement: training goes on until a live policy is kept or steps run out).

    :param patience: evaluations without improvement tolerated.
    :param min_evals: evaluations before stopping is allowed.
    :param min_delta: smallest gain over the best eval reward that counts.
    """

    state_key = "early_stopping"

    def __init__(self, patience: int, min_evals: int, min_delta: float = 0.0, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.patience, self.min_evals, self.min_delta = int(patience), int(min_evals), float(min_delta)
        self.best = -math.inf
        self.since_best = 0
        self.n_evals = 0
        self.stopped = False
        self.stopped_at = -1

    def _on_step(self) -> bool:
        parent = self.parent
        if parent is None or parent.last_result is None:
            raise RuntimeError("EarlyStoppingCallback must be an after_eval child of EvalCallback")
        self.n_evals += 1
        reward = parent.last_result.reward
        if parent.last_eligible and reward > self.best + self.min_delta:
            self.best, self.since_best = reward, 0
        else:
            self.since_best += 1
        self.logger.record("eval/evals_since_best", self.since_best)
        if self.n_evals >= self.min_evals and self.since_best >= self.patience and parent.has_best:
            self.stopped, self.stopped_at = True, self.num_timesteps
            logger.info("early stopping at %d steps: %d evaluations without improvement (best %.4f)",
                        self.num_timesteps, self.since_best, self.best)
            return False
        return True

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "since_best": self.since_best, "n_evals": self.n_evals,
                "stopped": self.stopped, "stopped_at": self.stopped_at}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = float(state.get("best", -math.inf))
        self.since_best = int(state.get("since_best", 0))
        self.n_evals = int(state.get("n_evals", 0))
        self.stopped = bool(state.get("stopped", False))
        self.stopped_at = int(state.get("stopped_at", -1))


class OverfitMonitorCallback(StatefulCallback):
    """Child of :class:`EvalCallback`: the gap between the train-window and the eval-window
    performance reward per step of the same deterministic policy, logged after each
    evaluation; one warning (``logging`` and ``warnings``) when it first exceeds ``margin``.

    Uses the parent's train probe when it has one, else the mean of recent training episodes
    (``reward / length`` from the SB3 episode buffer).

    :param margin: gap (reward units per step) above which eval counts as falling behind
        (``None``: no absolute threshold).
    :param rel_gap: ... or share of the train reward per step the gap may reach (seed 004:
        0.2; ``None``: no relative threshold).
    """

    state_key = "overfit"

    def __init__(self, margin: float | None, rel_gap: float | None = None, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.margin = margin
        self.rel_gap = rel_gap
        self.gaps: list[tuple[int, float]] = []
        self.warned_at = -1

    def train_per_step(self) -> float:
        parent = self.parent
        if parent is not None and parent.last_train_result is not None:
            return parent.last_train_result.perf_per_step
        buf = [e for e in (self.model.ep_info_buffer or []) if e.get("l", 0) > 0]
        return float(np.mean([e["r"] / e["l"] for e in buf])) if buf else math.nan

    def _on_step(self) -> bool:
        parent = self.parent
        if parent is None or parent.last_result is None:
            raise RuntimeError("OverfitMonitorCallback must be an after_eval child of EvalCallback")
        uses_probe = parent.last_train_result is not None
        eval_value = parent.last_result.perf_per_step if uses_probe else parent.last_result.reward_per_step
        train = self.train_per_step()
        gap = train - eval_value
        if math.isnan(gap):
            return True
        self.gaps.append((self.num_timesteps, float(gap)))
        self.logger.record("eval/overfit_gap", gap)
        if self.exceeded(gap, train) and self.warned_at < 0:
            self.warned_at = self.num_timesteps
            message = (f"overfitting: at {self.num_timesteps} steps the eval window's reward per step "
                       f"is {gap:.4f} below the train window's {train:.4f} "
                       f"(margin {self.margin}, relative gap {self.rel_gap})")
            logger.warning(message)
            warnings.warn(message, RuntimeWarning, stacklevel=2)
        return True

    def exceeded(self, gap: float, train: float) -> bool:
        """Whether a train-eval ``gap`` crosses the absolute margin or the relative one.

        :param gap: train minus eval reward per step.
        :param train: the train reward per step (the relative gap needs it positive).
        """
        over_margin = self.margin is not None and gap > self.margin
        over_share = self.rel_gap is not None and train > 0 and gap > self.rel_gap * train
        return over_margin or over_share

    @property
    def warned(self) -> bool:
        return self.warned_at >= 0

    def state_dict(self) -> dict[str, Any]:
        return {"gaps": self.gaps, "warned_at": self.warned_at}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.gaps = [(int(s), float(g)) for s, g in state.get("gaps", [])]
        self.warned_at = int(state.get("warned_at", -1))


# ---------------------------------------------------------------------------- metrics


def policy_log_std(model: BaseAlgorithm) -> float:
    """Mean log std of the state-independent / gSDE exploration parameters (NaN if none)."""
    for owner in (getattr(model, "actor", None), model.policy):
        log_std = getattr(owner, "log_std", None)
        if isinstance(log_std, torch.Tensor):
            return float(log_std.detach().mean())
    return math.nan


class MetricsCallback(StatefulCallback):
    """Every ``log_freq`` env steps: NAV and reward components of the training envs, action
    mean / std / histogram entropy, ent_coef and log_std to the SB3 logger (TensorBoard; SB3
    itself logs the critic and actor losses), and one entry of :attr:`history`.

    Reward components come from the env's per-step tensors (``reward_perf``, ``reward_cost``,
    read with ``get_attr``) and are summed on the env's device, so logging adds no host copy
    per step; episode NAV and trades come from the infos of envs that ended.

    :param log_freq: vector-env steps between two records.
    """

    state_key = "metrics"

    def __init__(self, log_freq: int, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.log_freq = int(log_freq)
        self.history: list[dict[str, float]] = []
        self._reset_window()

    def _reset_window(self) -> None:
        self._actions: list[np.ndarray] = []
        self._reward_sums: torch.Tensor | None = None
        self._reward_steps = 0
        self._navs: list[float] = []
        self._trades: list[float] = []

    def _env_tensor(self, name: str) -> torch.Tensor | None:
        try:
            value = self.training_env.get_attr(name)[0]
        except AttributeError:
            return None
        return value if isinstance(value, torch.Tensor) else None

    def _on_step(self) -> bool:
        actions = self.locals.get("actions")
        if actions is not None:
            if isinstance(self.model.action_space, spaces.Discrete):  # DQN: record positions' actions
                config = self.training_env.get_attr("config", indices=[0])[0]
                actions = env_actions(actions, self.model.action_space, config)
            self._actions.append(np.asarray(actions, dtype=float).reshape(-1))
        perf, cost = self._env_tensor("reward_perf"), self._env_tensor("reward_cost")
        if perf is not None and cost is not None:
            step = torch.stack([perf.float().mean(), cost.float().mean()])
            self._reward_sums = step if self._reward_sums is None else self._reward_sums + step
            self._reward_steps += 1
        for info in self.locals.get("infos", ()):
            if "nav" in info and "episode" in info:
                self._navs.append(info["nav"])
                self._trades.append(info["n_trades"] / max(info["episode"]["l"], 1))
        if self.n_calls % self.log_freq == 0:
            self.record()
        return True

    def record(self) -> dict[str, float] | None:
        """Log and store the statistics gathered since the last record."""
        if not self._actions:
            return None
        acts = np.concatenate(self._actions)
        rewards = (self._reward_sums / self._reward_steps).tolist() if self._reward_sums is not None else [math.nan] * 2
        entry = {
            "step": float(self.num_timesteps),
            "action_mean": float(acts.mean()),
            "action_std": float(acts.std()),
            "action_entropy_bits": collapse_stats(np.clip(acts, -1.0, 1.0)).entropy_bits,
            "ent_coef": current_ent_coef(self.model),
            "log_std": policy_log_std(self.model),
            "reward_perf": float(rewards[0]),
            "reward_cost": float(rewards[1]),
            "episode_nav": float(np.mean(self._navs)) if self._navs else math.nan,
            "trades_per_step": float(np.mean(self._trades)) if self._trades else math.nan,
        }
        groups = {"ent_coef": "train", "log_std": "train", "reward_perf": "rollout", "reward_cost": "rollout",
                  "episode_nav": "rollout", "trades_per_step": "rollout"}
        for key, value in entry.items():
            if key != "step" and not math.isnan(value):
                self.logger.record(f"{groups.get(key, 'actions')}/{key}", value)
        self.history.append(entry)
        self._reset_window()
        return entry

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history = list(state.get("history", []))


# ---------------------------------------------------------------------------- checkpoints


class CheckpointCallback(BaseCallback):
    """Saves a resume checkpoint every ``save_freq`` env transitions, and as soon as a
    termination is requested (then stops training).

    :param save_fn: ``save_fn(model) -> Path`` writes one checkpoint (model, replay buffer,
        callback states) and rotates old ones (see :func:`~cryptorl_core.agent.checkpointing.save_checkpoint`).
    :param save_freq: env transitions between two checkpoints.
    :param stop_requested: returns True once training must stop (e.g. SIGTERM received).
    """

    def __init__(self, save_fn: Callable[[BaseAlgorithm], Path], save_freq: int,
                 stop_requested: Callable[[], bool] = lambda: False, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.save_fn = save_fn
        self.save_freq = int(save_freq)
        self.stop_requested = stop_requested
        self.saved: list[Path] = []
        self.terminated = False
        self._next_save = self.save_freq

    def _on_training_start(self) -> None:
        self._next_save = (self.num_timesteps // self.save_freq + 1) * self.save_freq

    def save(self) -> Path:
        path = self.save_fn(self.model)
        self.saved.append(path)
        return path

    def _on_step(self) -> bool:
        if self.stop_requested():
            path = self.save()
            self.terminated = True
            logger.warning("termination requested: saved checkpoint %s at %d steps, stopping",
                           path, self.num_timesteps)
            return False
        if self.num_timesteps >= self._next_save:
            self._next_save = (self.num_timesteps // self.save_freq + 1) * self.save_freq
            self.save()
        return True
