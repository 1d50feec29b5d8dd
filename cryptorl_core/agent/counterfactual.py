"""Counterfactual actions: replay each sampled transition with another action and position.

A trading agent is a price taker: its position never moves the market. So a stored transition
(bar ``t``, position held, cost weight) can be replayed with any action and any held position,
and the reward and next position follow exactly from the env's step formula
(:meth:`~cryptorl_core.env.batch_env.BatchCryptoEnv.counterfactual_step`). Huang (2018,
"Financial Trading as a Game", "action augmentation") updates on every action this way.

:class:`CounterfactualReplayBuffer` replaces, in a share of every sampled batch, the action by
one drawn uniformly from the action space and the held position by one drawn uniformly on the
position grid. The critic then sees the whole action range at every state it samples, not only
the actions near the current policy, and the actor learns every held position, not only the
ones its own trajectories visit. The rest of the batch is left as collected.

What a replay cannot know: the previous step's trade, which the smoothness penalty compares
against, is not in the observation, so a replayed transition takes none. The delayed timing
bonus cannot be replayed at all (the env refuses).
"""

from __future__ import annotations

from typing import Any

import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.buffers import DictReplayBuffer
from stable_baselines3.common.type_aliases import DictReplayBufferSamples
from stable_baselines3.common.vec_env import VecNormalize

from cryptorl_core.env.batch_env import BatchCryptoEnv


class CounterfactualReplayBuffer(DictReplayBuffer):
    """A ``DictReplayBuffer`` whose samples are partly replayed with random actions and positions.

    Until :meth:`attach` gives it the training env, it samples like its parent.

    :param buffer_size: capacity, as in SB3.
    :param observation_space: the env's ``Dict`` observation space.
    :param action_space: the env's ``Box`` action space.
    :param device: where samples are returned.
    :param n_envs: parallel envs writing into the buffer.
    :param optimize_memory_usage: must be False (SB3's ``DictReplayBuffer`` has no such mode).
    :param handle_timeout_termination: as in SB3.
    :param fraction: share of each sampled batch that is replayed, in ``[0, 1]``.
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: Any,
        action_space: Any,
        device: torch.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        fraction: float = 0.5,
    ) -> None:
        super().__init__(buffer_size, observation_space, action_space, device, n_envs=n_envs,
                         optimize_memory_usage=optimize_memory_usage,
                         handle_timeout_termination=handle_timeout_termination)
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"fraction must be in [0, 1], got {fraction}")
        self.fraction = float(fraction)
        self._env: BatchCryptoEnv | None = None
        self._generator: torch.Generator | None = None

    def attach(self, env: BatchCryptoEnv, seed: int) -> None:
        """Replay on ``env``'s market and reward from now on. The draws restart from ``seed``, so
        a resumed run replays different draws than an uninterrupted one would.

        :param env: the training env (its current curriculum coefficients price the replays).
        :param seed: seed of the draws of actions and positions.
        """
        space = env.action_space
        if space.shape != (1,) or float(space.low[0]) != -1.0 or float(space.high[0]) != 1.0:
            raise ValueError(f"counterfactual replays need the env's action space Box(-1, 1, (1,)), got {space}")
        self._env = env
        self._generator = torch.Generator(device=env.device)
        self._generator.manual_seed(int(seed))

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the env and generator (a saved buffer is attached again on load)."""
        state = self.__dict__.copy()
        state["_env"] = None
        state["_generator"] = None
        return state

    def sample(self, batch_size: int, env: VecNormalize | None = None) -> DictReplayBufferSamples:
        """A batch as SB3 samples it, its first ``round(fraction * batch_size)`` rows replayed."""
        data = super().sample(batch_size, env)
        n = int(round(self.fraction * batch_size))
        if self._env is None or n == 0:
            return data
        return replay_rows(data, n, self._env, self._generator)


def replay_rows(data: DictReplayBufferSamples, n: int, env: BatchCryptoEnv,
                generator: torch.Generator) -> DictReplayBufferSamples:
    """``data`` with its first ``n`` rows replayed with uniform actions and grid positions.

    SB3 stores a ``Box`` action squashed to ``[-1, 1]``, and the env's action space is
    ``[-1, 1]`` (checked by :meth:`CounterfactualReplayBuffer.attach`), so one draw serves as
    both. The sampled tensors are the batch's own copies, so they are written in place.

    :param data: a sampled batch (``market``, ``position``, ``w_cost`` observations).
    :param n: rows to replay.
    :param env: the env whose step formula prices the replays.
    :param generator: a generator on ``env.device``.
    :return: the same batch object.
    """
    obs, next_obs = data.observations, data.next_observations
    actions = torch.rand(n, 1, device=env.device, dtype=env.dtype, generator=generator).mul_(2.0).sub_(1.0)
    position = env.random_positions(n, generator)
    reward, next_position = env.counterfactual_step(obs["market"][:n], position, obs["w_cost"][:n], actions[:, 0])
    dest = data.rewards.device
    obs["position"][:n, 0] = position.to(dest, obs["position"].dtype)
    data.actions[:n] = actions.to(dest, data.actions.dtype)
    data.rewards[:n, 0] = reward.to(dest, data.rewards.dtype)
    next_obs["position"][:n, 0] = next_position.to(dest, next_obs["position"].dtype)
    return data


def attach_counterfactual(model: BaseAlgorithm, env: BatchCryptoEnv, seed: int) -> bool:
    """Attach ``env`` to ``model``'s replay buffer if it is a :class:`CounterfactualReplayBuffer`
    (again after a resumed buffer is loaded).

    :param model: an off-policy SB3 model (any other model is left alone).
    :param env: the training env.
    :param seed: seed of the replays' draws.
    :return: whether a buffer was attached.
    """
    buffer = getattr(model, "replay_buffer", None)
    if not isinstance(buffer, CounterfactualReplayBuffer):
        return False
    buffer.attach(env, seed)
    return True
