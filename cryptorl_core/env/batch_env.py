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

Plan B options (seed 004, :class:`~cryptorl_core.env.config.EnvConfig`): ``timing_bonus_scale``
adds the delayed timing bonus to the reward (a BUY's outcome at bar t+N is paid on the step
that consumes bar t+N, from a per-env ring buffer of N steps; observations never change), and
``sizing="vol_target"`` multiplies the sign of the agent's grid target by a per-row size column
(:func:`~cryptorl_core.env.sizing.vol_target_size`, causal, gathered at each env's row);
``sizing="vol_scaled"`` multiplies the grid target itself by that column.

Episodes start at a uniformly drawn start row of the split (``>= WINDOW - 1`` with a next bar in
the split; ``mode="random"``) or at the split's first start row (``mode="sequential"``, one env,
a backtest over the whole split). An episode is truncated after ``episode_length`` steps or when
its next step would need a bar outside the split, and terminated when NAV falls to
``bankrupt_nav``. Ends auto-reset the SB3 way (``terminal_observation``, ``TimeLimit.truncated``,
``episode = {"r", "l", "t"}`` in ``infos``).

Host copies and per-step cost
-----------------------------
SB3 wants numpy, so each ``step`` copies one packed ``(k, n_envs)`` tensor to the host:
``k = 5`` floats per env (3 observation values, reward, end code), 7 with ``step_info`` (the two
reward components). When envs end, their end-of-episode state and new start follow in a second,
small copy, after they are reset on the device (work proportional to the number that ended).
Actions come in as ``n_envs`` floats. On CUDA each copy is one synchronisation, so the step cost
is launch latency, not bytes.

On CPU a step over ~1000 envs is bound by per-op dispatch and Python, not arithmetic, so
``step_wait`` writes into preallocated buffers (``out=``) and keeps the op count small. Torch's
intra-op threads only add overhead at this size: ``torch.set_num_threads(1)`` is usually fastest
(see ``bench/bench_env.py --threads``); the env does not change the global setting itself.

Infos: SB3 wants one dict per env per step but only reads them. Unless ``step_info`` is on, the
dicts of envs that did not end are shared, pre-allocated, read-only empty dicts (mutating one
raises ``TypeError``); each step still returns a new list, and envs that ended get new dicts.
The per-step reward components are always on the env as tensors (``reward_perf``,
``reward_cost``, ``reward_churn``, ``reward_smooth``); a callback reads them with
``self.training_env.get_attr("reward_perf")[0]`` (an ``(n_envs,)`` tensor, overwritten by the
next step: clone to keep). ``EnvConfig(step_info=True)`` also puts ``reward_perf`` and
``reward_cost`` in every ``infos[i]``, at about one small dict per env per step.

Observations are new numpy arrays every step (views of that step's host copy): SB3's off-policy
algorithms keep ``_last_obs = new_obs`` and store it as the next transition's ``obs``, so a
buffer reused across steps would be overwritten under them.
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

from cryptorl_core.device import resolve_device
from cryptorl_core.env.config import (
    MIN_GROWTH,
    TIMING_BONUS_BAD,
    TIMING_BONUS_GOOD,
    EnvConfig,
    check_w_cost_distribution,
)
from cryptorl_core.env.market import SegmentMarket
from cryptorl_core.env.sizing import vol_target_size
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

#: Rows of the per-step output matrix, overwritten in place every step. The first five line up
#: with the accumulators of STATE_FIELDS, so the episode sums take one in-place add.
STEP_FIELDS = (
    "reward",  # -> episode_reward
    "fee",  # -> fees_paid
    "traded",  # |dpos|, -> turnover
    "trade_flag",  # 1 where the position changed, -> n_trades
    "one",  # constant 1, -> steps
    "reward_perf",
    "reward_cost",
    "reward_churn",
    "reward_smooth",
    "reward_timing",  # seed 004's timing bonus paid this step (before timing_bonus_scale)
)
_REWARD, _FEE, _TRADED, _TRADE_FLAG, _ONE, _PERF, _COST, _CHURN, _SMOOTH, _TIMING = range(len(STEP_FIELDS))


class _EmptyInfo(dict):
    """Read-only empty info dict, shared across steps by the envs that did not end.

    Sharing is safe only because SB3 just reads infos; mutating one raises instead of leaking
    a key into every later step of that env.
    """

    def _read_only(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(
            "BatchCryptoEnv shares the empty info dicts across steps: copy one before changing it"
        )

    __setitem__ = __delitem__ = __ior__ = _read_only
    update = setdefault = pop = popitem = clear = _read_only


class _StateField:
    """Per-env ``(n_envs,)`` view of one row of the env's state matrix (assignable)."""

    def __init__(self, name: str) -> None:
        self.index = STATE_FIELDS.index(name)

    def __get__(self, env: BatchCryptoEnv | None, owner: type | None = None) -> Any:
        return self if env is None else env._state_rows[self.index]

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


def buy_outcomes(open_: np.ndarray, close: np.ndarray, horizon: int) -> np.ndarray:
    """Timing bonus of a BUY decided on each row: ``TIMING_BONUS_GOOD`` when
    ``close[t + horizon]`` is above the fill ``open[t + 1]``, else ``TIMING_BONUS_BAD``; 0 where
    ``t + horizon`` is past the frame. Read only when the bonus is paid, at bar ``t + horizon``.

    :param open_: ``(n_rows,)`` open prices.
    :param close: ``(n_rows,)`` close prices.
    :param horizon: N, hours from the fill to the judging close (>= 1).
    :return: ``(n_rows,)`` float64 bonuses.
    """
    out = np.zeros(len(close))
    judged = np.arange(len(close) - horizon)
    good = close[judged + horizon] > open_[judged + 1]
    out[judged] = np.where(good, TIMING_BONUS_GOOD, TIMING_BONUS_BAD)
    return out


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
    :param size: ``(n_rows,)`` size multiplier of ``sizing="vol_target"`` (required then;
        :meth:`from_segment_frame` computes it with :func:`~cryptorl_core.env.sizing.vol_target_size`).
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
        size: np.ndarray | None = None,
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
        # The bar returns a step needs, one row each, so a step gathers them in one op:
        # lag 1: (gap, intrabar); lag 0: (close_to_close,).
        bars = (gap, intrabar) if self.config.execution_lag == 1 else (close_to_close,)
        self._bars = torch.as_tensor(np.stack(bars), device=self.device, dtype=dtype)
        self._start_rows = torch.as_tensor(market.start_rows, device=self.device)
        self._run_end = torch.as_tensor(market.run_end, device=self.device)
        self._size = self._size_column(size)
        self._timing_scale = float(self.config.timing_bonus_scale)
        self._buy_outcome = None
        if self._timing_scale != 0.0:
            outcomes = buy_outcomes(market.open, market.close, self.config.timing_bonus_horizon)
            self._buy_outcome = torch.as_tensor(outcomes, device=self.device, dtype=dtype)

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

    def _size_column(self, size: np.ndarray | None) -> torch.Tensor | None:
        """The per-row size multiplier on the device (``sizing`` other than ``"agent"``), else None."""
        if not self.config.sizes_by_overlay:
            return None
        if size is None:
            raise ValueError(f"sizing={self.config.sizing!r} needs the per-row size column: build the env with "
                             "from_segment_frame, or pass size= (env.sizing.vol_target_size)")
        column = np.asarray(size, dtype=np.float64).reshape(-1)
        if column.shape != (self.market.n_rows,) or not np.all(np.isfinite(column)):
            raise ValueError(f"size must be {self.market.n_rows} finite values, one per frame row")
        return torch.as_tensor(column, device=self.device, dtype=self.dtype)

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
        :param kwargs: forwarded to the constructor (``n_envs``, ``mode``, ``dtype``, ``seed``,
            ``size``; a ``sizing`` other than ``"agent"`` computes ``size`` from the frame when not given).
        """
        if config is not None and config.sizes_by_overlay and kwargs.get("size") is None:
            kwargs["size"] = vol_target_size(frame)
        return cls(SegmentMarket.from_frame(frame, split), config, device=device, **kwargs)

    # ------------------------------------------------------------------ state

    def _alloc_state(self, n: int) -> None:
        def zeros(dtype: torch.dtype = self.dtype) -> torch.Tensor:
            return torch.zeros(n, device=self.device, dtype=dtype)

        self.row = zeros(torch.long)  # current bar t of each env
        self.last_row = zeros(torch.long)  # last split row reachable from the episode's start
        # One (n_fields, n_envs) matrix, so an auto-reset is a single index_copy_.
        self._fresh = torch.zeros(len(STATE_FIELDS), n, device=self.device, dtype=self.dtype)
        self._fresh[_NAV] = 1.0
        self._state = self._fresh.clone()
        # Row views made once: indexing a tensor costs about as much as a small op.
        self._state_rows = self._state.unbind(0)
        self._accumulators = self._state[_ACCUMULATORS]
        self._ones = torch.ones(n, device=self.device, dtype=self.dtype)
        # Step outputs and scratch, preallocated: step_wait writes them with out= / in place.
        self._step_out = torch.zeros(len(STEP_FIELDS), n, device=self.device, dtype=self.dtype)
        self._step_out[_ONE] = 1.0
        self._step_rows = self._step_out.unbind(0)
        self.reward = self._step_out[_REWARD]
        self.reward_perf = self._step_out[_PERF]
        self.reward_cost = self._step_out[_COST]
        self.reward_churn = self._step_out[_CHURN]
        self.reward_smooth = self._step_out[_SMOOTH]
        self.reward_timing = self._step_out[_TIMING]
        # Timing bonuses owed, one row per step of delay (ring buffer indexed by the step count).
        horizon = self.config.timing_bonus_horizon if self._buy_outcome is not None else 1
        self._pending = torch.zeros(horizon, n, device=self.device, dtype=self.dtype)
        self._tick = 0
        self._target, self._dpos, self._cost_frac = zeros(), zeros(), zeros()
        self._growth, self._carry, self._earn, self._excess = zeros(), zeros(), zeros(), zeros()
        self._bar_out = torch.zeros(self._bars.shape[0], n, device=self.device, dtype=self.dtype)
        self._hit_end, self._end_code = zeros(torch.bool), zeros()
        self._empty_infos = [_EmptyInfo() for _ in range(n)]

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

    def _reset_envs(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Start new episodes in the envs listed in ``index`` (work proportional to their number).

        :return: the new start rows and ``w_cost`` of those envs.
        """
        k = index.shape[0]
        start = self._sample_start_rows(k)
        w_cost = self._sample_w_cost(k)
        self.row.index_copy_(0, index, start)
        self.last_row.index_copy_(0, index, self._run_end.index_select(0, start))
        self._state.index_copy_(1, index, self._fresh[:, :k])
        self._state_rows[_W_COST].index_copy_(0, index, w_cost)
        self._pending.index_fill_(1, index, 0.0)  # an ended episode's BUYs are never paid
        return start, w_cost

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
        with torch.inference_mode():
            self._reset_envs(torch.arange(self.num_envs, device=self.device))
            self.reward.zero_()
            state = self._state
            host = torch.stack([self.row.to(self.dtype), state[_POSITION], state[_W_COST]])
            host = host.cpu().numpy()
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return self._obs_from_host(host)

    def step_async(self, actions: np.ndarray) -> None:
        """Store the actions (``(n_envs, 1)`` or ``(n_envs,)``, target positions in [-1, 1])."""
        act = torch.as_tensor(np.asarray(actions), device=self.device, dtype=self.dtype).reshape(-1)
        if act.shape[0] != self.num_envs:
            raise ValueError(f"expected {self.num_envs} actions, got {act.shape[0]}")
        self._actions = act

    def target_position(
        self, actions: torch.Tensor, out: torch.Tensor | None = None, rows: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Map raw actions to executable target positions: scale by ``action_gain``, clip, round
        to ``position_step``, clip. With ``sizing="vol_target"``, then the sign of that target
        (with ``"vol_scaled"``, the target itself) times the size column at the decision rows,
        rounded and clipped again.

        :param actions: ``(n_envs,)`` raw actions.
        :param out: optional ``(n_envs,)`` tensor to write the result into.
        :param rows: decision rows of the actions (default: each env's current row).
        :return: ``(n_envs,)`` target positions in ``[-1, 1]`` (``[0, 1]`` if long-only).
        """
        target = self._to_grid(torch.mul(actions, self.config.action_gain, out=out))
        if self._size is not None:
            size = self._size.index_select(0, self.row if rows is None else rows)
            if self.config.sizing == "vol_target":
                target.sign_()
            self._to_grid(target.mul_(size))
        return target

    def random_positions(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` positions drawn uniformly from the allowed range and rounded to the grid.

        :param n: how many.
        :param generator: a generator on the env's device (the caller's own, so the env's
            stream of start rows and cost weights is never drawn from).
        """
        draw = torch.rand(n, device=self.device, dtype=self.dtype, generator=generator)
        return self._to_grid(draw.mul_(1.0 - self._low_position).add_(self._low_position))

    def _to_grid(self, target: torch.Tensor) -> torch.Tensor:
        """Clip to the allowed range, round to ``position_step``, clip again (in place)."""
        target.clamp_(self._low_position, 1.0)
        step = self.config.position_step
        if step > 0:
            # divide (not multiply by 1 / step): the same rounding as the reference
            target.div_(step).round_().mul_(step).clamp_(self._low_position, 1.0)
        return target

    def counterfactual_step(
        self,
        rows: torch.Tensor,
        position: torch.Tensor,
        w_cost: torch.Tensor,
        actions: torch.Tensor,
        prev_dpos: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The reward and next position of one step from any state and action, changing nothing.

        The market is exogenous (a position never moves a price), so a stored transition can be
        replayed with another action and held position: the reward is the same formula as a
        step's, at the current curriculum coefficients. The timing bonus is left out.

        :param rows: ``(batch,)`` decision rows ``t`` (the ``market`` observation).
        :param position: ``(batch,)`` positions held at ``t``.
        :param w_cost: ``(batch,)`` cost weights.
        :param actions: ``(batch,)`` raw actions.
        :param prev_dpos: ``(batch,)`` position change of the previous step (the smoothness
            penalty's reference); ``None`` takes no previous change.
        :return: ``(reward, next_position)``, each ``(batch,)`` on the env's device.
        :raises ValueError: the env pays a timing bonus, which depends on later steps.
        """
        if self._buy_outcome is not None:
            raise ValueError("counterfactual_step cannot replay the delayed timing bonus (timing_bonus_scale != 0)")
        cfg = self.config
        rows = row_index(rows).to(self.device)
        position, w_cost = (x.to(self.device, self.dtype).reshape(-1) for x in (position, w_cost))
        target = self.target_position(actions.to(self.device, self.dtype).reshape(-1), rows=rows)
        dpos = target - position
        cost_frac = dpos.abs() * cfg.cost_rate
        bars = self._bars.index_select(1, rows)
        growth = 1.0 - cost_frac
        if cfg.execution_lag == 1:
            growth = growth * (1.0 + position * bars[0])
        growth = (growth * (1.0 + target * bars[-1])).clamp_min(MIN_GROWTH)
        perf = growth.log()
        if cfg.risk_aversion != 1.0:
            perf = perf - (growth - 1.0).square() * ((cfg.risk_aversion - 1.0) / 2.0)
        if cfg.hold_cost_bps:
            perf = perf - target.square() * (cfg.hold_cost_bps / 10_000.0)
        churn = dpos.abs() * -self.churn_coef
        previous = torch.zeros_like(dpos) if prev_dpos is None else prev_dpos.to(self.device, self.dtype).reshape(-1)
        smooth = (dpos - previous).square() * -self.smooth_coef
        cost_weight = self.curriculum_lambda * cfg.max_penalty_scale
        return perf * cfg.reward_scale + w_cost * (churn + smooth) * cost_weight, target

    def step_wait(self) -> VecEnvStepReturn:
        """Advance every env one bar, auto-reset the ones that ended, return numpy arrays for SB3."""
        if self._actions is None:
            raise RuntimeError("step_wait() called without step_async()")
        # inference_mode: no autograd bookkeeping; every tensor written here was allocated
        # outside it, so the env's attributes stay ordinary tensors.
        with torch.inference_mode():
            host = self._advance()
        obs = self._obs_from_host(host)
        rewards = host[3].astype(np.float32, copy=False)
        codes = host[4]
        ended = np.flatnonzero(codes)
        if self.config.step_info:
            infos = self._step_infos(host)
        else:
            infos = list(self._empty_infos)  # a new list: callers may replace entries
        if len(ended):
            self._end_episodes(ended, codes, obs, infos)
        return obs, rewards, codes != _RUNNING, infos

    def _advance(self) -> np.ndarray:
        """The device part of a step: accounting, rewards, end codes; return the packed host copy."""
        cfg = self.config
        state, out = self._state_rows, self._step_rows
        position, nav = state[_POSITION], state[_NAV]
        target = self.target_position(self._actions, out=self._target)
        self._actions = None
        dpos = torch.sub(target, position, out=self._dpos)
        traded = torch.abs(dpos, out=out[_TRADED])
        torch.gt(traded, 0.0, out=out[_TRADE_FLAG])
        cost_frac = torch.mul(traded, cfg.cost_rate, out=self._cost_frac)
        bars = torch.index_select(self._bars, 1, self.row, out=self._bar_out)
        fee = out[_FEE]
        # growth = carry * (1 - cost_frac) * earn, in the reference's order of products
        growth = torch.sub(self._ones, cost_frac, out=self._growth)
        if cfg.execution_lag == 1:
            # the old position over the gap to t+1's open, then the new one over bar t+1
            carry = torch.addcmul(self._ones, position, bars[0], out=self._carry)
            growth.mul_(carry)
            torch.mul(nav, carry, out=fee)  # NAV at t+1's open, where the trade happens
        else:  # look-ahead cheat, see module docstring
            fee.copy_(nav)
        growth.mul_(torch.addcmul(self._ones, target, bars[-1], out=self._earn))
        growth.clamp_min_(MIN_GROWTH)
        fee.mul_(cost_frac)

        torch.log(growth, out=out[_PERF])
        if cfg.risk_aversion != 1.0:  # the step utility's variance term, see EnvConfig
            excess = torch.sub(growth, 1.0, out=self._excess).square_()
            out[_PERF].sub_(excess, alpha=(cfg.risk_aversion - 1.0) / 2.0)
        if cfg.hold_cost_bps:  # the shaping cost of the position held over the bar, see EnvConfig
            out[_PERF].addcmul_(target, target, value=-cfg.hold_cost_bps / 10_000.0)
        out[_PERF].mul_(cfg.reward_scale)
        torch.mul(traded, -self.churn_coef, out=out[_CHURN])
        torch.sub(dpos, state[_PREV_DPOS], out=out[_SMOOTH]).square_().mul_(-self.smooth_coef)
        torch.add(out[_CHURN], out[_SMOOTH], out=out[_COST])
        cost_weight = self.curriculum_lambda * cfg.max_penalty_scale
        torch.addcmul(out[_PERF], state[_W_COST], out[_COST], value=cost_weight, out=out[_REWARD])
        if self._buy_outcome is not None:
            self._pay_timing_bonus(dpos)

        self._accumulators.add_(self._step_out[: _ONE + 1])  # reward, fee, |dpos|, traded?, 1
        nav.mul_(growth)
        position.copy_(target)
        state[_PREV_DPOS].copy_(dpos)
        self.row.add_(1)

        hit_end = torch.ge(self.row, self.last_row, out=self._hit_end)
        hit_end |= state[_STEPS] >= self._max_steps
        end_code = torch.mul(hit_end, float(_TRUNCATED), out=self._end_code)
        end_code.masked_fill_(nav <= cfg.bankrupt_nav, float(_TERMINATED))

        packed = [self.row.to(self.dtype), position, state[_W_COST], out[_REWARD], end_code]
        if cfg.step_info:
            packed += [out[_PERF], out[_COST]]
        # a new tensor every step (obs are views of it); the one sync of a step without ends
        return torch.stack(packed).cpu().numpy()

    def _pay_timing_bonus(self, dpos: torch.Tensor) -> None:
        """Owe each BUY of this step its outcome N - 1 steps ahead (the step that consumes bar
        t + N), then pay what is owed now into ``reward_timing`` and the reward."""
        horizon = self._pending.shape[0]
        owed = self._buy_outcome.index_select(0, self.row).mul_(dpos > 0)
        self._pending[(self._tick + horizon - 1) % horizon].add_(owed)
        due = self._pending[self._tick % horizon]
        paid = self._step_rows[_TIMING]
        paid.copy_(due)
        due.zero_()
        self._tick += 1
        self._step_rows[_REWARD].add_(paid, alpha=self._timing_scale)

    def _end_episodes(
        self,
        ended: np.ndarray,
        codes: np.ndarray,
        obs: dict[str, np.ndarray],
        infos: list[dict[str, Any]],
    ) -> None:
        """Record the final state of the envs that ended, reset them, patch their observations."""
        with torch.inference_mode():
            index = torch.as_tensor(ended, device=self.device)
            final = self._state.index_select(1, index)
            start, w_cost = self._reset_envs(index)
            values = torch.cat([final, start.to(self.dtype)[None], w_cost[None]]).cpu().numpy()
        terminal = {key: obs[key][ended] for key in OBS_KEYS}  # copies, taken before the patch
        obs["market"][ended, 0] = values[-2]
        obs["position"][ended, 0] = 0.0
        obs["w_cost"][ended, 0] = values[-1]
        elapsed = round(time.time() - self._t_start, 6)
        for j, (i, fields) in enumerate(zip(ended.tolist(), values[:-2].T.tolist(), strict=True)):
            final_i = dict(zip(STATE_FIELDS, fields, strict=True))
            info = infos[i] if self.config.step_info else {}
            info["terminal_observation"] = {key: terminal[key][j] for key in OBS_KEYS}
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
            infos[i] = info

    def _obs_from_host(self, host: np.ndarray) -> dict[str, np.ndarray]:
        values = host[: len(OBS_KEYS)].astype(np.float32, copy=False)
        return {key: values[i].reshape(-1, 1) for i, key in enumerate(OBS_KEYS)}

    def _step_infos(self, host: np.ndarray) -> list[dict[str, Any]]:
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
