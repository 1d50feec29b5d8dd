"""Batched, torch-resident trading environment with Stable-Baselines3's ``VecEnv`` interface.

Every per-env quantity (current row, position, NAV, counters, cost weight) lives in a torch
tensor on one device, and one ``step`` advances all ``n_envs`` environments with a fixed set
of vectorised tensor operations, no Python loop over environments.

Observation design
------------------
The observation is a ``gymnasium.spaces.Dict`` of three ``(1,)`` float32 boxes:

- ``market``: the row index ``t`` of the current bar in the segment frame (float32 is exact up
  to 2**24 rows). The agent's feature extractor holds the 64-step window of technical + HMM
  columns, or the frozen encoder's per-row embedding cache, in a device-resident tensor and
  gathers it at that index (:func:`gather_windows`, :func:`gather_rows`). Row ``t`` of a segment
  frame only uses information up to bar t's close, and :func:`gather_windows` only touches rows
  ``<= t``, so the observation cannot see the future.
- ``position``: the position currently held, in ``[-1, 1]``.
- ``w_cost``: the episode's cost weight of the MORL reward, in ``[0, 1]``.

So no 64x55 window is copied per env per step, and a replay buffer stores 3 floats per
observation: an SB3 ``DictReplayBuffer`` transition (obs + next_obs + action + reward + done +
timeout) is 40 bytes, 2.5M transitions are 100 MB, against about 70 GB for raw windows.
Do not normalise ``market`` (e.g. with ``VecNormalize``): it is an address, not a feature.

Execution and accounting (``execution_lag=1``, the default)
-----------------------------------------------------------
At row ``t`` the agent holds ``p`` and picks a target ``p'`` from bar t's close information.
``p'`` is executed at bar t+1's open. Over the step, with ``c = (fee_bps + slippage_bps) / 1e4``::

    growth = (1 + p * (open[t+1] / close[t] - 1))     # old position over the overnight gap
           * (1 - c * |p' - p|)                        # fee + slippage on traded notional
           * (1 + p' * (close[t+1] / open[t+1] - 1))  # new position over bar t+1
    NAV[t+1] = NAV[t] * growth

The traded notional is ``|p' - p| * NAV`` at the open of t+1. ``execution_lag=0`` instead pays
``p'`` bar t's own close-to-close return, ``growth = (1 - c |p' - p|) (1 + p' (close[t] /
close[t-1] - 1))``: a look-ahead cheat (the agent is paid for a move it has already seen) that
exists only so a test can show that a peeking policy profits without the lag. Never train with it.

Episodes start at a uniformly drawn start row of the split (``>= WINDOW - 1`` with a next bar in
the split; ``mode="random"``) or at the split's first start row (``mode="sequential"``, one env,
a backtest over the whole split). An episode is truncated after ``episode_length`` steps or when
its next step would need a bar outside the split, and terminated when NAV falls to
``bankrupt_nav``. Ends auto-reset the SB3 way (``terminal_observation``, ``TimeLimit.truncated``,
``episode = {"r", "l", "t"}`` in ``infos``).

Host copies
-----------
SB3 wants numpy, so each ``step`` copies one packed ``(k, n_envs)`` tensor to the host:
``k = 5`` floats per env (3 observation values, reward, end code), 7 with ``step_info`` (the two
reward components). When envs end, their end-of-episode state (10 floats each) and new start
(2 floats each) follow in a second, small copy, after they are reset on the device (work
proportional to the number that ended). Actions come in as ``n_envs`` floats. On CUDA each
copy is one synchronisation, so the step cost is launch latency, not bytes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
import torch
from gymnasium import spaces
from stable_baselines3.common.vec_env.base_vec_env import (
    VecEnv,
    VecEnvIndices,
    VecEnvObs,
    VecEnvStepReturn,
)

from cryptorl_core.env.config import (
    MIN_GROWTH,
    EnvConfig,
    check_w_cost_distribution,
    resolve_device,
)
from cryptorl_core.env.market import SegmentMarket
from cryptorl_core.schema import WINDOW

#: ``end code`` values of the packed step output.
_RUNNING, _TERMINATED, _TRUNCATED = 0, 1, 2

#: Observation keys in pack order.
OBS_KEYS = ("market", "position", "w_cost")

MODES = ("random", "sequential")

#: Rows of the per-env state matrix. The last five accumulate over an episode.
STATE_FIELDS = (
    "position",  # position held now, in [-1, 1]
    "prev_dpos",  # position change of the previous step (smoothness penalty)
    "nav",  # net asset value, 1 at the episode start
    "w_cost",  # the episode's cost weight
    "episode_reward",  # sum of rewards
    "fees_paid",  # fee + slippage, in units of the starting NAV
    "turnover",  # sum of |dpos|
    "n_trades",  # steps with a position change
    "steps",  # steps taken
)
_POSITION, _PREV_DPOS, _NAV, _W_COST, _EPISODE_REWARD = range(5)
_STEPS = len(STATE_FIELDS) - 1
_ACCUMULATORS = slice(_EPISODE_REWARD, len(STATE_FIELDS))


class _StateField:
    """Per-env ``(n_envs,)`` view of one row of the env's state matrix (assignable)."""

    def __init__(self, name: str) -> None:
        self.index = STATE_FIELDS.index(name)

    def __get__(self, env: BatchCryptoEnv | None, owner: type | None = None) -> Any:
        return self if env is None else env._state[self.index]

    def __set__(self, env: BatchCryptoEnv, value: Any) -> None:
        env._state[self.index] = value


def row_index(market: torch.Tensor) -> torch.Tensor:
    """Turn the ``market`` observation (float row indices, any shape) into a flat int64 index.

    :param market: observation values, e.g. ``(batch, 1)`` float32.
    :return: ``(batch,)`` int64 row indices.
    """
    flat = market.reshape(-1)
    return flat.round().long() if flat.is_floating_point() else flat.long()


def gather_rows(tensor: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Rows ``tensor[t]`` for each index, e.g. cached encoder embeddings or HMM context.

    :param tensor: ``(n_rows, ...)`` per-row tensor (row t only uses data up to bar t).
    :param index: row indices (float observations or integers), flattened to ``(batch,)``.
    :return: ``(batch, ...)``.
    """
    return tensor.index_select(0, row_index(index).to(tensor.device))


def gather_windows(tensor: torch.Tensor, index: torch.Tensor, window: int = WINDOW) -> torch.Tensor:
    """Trailing windows ``tensor[t - window + 1 : t + 1]`` for each index, in one indexing op.

    Only rows ``<= t`` are read. For ``t < window - 1`` (never a start row of the env) the
    missing oldest rows repeat row 0 rather than reach forward.

    :param tensor: ``(n_rows, n_cols)`` (or ``(n_rows, ...)``) device-resident per-row tensor.
    :param index: row indices ``t`` (float observations or integers), flattened to ``(batch,)``.
    :param window: window length.
    :return: ``(batch, window, n_cols)``, oldest row first, row ``t`` last.
    """
    idx = row_index(index).to(tensor.device)
    offsets = torch.arange(1 - window, 1, device=tensor.device)
    rows = (idx[:, None] + offsets[None, :]).clamp_min(0)
    return tensor[rows]


class BatchCryptoEnv(VecEnv):
    """``n_envs`` single-asset trading environments stepped together on one torch device.

    See the module docstring for the observation, execution and reward definitions.

    Per-env ``(n_envs,)`` tensors on ``device`` (views of the current state, clone to keep):
    ``row``, ``position``, ``nav``, ``w_cost``, ``n_trades``, ``fees_paid``, ``turnover``,
    ``steps``, ``episode_reward``, and the last step's ``reward``, ``reward_perf``,
    ``reward_cost``, ``reward_churn``, ``reward_smooth``. Settable while training (also through
    ``set_attr``): ``curriculum_lambda``, ``churn_coef``, ``smooth_coef``, and the ``w_cost``
    distribution through :meth:`set_w_cost_distribution` (or ``env_method``).

    :param market: prices and split rows of the segment.
    :param config: mechanics and reward configuration (``EnvConfig()`` if None).
    :param n_envs: number of envs (default ``config.n_envs``, or 1 in sequential mode).
    :param mode: ``"random"`` (training: random start rows, ``episode_length`` steps) or
        ``"sequential"`` (backtest: one env over the whole split from its first start row).
    :param device: torch device or ``"auto"``.
    :param dtype: float dtype of the state (float64 for exact comparisons with the reference).
    :param seed: seed of the env's torch generator (start rows, ``w_cost``); random if None.
    """

    position = _StateField("position")
    prev_dpos = _StateField("prev_dpos")
    nav = _StateField("nav")
    w_cost = _StateField("w_cost")
    episode_reward = _StateField("episode_reward")
    fees_paid = _StateField("fees_paid")
    turnover = _StateField("turnover")
    n_trades = _StateField("n_trades")
    steps = _StateField("steps")

    def __init__(
        self,
        market: SegmentMarket,
        config: EnvConfig | None = None,
        n_envs: int | None = None,
        mode: str = "random",
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        seed: int | None = None,
    ) -> None:
        self.config = config if config is not None else EnvConfig()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if n_envs is None:
            n_envs = 1 if mode == "sequential" else self.config.n_envs
        n = int(n_envs)
        if mode == "sequential" and n != 1:
            raise ValueError("mode='sequential' runs one env over the whole split: use n_envs=1")
        self.market = market
        self.mode = mode
        self.device = resolve_device(device)
        self.dtype = dtype
        self.render_mode: str | None = None
        # Settable while training (plain attributes, also reachable through set_attr).
        self.curriculum_lambda = float(self.config.curriculum_lambda)
        self.churn_coef = float(self.config.churn_coef)
        self.smooth_coef = float(self.config.smooth_coef)
        self.set_w_cost_distribution(
            self.config.w_cost_low,
            self.config.w_cost_high,
            self.config.w_cost_p_zero,
            self.config.w_cost_alpha,
            self.config.w_cost_beta,
        )
        self._low_position = 0.0 if self.config.long_only else -1.0
        self._max_steps = self.config.episode_length if mode == "random" else market.n_rows

        gap, intrabar, close_to_close = market.bar_returns()
        self._gap = torch.as_tensor(gap, device=self.device, dtype=dtype)
        self._intrabar = torch.as_tensor(intrabar, device=self.device, dtype=dtype)
        self._close_to_close = torch.as_tensor(close_to_close, device=self.device, dtype=dtype)
        self._start_rows = torch.as_tensor(market.start_rows, device=self.device)
        self._run_end = torch.as_tensor(market.run_end, device=self.device)

        self.initial_seed = (
            int(seed) if seed is not None else int(np.random.SeedSequence().entropy % 2**63)
        )
        self._generator = torch.Generator(device=self.device)
        self._generator.manual_seed(self.initial_seed)
        self._alloc_state(n)

        observation_space = spaces.Dict(
            {
                "market": spaces.Box(0.0, float(market.n_rows - 1), shape=(1,), dtype=np.float32),
                "position": spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32),
                "w_cost": spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32),
            }
        )
        action_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        super().__init__(n, observation_space, action_space)
        self._actions: torch.Tensor | None = None
        self._t_start = time.time()

    # ------------------------------------------------------------------ constructors

    @classmethod
    def from_arrays(
        cls,
        open_: np.ndarray,
        close: np.ndarray,
        valid_rows: np.ndarray,
        config: EnvConfig | None = None,
        **kwargs: Any,
    ) -> BatchCryptoEnv:
        """Build from raw price arrays and the row indices of the split.

        :param open_: ``(n_rows,)`` open prices.
        :param close: ``(n_rows,)`` close prices.
        :param valid_rows: row indices episodes may visit.
        :param config: environment configuration.
        :param kwargs: forwarded to the constructor (``n_envs``, ``mode``, ``device``, ``dtype``, ``seed``).
        """
        return cls(SegmentMarket.from_arrays(open_, close, valid_rows), config, **kwargs)

    @classmethod
    def from_segment_frame(
        cls,
        frame: pd.DataFrame,
        split: str = "train",
        config: EnvConfig | None = None,
        device: torch.device | str = "cpu",
        **kwargs: Any,
    ) -> BatchCryptoEnv:
        """Build from a segment frame (see :mod:`cryptorl_core.schema`).

        :param frame: the segment frame (``split``, ``price_open``, ``price_close`` columns).
        :param split: ``"train"`` for training, ``"eval"`` or ``"test"`` for evaluation.
        :param config: environment configuration.
        :param device: torch device or ``"auto"``.
        :param kwargs: forwarded to the constructor (``n_envs``, ``mode``, ``dtype``, ``seed``).
        """
        return cls(SegmentMarket.from_frame(frame, split), config, device=device, **kwargs)

    # ------------------------------------------------------------------ state

    def _alloc_state(self, n: int) -> None:
        def zeros(dtype: torch.dtype = self.dtype) -> torch.Tensor:
            return torch.zeros(n, device=self.device, dtype=dtype)

        self.row = zeros(torch.long)  # current bar t of each env
        self.last_row = zeros(torch.long)  # last split row reachable from the episode's start
        # One (n_fields, n_envs) matrix, so an auto-reset is a single torch.where.
        self._fresh = torch.zeros(len(STATE_FIELDS), n, device=self.device, dtype=self.dtype)
        self._fresh[_NAV] = 1.0
        self._state = self._fresh.clone()
        self._ones = torch.ones(n, device=self.device, dtype=self.dtype)
        self.reward = zeros()
        self.reward_perf = zeros()
        self.reward_cost = zeros()
        self.reward_churn = zeros()
        self.reward_smooth = zeros()

    def _sample_start_rows(self, n: int) -> torch.Tensor:
        if self.mode == "sequential":
            return self._start_rows[:1].expand(n)
        pick = torch.randint(
            len(self._start_rows), (n,), generator=self._generator, device=self.device
        )
        return self._start_rows.index_select(0, pick)

    def _sample_w_cost(self, n: int) -> torch.Tensor:
        if self.w_cost_alpha == 1.0 and self.w_cost_beta == 1.0:
            unit = torch.rand(n, generator=self._generator, device=self.device, dtype=self.dtype)
        else:
            # Beta(a, b) = Ga / (Ga + Gb); _standard_gamma takes the env's generator, so it is seeded.
            shape_a = torch.full((n,), self.w_cost_alpha, device=self.device, dtype=self.dtype)
            shape_b = torch.full((n,), self.w_cost_beta, device=self.device, dtype=self.dtype)
            g_a = torch._standard_gamma(shape_a, generator=self._generator)
            g_b = torch._standard_gamma(shape_b, generator=self._generator)
            unit = g_a / (g_a + g_b)
        w = self.w_cost_low + (self.w_cost_high - self.w_cost_low) * unit
        zero = (
            torch.rand(n, generator=self._generator, device=self.device, dtype=self.dtype)
            < self.w_cost_p_zero
        )
        return w.masked_fill(zero, 0.0)

    def _reset_envs(self, index: torch.Tensor) -> None:
        """Start new episodes in the envs listed in ``index`` (work proportional to their number)."""
        k = index.shape[0]
        start = self._sample_start_rows(k)
        self.row.index_copy_(0, index, start)
        self.last_row.index_copy_(0, index, self._run_end.index_select(0, start))
        fresh = self._fresh[:, :k].clone()
        fresh[_W_COST] = self._sample_w_cost(k)
        self._state.index_copy_(1, index, fresh)

    def set_w_cost_distribution(
        self,
        low: float = 0.0,
        high: float = 1.0,
        p_zero: float = 0.0,
        alpha: float = 1.0,
        beta: float = 1.0,
    ) -> None:
        """Distribution of ``w_cost`` for the episodes that start from now on (envs running keep theirs).

        ``w_cost = 0`` with probability ``p_zero``, else ``low + (high - low) * Beta(alpha, beta)``.

        :param low: lower end, in [0, 1].
        :param high: upper end, in [low, 1] (``low == high`` fixes the value).
        :param p_zero: probability of exactly 0.
        :param alpha: first Beta shape (1, 1 = uniform).
        :param beta: second Beta shape.
        """
        check_w_cost_distribution(low, high, p_zero, alpha, beta)
        self.w_cost_low, self.w_cost_high, self.w_cost_p_zero = (
            float(low),
            float(high),
            float(p_zero),
        )
        self.w_cost_alpha, self.w_cost_beta = float(alpha), float(beta)

    # ------------------------------------------------------------------ VecEnv API

    def reset(self) -> VecEnvObs:
        """Start a new episode in every env; a seed set by :meth:`seed` is applied here once."""
        if self._seeds[0] is not None:
            self._generator.manual_seed(int(self._seeds[0]))
        self._reset_seeds()
        self._reset_options()
        self._reset_envs(torch.arange(self.num_envs, device=self.device))
        self.reward.zero_()
        state = self._state
        host = (
            torch.stack([self.row.to(self.dtype), state[_POSITION], state[_W_COST]]).cpu().numpy()
        )
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return self._obs_from_host(host)

    def step_async(self, actions: np.ndarray) -> None:
        """Store the actions (``(n_envs, 1)`` or ``(n_envs,)``, target positions in [-1, 1])."""
        act = torch.as_tensor(np.asarray(actions), device=self.device, dtype=self.dtype).reshape(-1)
        if act.shape[0] != self.num_envs:
            raise ValueError(f"expected {self.num_envs} actions, got {act.shape[0]}")
        self._actions = act

    def target_position(self, actions: torch.Tensor) -> torch.Tensor:
        """Map raw actions to executable target positions: clip, round to ``position_step``, clip.

        :param actions: ``(n_envs,)`` raw actions.
        :return: ``(n_envs,)`` target positions in ``[-1, 1]`` (``[0, 1]`` if long-only).
        """
        target = actions.clamp(self._low_position, 1.0)
        step = self.config.position_step
        if step > 0:
            target = (torch.round(target / step) * step).clamp(self._low_position, 1.0)
        return target

    def step_wait(self) -> VecEnvStepReturn:
        """Advance every env one bar, auto-reset the ones that ended, return numpy arrays for SB3."""
        if self._actions is None:
            raise RuntimeError("step_wait() called without step_async()")
        cfg = self.config
        state = self._state
        position, nav = state[_POSITION], state[_NAV]
        target = self.target_position(self._actions)
        self._actions = None
        dpos = target - position
        traded = dpos.abs()
        cost_frac = traded * cfg.cost_rate
        t = self.row
        if cfg.execution_lag == 1:
            # old position over the gap
            carry = torch.addcmul(self._ones, position, self._gap.index_select(0, t))
            growth = (
                carry
                * (1.0 - cost_frac)
                * torch.addcmul(self._ones, target, self._intrabar.index_select(0, t))
            )
            traded_nav = nav * carry
        else:  # look-ahead cheat, see module docstring
            growth = (1.0 - cost_frac) * torch.addcmul(
                self._ones, target, self._close_to_close.index_select(0, t)
            )
            traded_nav = nav
        growth = growth.clamp_min(MIN_GROWTH)

        self.reward_perf = cfg.reward_scale * torch.log(growth)
        self.reward_churn = -self.churn_coef * traded
        self.reward_smooth = -self.smooth_coef * (dpos - state[_PREV_DPOS]).square()
        self.reward_cost = self.reward_churn + self.reward_smooth
        cost_weight = self.curriculum_lambda * cfg.max_penalty_scale
        self.reward = torch.addcmul(
            self.reward_perf, state[_W_COST], self.reward_cost, value=cost_weight
        )

        state[_ACCUMULATORS] += torch.stack(
            [self.reward, traded_nav * cost_frac, traded, (traded > 0).to(self.dtype), self._ones]
        )
        nav.mul_(growth)
        position.copy_(target)
        state[_PREV_DPOS] = dpos
        self.row.add_(1)

        terminated = nav <= cfg.bankrupt_nav
        hit_end = (state[_STEPS] >= self._max_steps) | (self.row >= self.last_row)
        end_code = torch.where(terminated, float(_TERMINATED), hit_end.to(self.dtype) * _TRUNCATED)

        packed = [self.row.to(self.dtype), position, state[_W_COST], self.reward, end_code]
        if cfg.step_info:
            packed += [self.reward_perf, self.reward_cost]
        # the one synchronisation of a step without episode ends
        host = torch.stack(packed).cpu().numpy()
        obs = self._obs_from_host(host)
        rewards = host[3].astype(np.float32)
        codes = host[4].astype(np.int64)
        dones = codes != _RUNNING
        infos = self._step_infos(host)
        ended = np.flatnonzero(dones)
        if len(ended):
            self._end_episodes(ended, codes, obs, infos)
        return obs, rewards, dones, infos

    def _end_episodes(
        self,
        ended: np.ndarray,
        codes: np.ndarray,
        obs: dict[str, np.ndarray],
        infos: list[dict[str, Any]],
    ) -> None:
        """Record the final state of the envs that ended, reset them, patch their observations."""
        index = torch.as_tensor(ended, device=self.device)
        final = torch.cat(
            [
                self.row.index_select(0, index).to(self.dtype)[None],
                self._state.index_select(1, index),
            ]
        )
        self._reset_envs(index)
        fresh = torch.stack(
            [
                self.row.index_select(0, index).to(self.dtype),
                self._state[_W_COST].index_select(0, index),
            ]
        )
        values = torch.cat([final, fresh]).cpu().numpy()
        elapsed = round(time.time() - self._t_start, 6)
        for j, i in enumerate(ended.tolist()):
            row, *fields, new_row, new_w_cost = values[:, j].tolist()
            final_i = dict(zip(STATE_FIELDS, fields, strict=True))
            info = infos[i]
            info["terminal_observation"] = {key: obs[key][i].copy() for key in OBS_KEYS}
            info["TimeLimit.truncated"] = bool(codes[i] == _TRUNCATED)
            info["episode"] = {
                "r": final_i["episode_reward"],
                "l": int(final_i["steps"]),
                "t": elapsed,
            }
            info["nav"] = final_i["nav"]
            info["episode_return"] = final_i["nav"] - 1.0
            info["n_trades"] = int(final_i["n_trades"])
            info["fees_paid"] = final_i["fees_paid"]
            info["turnover"] = final_i["turnover"]
            obs["market"][i, 0], obs["position"][i, 0], obs["w_cost"][i, 0] = (
                new_row,
                0.0,
                new_w_cost,
            )

    def _obs_from_host(self, host: np.ndarray) -> dict[str, np.ndarray]:
        values = host[: len(OBS_KEYS)].astype(np.float32)
        return {key: values[i].reshape(-1, 1) for i, key in enumerate(OBS_KEYS)}

    def _step_infos(self, host: np.ndarray) -> list[dict[str, Any]]:
        if not self.config.step_info:
            return [{} for _ in range(self.num_envs)]
        return [
            {"reward_perf": p, "reward_cost": c}
            for p, c in zip(host[5].tolist(), host[6].tolist(), strict=True)
        ]

    def close(self) -> None:
        """Nothing to release beyond the tensors, which Python frees."""

    def _indices(self, indices: VecEnvIndices) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        if isinstance(indices, int):
            return [indices]
        return list(indices)

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """The attribute of this (single, batched) env, repeated once per requested index."""
        value = getattr(self, attr_name)
        return [value for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set an attribute. A subset of indices is allowed only for per-env ``(n_envs,)`` tensors.

        E.g. ``set_attr("curriculum_lambda", 0.5)`` or ``set_attr("w_cost", 0.0, indices=[3])``.
        """
        targets = self._indices(indices)
        current = getattr(self, attr_name, None)
        if isinstance(current, torch.Tensor) and current.shape[:1] == (self.num_envs,):
            current[torch.as_tensor(targets, device=self.device)] = torch.as_tensor(
                value, device=self.device, dtype=current.dtype
            )
        elif sorted(targets) == list(range(self.num_envs)):
            setattr(self, attr_name, value)
        else:
            raise ValueError(f"{attr_name!r} is shared by all envs: set it for all indices")

    def env_method(
        self,
        method_name: str,
        *method_args: Any,
        indices: VecEnvIndices = None,
        **method_kwargs: Any,
    ) -> list[Any]:
        """Call a method once on the batched env; its result is repeated once per requested index."""
        result = getattr(self, method_name)(*method_args, **method_kwargs)
        return [result for _ in self._indices(indices)]

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None
    ) -> list[bool]:
        """No gym wrappers: episode statistics come from the env itself."""
        return [False for _ in self._indices(indices)]

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        """Seed applied at the next :meth:`reset` (SB3 semantics); one generator serves all envs."""
        return super().seed(seed)

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None for _ in range(self.num_envs)]
