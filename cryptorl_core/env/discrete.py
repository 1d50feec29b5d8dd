"""Discrete actions over the env's position grid, for DQN (plan B, seed 004).

DQN picks one of the grid's positions by index: 21 positions ``-1.0, -0.9, ..., 1.0`` on the
default 0.1 grid (11, ``0.0 .. 1.0``, long-only). :func:`index_to_action` is the one mapping from
an index to the env's continuous action, ``position / action_gain``, so that the env's
:meth:`~cryptorl_core.env.BatchCryptoEnv.target_position` (which multiplies by ``action_gain``,
clips and rounds to the grid) yields exactly that position. Training steps the env through
:class:`DiscretePositionWrapper`; evaluation and backtests call :func:`env_actions` on the
model's prediction, which maps a ``Discrete`` policy's indices the same way.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn

from cryptorl_core.env.config import EnvConfig

#: Grid of the discrete actions when the env itself does not round (``position_step=0``).
DEFAULT_GRID_STEP = 0.1


def position_grid(config: EnvConfig) -> np.ndarray:
    """The positions a discrete policy chooses from: the multiples of the env's grid step in
    ``[-1, 1]`` (``[0, 1]`` long-only), computed as ``k * step`` like the env's rounding.

    :param config: the env's configuration (``position_step``, ``long_only``).
    :return: ``(n,)`` float64 positions, ascending.
    """
    step = config.position_step if config.position_step > 0 else DEFAULT_GRID_STEP
    top = math.floor(1.0 / step + 1e-9)
    bottom = 0 if config.long_only else -top
    return np.arange(bottom, top + 1, dtype=np.float64) * step


def index_to_action(index: Any, config: EnvConfig) -> np.ndarray:
    """The env actions of discrete indices: ``position_grid(config)[index] / action_gain``.

    :param index: indices (any shape), e.g. DQN's ``(n_envs,)`` actions.
    :param config: the env's configuration.
    :return: ``(n, 1)`` float32 actions.
    """
    flat = np.asarray(index).reshape(-1).astype(np.int64)
    return (position_grid(config)[flat] / config.action_gain).astype(np.float32).reshape(-1, 1)


def env_actions(actions: Any, action_space: spaces.Space | None, config: EnvConfig | None) -> Any:
    """A policy's prediction as env actions: indices of a ``Discrete`` policy mapped by
    :func:`index_to_action`; continuous actions unchanged.

    :param actions: what the policy's ``predict`` returned.
    :param action_space: the policy's action space (None: continuous).
    :param config: the env's configuration (needed for a discrete policy).
    :return: the actions to step the env with.
    """
    if not isinstance(action_space, spaces.Discrete):
        return actions
    if config is None:
        raise ValueError("a discrete policy's actions need the env configuration to map them")
    return index_to_action(actions, config)


class DiscretePositionWrapper(VecEnvWrapper):
    """A :class:`~cryptorl_core.env.BatchCryptoEnv` with a ``Discrete(n)`` action space over
    :func:`position_grid`; each index is stepped as :func:`index_to_action`.

    Attributes, ``get_attr`` / ``set_attr`` / ``env_method`` reach the wrapped env (curricula,
    reward tensors). Observations and rewards are the wrapped env's.

    :param venv: the batched env.
    """

    def __init__(self, venv: VecEnv) -> None:
        self.config: EnvConfig = venv.get_attr("config")[0]
        self.positions = position_grid(self.config)
        super().__init__(venv, action_space=spaces.Discrete(len(self.positions)))

    def step_async(self, actions: np.ndarray) -> None:
        """Step the wrapped env with the continuous actions of the indices ``actions``."""
        self.venv.step_async(index_to_action(actions, self.config))

    def step_wait(self) -> VecEnvStepReturn:
        return self.venv.step_wait()

    def reset(self) -> VecEnvObs:
        return self.venv.reset()
