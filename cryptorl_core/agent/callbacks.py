"""Training callbacks, one job each (Stable-Baselines3 ``BaseCallback`` subclasses).

- :class:`EntropyFloorCallback`: keeps the entropy coefficient at or above a floor;
- :class:`MetricsCallback`: NAV, reward components, action statistics, ent_coef, log_std to
  the SB3 logger (TensorBoard), and a history for the training curves;
- :class:`ResumeCheckpointCallback`: rotating resume checkpoints, and the save on SIGTERM or SIGINT.

The cost curricula live in :mod:`cryptorl_core.agent.curriculum`, evaluation (with early
stopping and the overfitting monitor) in :mod:`cryptorl_core.agent.evaluation`.

Callbacks whose state must survive a resume subclass :class:`StatefulCallback` and implement
``state_dict()`` / ``load_state_dict()`` (plain JSON values); :mod:`cryptorl_core.agent.resume`
stores them with the model.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback

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


class ResumeCheckpointCallback(BaseCallback):
    """Saves a resume checkpoint every ``save_freq`` env transitions, and as soon as a
    termination is requested (then stops training). Unlike SB3's ``CheckpointCallback``,
    a checkpoint holds everything a resume needs (model, replay buffer, callback states).

    :param save_fn: ``save_fn(model) -> Path`` writes one checkpoint (model, replay buffer,
        callback states) and rotates old ones (see :func:`~cryptorl_core.agent.resume.save_checkpoint`).
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
