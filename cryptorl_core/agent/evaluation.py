"""Evaluation during training (the role of SB3's ``evaluate_policy`` and ``EvalCallback``).

- :class:`RolloutStats`, :func:`rollout_policy`: a deterministic run until every env ended one
  episode;
- :func:`is_live`: the project's collapse rule (:class:`~cryptorl_core.policy_stats.CollapseRule`,
  the backtest's too) on the eval window or the train probe;
- :class:`SegmentEvalCallback`: periodic deterministic evaluation on the eval split, keeps the
  best eligible model, with after-evaluation children :class:`EarlyStoppingCallback` and
  :class:`OverfitMonitorCallback`.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv

from cryptorl_core.agent.callbacks import StatefulCallback
from cryptorl_core.env.discrete import env_actions
from cryptorl_core.env.sizing import agent_targets
from cryptorl_core.policy_stats import CollapseRule, CollapseStats, collapse_stats

logger = logging.getLogger(__name__)


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
    :param modal_share: share of env 0's steps spent in its most frequent executed position.
    :param actions: env 0's raw actions, in time order.
    :param positions: env 0's executed positions, in time order.
    :param navs: env 0's NAV after each step.
    :param decisions: env 0's own targets before a sizing overlay
        (:func:`~cryptorl_core.env.sizing.agent_targets`), in time order; without an overlay,
        the executed positions.
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
    modal_share: float
    actions: list[float] = field(default_factory=list, repr=False)
    positions: list[float] = field(default_factory=list, repr=False)
    navs: list[float] = field(default_factory=list, repr=False)
    decisions: list[float] = field(default_factory=list, repr=False)

    def summary(self) -> dict[str, float]:
        """The scalars (no traces)."""
        d = asdict(self)
        for key in ("actions", "positions", "navs", "decisions"):
            d.pop(key)
        return d

    @property
    def position_stats(self) -> CollapseStats:
        """Histogram, modal share and trades of env 0's executed positions."""
        return collapse_stats(self.positions)

    @property
    def decision_stats(self) -> CollapseStats:
        """The same of env 0's own decisions (what the collapse rule reads): an overlay's
        trades are not the policy's."""
        return collapse_stats(self.decisions or self.positions)


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
    config = getattr(env, "config", None)
    overlay = config is not None and config.sizes_by_overlay
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
        modal_share=collapse_stats(positions0).modal_share,
        actions=acts.tolist(),
        positions=positions0,
        navs=navs0,
        decisions=agent_targets(acts, config).tolist() if overlay else list(positions0),
    )


def collapse_reasons(stats: RolloutStats, rule: CollapseRule) -> list[str]:
    """The rule's failed criteria on a deterministic run's own decisions (empty: live)."""
    return rule.verdict(stats.decision_stats)[1]


def is_live(eval_stats: RolloutStats, train_stats: RolloutStats | None, rule: CollapseRule) -> bool:
    """A policy is live (not collapsed) when its own decisions (:attr:`RolloutStats.decision_stats`)
    pass the collapse rule on the eval window or on the train probe's episodes of the same length.

    The rule is the backtest's (:class:`~cryptorl_core.policy_stats.CollapseRule`), so a policy
    kept here would not be called collapsed on a window like these. Why either window: a policy
    that reads the regime holds still through a one-regime eval month (a whole month of range,
    where flat is right), yet moves across the train year's regimes; a collapsed policy, one
    that ignores its inputs, is constant on both.
    """
    return not collapse_reasons(eval_stats, rule) or (
        train_stats is not None and not collapse_reasons(train_stats, rule))


def selection_tier(eval_stats: RolloutStats, rule: CollapseRule | None, prefer_live_on_eval: bool) -> int:
    """The first key of checkpoint and seed selection, before the eval reward: 1 for a policy
    live on the eval window itself when ``prefer_live_on_eval`` (0 for one live on the train
    probe only), else 0 for every policy, so the eval reward alone decides.

    Why a tier: in a one-regime eval month a policy holding one position scores as well as one
    that reads the regime, and only the train probe tells them apart.
    """
    return int(prefer_live_on_eval and rule is not None and not collapse_reasons(eval_stats, rule))


class SegmentEvalCallback(StatefulCallback):
    """Every ``eval_freq`` env transitions: run the deterministic policy over the eval split,
    keep the best model, and run the after-evaluation children (early stopping, overfitting
    monitor), which may stop training. Unlike SB3's ``EvalCallback``, only a live policy
    (:func:`is_live`) is ever kept as the best, and its state survives a resume.

    :param eval_env: env over the eval split (``mode="sequential"``, or a few random envs).
    :param eval_freq: env transitions (all envs together) between two evaluations.
    :param best_model_path: where the best model is saved (``.zip``); None: not saved.
    :param train_probe_env: optional env over the train split evaluated the same way (the
        overfitting monitor compares it with the eval split).
    :param reward_scale: the env's ``reward_scale``.
    :param probe_seed: seed of the train probe's episodes (the same ones at every evaluation).
    :param after_eval: children called after each evaluation (their ``parent`` is this callback).
    :param collapse_rule: an evaluated policy that fails this rule on the eval window and on
        the train probe alike (:func:`is_live`) is collapsed: never kept as the best model,
        however high its eval reward (a flat policy's 0.0 beats a slightly negative one).
        ``None``: every evaluation is eligible.
    :param prefer_live_on_eval: rank policies live on the eval window itself above those live
        on the train probe only, then by eval reward (:func:`selection_tier`).
    :param select_from_step: evaluations before this many env transitions are recorded but
        never kept as the best model (``AgentConfig.select_after_discipline``).
    """

    state_key = "eval"

    def __init__(self, eval_env: VecEnv, eval_freq: int, best_model_path: str | Path | None = None,
                 train_probe_env: VecEnv | None = None, reward_scale: float = 1.0,
                 probe_seed: int | None = 0, after_eval: Sequence[BaseCallback] = (),
                 collapse_rule: CollapseRule | None = None, prefer_live_on_eval: bool = False,
                 select_from_step: int = 0, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.collapse_rule = collapse_rule
        self.select_from_step = int(select_from_step)
        self.prefer_live_on_eval = prefer_live_on_eval
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
        self.best_tier = 0
        self.best_step = -1
        self.last_tier = 0
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
        self.last_eligible = self.num_timesteps >= self.select_from_step and self.eligible(result, train)
        self.last_tier = selection_tier(result, self.collapse_rule, self.prefer_live_on_eval)
        self.last_improved = self.last_eligible and (self.last_tier, result.reward) > (self.best_tier, self.best_reward)
        if self.last_improved:
            self.best_tier, self.best_reward, self.best_step = self.last_tier, result.reward, self.num_timesteps
            if self.best_model_path is not None:
                self.best_model_path.parent.mkdir(parents=True, exist_ok=True)
                self.model.save(self.best_model_path)
        entry = {"step": self.num_timesteps, **result.summary(), "eligible": float(self.last_eligible)}
        if train is not None:
            entry["train_modal_share"] = train.modal_share
            entry["train_reward_per_step"] = train.reward_per_step
            entry["train_perf_per_step"] = train.perf_per_step
        self.history.append(entry)
        for key in ("reward", "reward_per_step", "perf_per_step", "nav", "n_trades", "action_std", "action_entropy_bits", "modal_share"):
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
        return self.collapse_rule is None or is_live(result, train, self.collapse_rule)

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
        return {"history": self.history, "best_reward": self.best_reward, "best_tier": self.best_tier,
                "best_step": self.best_step, "next_eval": self._next_eval}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history = list(state.get("history", []))
        self.best_reward = float(state.get("best_reward", -math.inf))
        self.best_tier = int(state.get("best_tier", 0))
        self.best_step = int(state.get("best_step", -1))
        self._next_eval = int(state.get("next_eval", self.eval_freq))

    @property
    def n_evals(self) -> int:
        return len(self.history)


class EarlyStoppingCallback(StatefulCallback):
    """Child of :class:`SegmentEvalCallback`: stop after ``patience`` evaluations without an
    improvement of at least ``min_delta``, but never before ``min_evals`` evaluations, and
    never while no evaluated policy passed the collapse rule (a collapsed evaluation is
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
        self.best_tier = 0
        self.since_best = 0
        self.n_evals = 0
        self.stopped = False
        self.stopped_at = -1

    def _on_step(self) -> bool:
        parent = self.parent
        if parent is None or parent.last_result is None:
            raise RuntimeError("EarlyStoppingCallback must be an after_eval child of SegmentEvalCallback")
        self.n_evals += 1
        reward, tier = parent.last_result.reward, parent.last_tier
        # The evaluator's (tier, reward) order, with min_delta on the reward.
        if parent.last_eligible and (tier, reward) > (self.best_tier, self.best + self.min_delta):
            self.best, self.best_tier, self.since_best = reward, tier, 0
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
        return {"best": self.best, "best_tier": self.best_tier, "since_best": self.since_best,
                "n_evals": self.n_evals, "stopped": self.stopped, "stopped_at": self.stopped_at}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = float(state.get("best", -math.inf))
        self.best_tier = int(state.get("best_tier", 0))
        self.since_best = int(state.get("since_best", 0))
        self.n_evals = int(state.get("n_evals", 0))
        self.stopped = bool(state.get("stopped", False))
        self.stopped_at = int(state.get("stopped_at", -1))


class OverfitMonitorCallback(StatefulCallback):
    """Child of :class:`SegmentEvalCallback`: the gap between the train-window and the eval-window
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
            raise RuntimeError("OverfitMonitorCallback must be an after_eval child of SegmentEvalCallback")
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
                       f"{eval_value:.4f} is {gap:.4f} below the train window's {train:.4f} "
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
