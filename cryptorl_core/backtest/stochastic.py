"""Optional multi-episode stochastic evaluation of the agent (seed 004 evaluates over 10 episodes).

The report's agent line is the deterministic policy (its mean action). Here the same policy is
re-run ``episodes`` times with *sampled* actions (``deterministic=False``) over the same window,
through the same :func:`~cryptorl_core.backtest.runner.run_backtest` path (same env, lag and
costs), and the main metrics are summarised as mean and standard deviation across episodes.

Reproducibility: episode ``i`` runs with torch, numpy and ``random`` seeded with ``seed + i``;
the global generators are restored afterwards. A policy trained with gSDE samples its noise
from an exploration matrix that ``predict`` never redraws, so :class:`GsdeResampling` redraws it
at the start of every episode and every ``sde_sample_freq`` decisions, as training does; without
it every "stochastic" episode would be the same. A plain ``obs -> action`` callable is run as it
is (its episodes differ only if it draws from the seeded generators).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from cryptorl_core.backtest.config import BacktestConfig
from cryptorl_core.backtest.metrics import METRIC_DISPLAY, format_metric
from cryptorl_core.backtest.runner import ActionFn, PredictsActions, run_backtest
from cryptorl_core.env import EnvConfig
from cryptorl_core.schema import TEST

#: Metrics summarised across episodes.
STOCHASTIC_KEYS = ("total_return_pct", "sharpe", "max_drawdown_pct", "n_trades", "buy_good_pct")


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch (every device), numpy's and Python's global generators; restore them on exit.

    :param seed: the seed.
    """
    np_state, py_state = np.random.get_state(), random.getstate()
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        np.random.seed(seed)
        random.seed(seed)
        try:
            yield
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)


class GsdeResampling:
    """An SB3 model whose gSDE exploration noise is redrawn as during training.

    The noise is redrawn on the first stochastic prediction and then every
    ``model.sde_sample_freq`` predictions (only on the first when that is <= 0); models
    without gSDE, and deterministic predictions, pass straight through.

    :param model: the SB3 model; one instance per episode (it counts its predictions).
    """

    def __init__(self, model: PredictsActions) -> None:
        self.model = model
        self.calls = 0

    @property
    def action_space(self) -> Any:
        """The model's action space (a discrete one has its indices mapped by the runner)."""
        return getattr(self.model, "action_space", None)

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None,
                deterministic: bool = False) -> tuple[np.ndarray, Any]:
        if not deterministic and getattr(self.model, "use_sde", False):
            freq = int(getattr(self.model, "sde_sample_freq", -1))
            if self.calls == 0 or (freq > 0 and self.calls % freq == 0):
                self.model.policy.reset_noise()
            self.calls += 1
        return self.model.predict(observation, state, episode_start, deterministic)


@dataclass(frozen=True)
class StochasticEvaluation:
    """Metrics of ``n`` stochastic episodes over one window.

    :param seed: base seed (episode ``i`` used ``seed + i``).
    :param episodes: per episode, the metrics of :data:`STOCHASTIC_KEYS`.
    """

    seed: int
    episodes: tuple[dict[str, float], ...]

    @property
    def n(self) -> int:
        return len(self.episodes)

    def values(self, key: str) -> np.ndarray:
        """One value of ``key`` per episode (NaN where undefined, e.g. no BUY)."""
        return np.array([np.nan if e[key] is None else e[key] for e in self.episodes], dtype=float)

    def mean(self) -> dict[str, float]:
        """Mean across episodes of every key, over the episodes where it is defined."""
        return {k: _finite_stat(self.values(k), np.mean) for k in STOCHASTIC_KEYS}

    def std(self) -> dict[str, float]:
        """Sample standard deviation (ddof 1) across episodes; NaN with fewer than 2 defined."""
        return {k: _finite_stat(self.values(k), lambda v: np.std(v, ddof=1), min_count=2)
                for k in STOCHASTIC_KEYS}

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (for ``metrics.json`` and run metadata)."""
        return {"n_episodes": self.n, "seed": self.seed, "mean": self.mean(), "std": self.std(),
                "episodes": [dict(e) for e in self.episodes]}

    def table(self, deterministic: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """One row per metric: mean and std across episodes (and the deterministic run's value).

        :param deterministic: the deterministic agent's metrics, added as a column when given.
        :return: raw values, index ``metric``.
        """
        cols: dict[str, dict[str, Any]] = {"mean": self.mean(), "std": self.std()}
        if deterministic is not None:
            cols["deterministic"] = {k: deterministic.get(k) for k in STOCHASTIC_KEYS}
        table = pd.DataFrame(cols, index=list(STOCHASTIC_KEYS), dtype=object)
        table.index.name = "metric"
        return table

    def markdown(self, deterministic: Mapping[str, Any] | None = None) -> str:
        """:meth:`table` as markdown (``mean ± std``), labels and decimals per ``METRIC_DISPLAY``.

        :param deterministic: the deterministic agent's metrics, shown beside when given.
        :return: markdown text.
        """
        header = ["Metric", f"Stochastic mean ± std ({self.n} episodes, seed {self.seed})"]
        if deterministic is not None:
            header.append("Deterministic")
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for key, row in self.table(deterministic).iterrows():
            k = str(key)
            cells = [METRIC_DISPLAY.get(k, (k, 3))[0], f"{_fmt(k, row['mean'])} ± {_fmt(k, row['std'])}"]
            if deterministic is not None:
                cells.append(_fmt(k, row["deterministic"]))
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)


def _fmt(key: str, value: Any) -> str:
    return format_metric(key, np.nan if value is None else value)


def _finite_stat(values: np.ndarray, stat: Any, min_count: int = 1) -> float:
    finite = values[np.isfinite(values)]
    return float(stat(finite)) if len(finite) >= min_count else float("nan")


def evaluate_stochastic(
    policy: PredictsActions | ActionFn,
    frame: pd.DataFrame,
    split: str = TEST,
    *,
    episodes: int,
    seed: int = 0,
    env_config: EnvConfig | None = None,
    w_cost: float | None = None,
    config: BacktestConfig | None = None,
    device: torch.device | str = "cpu",
) -> StochasticEvaluation:
    """Run ``policy`` with sampled actions ``episodes`` times over ``split``, seeded per episode.

    :param policy: SB3 model (sampled with ``deterministic=False``) or ``obs -> action`` callable.
    :param frame: segment frame.
    :param split: window to run over.
    :param episodes: number of episodes (>= 1).
    :param seed: base seed; episode ``i`` seeds torch, numpy and ``random`` with ``seed + i``.
    :param env_config: the training environment configuration (same lag and costs).
    :param w_cost: fixed cost weight shown to the policy; ``BacktestConfig().eval_w_cost`` if None.
    :param config: analytics configuration of the metrics.
    :param device: torch device of the env.
    :return: the metrics of :data:`STOCHASTIC_KEYS` of every episode.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    out = []
    for i in range(episodes):
        actor = GsdeResampling(policy) if isinstance(policy, PredictsActions) else policy
        with seeded(seed + i):
            run = run_backtest(actor, frame, split, name=f"agent_stochastic_{i}", env_config=env_config,
                               w_cost=w_cost, deterministic=False, device=device)
        metrics = run.metrics(config)
        out.append({k: metrics[k] for k in STOCHASTIC_KEYS})
    return StochasticEvaluation(seed=seed, episodes=tuple(out))
