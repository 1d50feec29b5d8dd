"""Run a policy, or a rule's target positions, through the trading environment over one split.

The backtest uses :class:`~cryptorl_core.env.BatchCryptoEnv` itself, in ``mode="sequential"``
with ``n_envs=1``, so execution lag (a decision on bar t's close fills at bar t+1's open), the
position grid, fees and slippage are exactly those of training. Nothing is re-implemented here:
the runner only steps the env and records its bookkeeping after every step.

Recorded per bar (one row per visited row ``t`` of the split, see
:mod:`cryptorl_core.backtest.metrics` for the alignment):

- ``nav``: NAV at bar t's close (1.0 on the first row, before any step);
- ``position``: position held over bar t (0 on the first row: the backtest starts flat);
- ``fees``: fee + slippage paid between the previous row and this one (NAV units);
- ``action``: the raw action *decided* on this row (filled on the next row; NaN on the last
  row, which has no next bar in the split), ``target``: that action on the env's grid;
- ``reward``, ``reward_perf``, ``reward_cost``: the env's reward of the step that ends here;
- ``price_open``, ``price_close``: the traded asset's prices of the bar.

A *policy* is either an SB3 model (anything with ``predict(obs, deterministic=...)``) or any
callable mapping the env's observation dict (``market`` row index, ``position``, ``w_cost``,
each ``(1, 1)`` float32) to an action (scalar or ``(1, 1)``). A model with a ``Discrete``
action space (DQN over the position grid) has its indices mapped to the env's actions by
:func:`~cryptorl_core.env.discrete.env_actions`, as in training.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd
import torch

from cryptorl_core.backtest.baselines import segment_baseline_positions
from cryptorl_core.backtest.config import BacktestConfig
from cryptorl_core.backtest.metrics import compute_metrics
from cryptorl_core.backtest.regime_baselines import RegimeContextLike
from cryptorl_core.env import BatchCryptoEnv, EnvConfig, env_actions
from cryptorl_core.env.sizing import agent_targets
from cryptorl_core.schema import PRICE_CLOSE_COL, PRICE_OPEN_COL, TEST

Observation = Mapping[str, np.ndarray]
ActionFn = Callable[[Observation], Any]

#: Columns of :attr:`BacktestRun.steps`, in order.
STEP_COLUMNS = (
    "row",
    "price_open",
    "price_close",
    "action",
    "target",
    "position",
    "nav",
    "fees",
    "reward",
    "reward_perf",
    "reward_cost",
)


@runtime_checkable
class PredictsActions(Protocol):
    """What the runner needs from a Stable-Baselines3 model."""

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None,
                deterministic: bool = False) -> tuple[np.ndarray, Any]: ...


def as_action_fn(policy: PredictsActions | ActionFn, deterministic: bool = True,
                 env_config: EnvConfig | None = None) -> ActionFn:
    """Turn an SB3 model into an ``obs -> action`` callable; callables pass through.

    :param policy: an SB3 model or a callable.
    :param deterministic: use the policy's mean action (no sampling, no gSDE noise).
    :param env_config: the env's configuration, to map a discrete policy's indices to actions.
    :return: the callable.
    """
    if isinstance(policy, PredictsActions):
        space = getattr(policy, "action_space", None)
        config = env_config or EnvConfig()
        return lambda obs: env_actions(policy.predict(obs, deterministic=deterministic)[0], space, config)
    if callable(policy):
        return policy
    raise TypeError(f"a policy must have predict() or be callable, got {type(policy).__name__}")


class TargetPositionPolicy:
    """A rule's precomputed target positions, played back by the row the env is at.

    ``targets[t]`` is the decision on bar t (a causal rule uses closes up to t only); the env
    fills it at bar t+1's open, as it does an agent's action.

    :param targets: one target per row of the whole segment frame.
    """

    def __init__(self, targets: np.ndarray) -> None:
        self.targets = np.asarray(targets, dtype=np.float32).reshape(-1)

    def __call__(self, obs: Observation) -> np.ndarray:
        rows = np.rint(np.asarray(obs["market"]).reshape(-1)).astype(np.int64)
        return self.targets[rows].reshape(-1, 1)


@dataclass
class BacktestRun:
    """One strategy's pass over one split.

    :param name: strategy name (``agent``, ``buy_and_hold``, ...).
    :param steps: per-bar record indexed by bar open time (see the module docstring).
    :param split: the split that was run.
    :param env_config: the environment configuration used (as a dict).
    :param w_cost: the fixed cost weight the policy saw.
    :param terminated: the run hit the env's bankruptcy NAV before the end of the split.
    """

    name: str
    steps: pd.DataFrame
    split: str = TEST
    env_config: dict = field(default_factory=dict)
    w_cost: float = 0.0
    terminated: bool = False

    @property
    def nav(self) -> pd.Series:
        return self.steps["nav"]

    @property
    def positions(self) -> pd.Series:
        return self.steps["position"]

    @property
    def actions(self) -> np.ndarray:
        """Decided actions on the env's grid (the last row's missing decision dropped)."""
        return self.steps["target"].dropna().to_numpy()

    @property
    def own_targets(self) -> np.ndarray | None:
        """The policy's own targets before a sizing overlay sized them
        (:func:`~cryptorl_core.env.sizing.agent_targets`); None without an overlay, where
        :attr:`actions` are the policy's own."""
        env = EnvConfig.from_dict(self.env_config)
        if not env.sizes_by_overlay:
            return None
        return agent_targets(self.steps["action"].dropna().to_numpy(), env)

    def metrics(self, config: BacktestConfig | None = None) -> dict[str, float | str]:
        """:func:`~cryptorl_core.backtest.metrics.compute_metrics` of this run (fills at the open)."""
        s = self.steps
        return compute_metrics(
            s["position"], s["price_close"], nav=s["nav"], fees=s["fees"],
            exec_prices=s["price_open"], config=config,
        )


def backtest_env(
    frame: pd.DataFrame,
    split: str = TEST,
    env_config: EnvConfig | None = None,
    w_cost: float | None = None,
    device: torch.device | str = "cpu",
) -> BatchCryptoEnv:
    """The sequential single env of a backtest, with ``w_cost`` fixed for the whole run.

    :param frame: segment frame (``split``, ``price_open``, ``price_close`` columns).
    :param split: split to run over.
    :param env_config: execution and cost settings; the training ones (``EnvConfig()`` if None).
    :param w_cost: cost weight shown to the policy; ``BacktestConfig().eval_w_cost`` if None.
    :param device: torch device of the env state.
    :return: the env, not yet reset.
    """
    w = BacktestConfig().eval_w_cost if w_cost is None else float(w_cost)
    env = BatchCryptoEnv.from_segment_frame(
        frame, split=split, config=env_config, device=device, n_envs=1, mode="sequential",
        dtype=torch.float64, seed=0,  # float64: exact bookkeeping; the seed draws nothing here
    )
    env.set_w_cost_distribution(low=w, high=w, p_zero=0.0)
    return env


def _first_action(action: Any) -> float:
    return float(np.asarray(action, dtype=np.float64).reshape(-1)[0])


def run_backtest(
    policy: PredictsActions | ActionFn,
    frame: pd.DataFrame,
    split: str = TEST,
    *,
    name: str = "agent",
    env_config: EnvConfig | None = None,
    w_cost: float | None = None,
    deterministic: bool = True,
    device: torch.device | str = "cpu",
) -> BacktestRun:
    """Step ``policy`` through every bar of ``split`` and record the env's bookkeeping.

    :param policy: SB3 model or ``obs -> action`` callable.
    :param frame: segment frame.
    :param split: ``"test"`` (default), ``"eval"`` or ``"train"``.
    :param name: strategy name of the run.
    :param env_config: the training environment configuration (same lag and costs).
    :param w_cost: fixed cost weight; ``BacktestConfig().eval_w_cost`` if None.
    :param deterministic: deterministic SB3 actions.
    :param device: torch device of the env.
    :return: the run.
    """
    env = backtest_env(frame, split, env_config, w_cost, device)
    act = as_action_fn(policy, deterministic, env.config)
    obs = env.reset()
    start = int(obs["market"][0, 0])
    records = [_record(start, nav=1.0, position=0.0, fees=0.0)]
    terminated, fees_before = False, 0.0
    while True:
        action = _first_action(act(obs))
        target = float(env.target_position(torch.tensor([action], dtype=env.dtype, device=env.device))[0])
        records[-1].update(action=action, target=target)
        obs, _, dones, infos = env.step(np.array([[action]], dtype=np.float32))
        info = infos[0]
        if dones[0]:  # the env auto-reset: its state is the new episode's, read the info instead
            row = int(info["terminal_observation"]["market"][0])
            nav, fees_total = float(info["nav"]), float(info["fees_paid"])
            terminated = not info["TimeLimit.truncated"]
        else:
            row = int(obs["market"][0, 0])
            nav, fees_total = float(env.nav[0]), float(env.fees_paid[0])
        records.append(_record(
            row, nav=nav, position=target, fees=fees_total - fees_before,
            reward=float(env.reward[0]), reward_perf=float(env.reward_perf[0]),
            reward_cost=float(env.reward_cost[0]),
        ))
        fees_before = fees_total
        if dones[0]:
            break
    return BacktestRun(
        name=name, steps=_steps_frame(records, frame), split=split,
        env_config=dict(vars(env.config)), w_cost=float(env.w_cost_low), terminated=terminated,
    )


def _record(row: int, **values: float) -> dict[str, float]:
    rec = dict.fromkeys(STEP_COLUMNS, np.nan)
    rec.update(row=row, **values)
    return rec


def _steps_frame(records: list[dict[str, float]], frame: pd.DataFrame) -> pd.DataFrame:
    steps = pd.DataFrame.from_records(records, columns=list(STEP_COLUMNS))
    rows = steps["row"].astype(np.int64).to_numpy()
    steps["row"] = rows
    steps["price_open"] = frame[PRICE_OPEN_COL].to_numpy()[rows]
    steps["price_close"] = frame[PRICE_CLOSE_COL].to_numpy()[rows]
    steps.index = frame.index[rows]
    return steps


def run_targets(
    targets: np.ndarray,
    frame: pd.DataFrame,
    split: str = TEST,
    *,
    name: str,
    env_config: EnvConfig | None = None,
    device: torch.device | str = "cpu",
) -> BacktestRun:
    """Run a rule's target positions (one per frame row) through the same env as the agent.

    :param targets: decision at every row of ``frame`` (causal: uses information up to that row),
        e.g. :func:`~cryptorl_core.backtest.regime_baselines.regime_rule_positions`.
    :param frame: segment frame.
    :param split: split to run over.
    :param name: strategy name.
    :param env_config: the training environment configuration.
    :param device: torch device of the env.
    :return: the run.
    """
    if len(targets) != len(frame):
        raise ValueError(f"need one target per frame row ({len(frame)}), got {len(targets)}")
    # Targets are positions, not policy actions: the agent's action gain and sizing rule must
    # not change them.
    positions_env = (env_config or EnvConfig()).with_overrides(action_gain=1.0, sizing="agent")
    return run_backtest(TargetPositionPolicy(targets), frame, split, name=name,
                        env_config=positions_env, device=device)


def run_baselines(
    frame: pd.DataFrame,
    split: str = TEST,
    *,
    config: BacktestConfig | None = None,
    env_config: EnvConfig | None = None,
    device: torch.device | str = "cpu",
    regime_context: RegimeContextLike | None = None,
) -> dict[str, BacktestRun]:
    """Every rule of :func:`~cryptorl_core.backtest.baselines.segment_baseline_positions` over ``split``.

    The rules see every frame row before the window (train, eval, purge rows), so their windows
    are full on the split's first bar.

    :param frame: segment frame.
    :param split: split to run over.
    :param config: baseline windows, weights and mappings.
    :param env_config: the training environment configuration.
    :param device: torch device of the env.
    :param regime_context: HMM context of every frame row (or the regime model); adds the
        regime rules when given.
    :return: name to run, in the order of ``segment_baseline_positions``.
    """
    targets = segment_baseline_positions(frame, config, regime_context)
    return {
        name: run_targets(t, frame, split, name=name, env_config=env_config, device=device)
        for name, t in targets.items()
    }
