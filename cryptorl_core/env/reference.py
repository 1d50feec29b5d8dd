"""Scalar reference of the trading environment: one env, plain Python floats.

It restates the execution and reward definitions of
:class:`~cryptorl_core.env.batch_env.BatchCryptoEnv` independently, without numpy or torch,
so that tests can check the batched env against it step by step. It does not sample: the
caller gives the start row and ``w_cost`` of every episode, and resets it when an episode ends.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from cryptorl_core.env.config import MIN_GROWTH, TIMING_BONUS_BAD, TIMING_BONUS_GOOD, EnvConfig
from cryptorl_core.schema import WINDOW


class ReferenceCryptoEnv:
    """One trading env over one split, in plain Python.

    :param open_: open price of every row of the segment frame.
    :param close: close price of every row.
    :param valid_rows: row indices of the split.
    :param config: the same configuration as the batched env.
    :param max_steps: episode step limit (``config.episode_length`` if None).
    :param size: size multiplier of every row (``sizing`` other than ``"agent"``).
    """

    def __init__(
        self,
        open_: Sequence[float],
        close: Sequence[float],
        valid_rows: Iterable[int],
        config: EnvConfig,
        max_steps: int | None = None,
        size: Sequence[float] | None = None,
    ) -> None:
        self.open = [float(x) for x in open_]
        self.close = [float(x) for x in close]
        self.valid = {int(r) for r in valid_rows}
        self.config = config
        self.max_steps = config.episode_length if max_steps is None else max_steps
        self.curriculum_lambda = config.curriculum_lambda
        self.churn_coef = config.churn_coef
        self.smooth_coef = config.smooth_coef
        self.size = None if size is None else [float(x) for x in size]
        if config.sizes_by_overlay and self.size is None:
            raise ValueError(f"sizing={config.sizing!r} needs the size of every row")
        self.t = -1

    def reset(self, start_row: int, w_cost: float) -> dict[str, float]:
        """Start an episode at ``start_row`` with cost weight ``w_cost``; return the observation."""
        if start_row < WINDOW - 1 or start_row not in self.valid or start_row + 1 not in self.valid:
            raise ValueError(f"row {start_row} is not a valid start row")
        self.t = int(start_row)
        self.w_cost = float(w_cost)
        self.position = 0.0
        self.prev_dpos = 0.0
        self.nav = 1.0
        self.steps = 0
        self.n_trades = 0
        self.fees_paid = 0.0
        self.turnover = 0.0
        self.episode_reward = 0.0
        self.owed: dict[int, float] = {}  # row whose step pays -> timing bonus owed
        return self.observation()

    def observation(self) -> dict[str, float]:
        return {"market": float(self.t), "position": self.position, "w_cost": self.w_cost}

    def target(self, action: float) -> float:
        """Scale by the action gain, clip to the allowed range, round to the position grid, clip again;
        with ``sizing="vol_target"`` the sign of that (``"vol_scaled"``: that) times the row's size,
        on the grid."""
        low = 0.0 if self.config.long_only else -1.0
        target = min(max(self.config.action_gain * float(action), low), 1.0)
        target = self.on_grid(target)
        if self.config.sizes_by_overlay:
            scaled = (target > 0) - (target < 0) if self.config.sizing == "vol_target" else target
            target = self.on_grid(min(max(scaled * self.size[self.t], low), 1.0))
        return target

    def on_grid(self, target: float) -> float:
        """Round to the position grid and clip."""
        low = 0.0 if self.config.long_only else -1.0
        grid = self.config.position_step
        if grid > 0:
            target = min(max(round(target / grid) * grid, low), 1.0)
        return target

    def timing_bonus(self, dpos: float) -> float:
        """Owe a BUY made now its outcome at bar t + N, then return what this step pays
        (the step from row t consumes bar t + 1, so a bonus owed for bar s is paid from row s - 1)."""
        n, t = self.config.timing_bonus_horizon, self.t
        if dpos > 0 and t + n < len(self.close):
            good = self.close[t + n] > self.open[t + 1]
            self.owed[t + n - 1] = self.owed.get(t + n - 1, 0.0) + (TIMING_BONUS_GOOD if good else TIMING_BONUS_BAD)
        return self.owed.pop(t, 0.0)

    def step(self, action: float) -> tuple[dict[str, float], float, bool, bool, dict[str, Any]]:
        """One bar. :return: observation, reward, terminated, truncated, info."""
        cfg = self.config
        t = self.t
        new = self.target(action)
        old = self.position
        dpos = new - old
        traded = abs(dpos)
        cost_frac = traded * (cfg.fee_bps + cfg.slippage_bps) / 10_000.0
        if cfg.execution_lag == 1:
            nxt = t + 1
            if nxt not in self.valid:
                raise RuntimeError("stepping past the end of the split")
            before_trade = self.nav * (1.0 + old * (self.open[nxt] / self.close[t] - 1.0))
            after_trade = before_trade * (1.0 - cost_frac)
            nav = after_trade * (1.0 + new * (self.close[nxt] / self.open[nxt] - 1.0))
            fee = before_trade * cost_frac
        else:
            after_trade = self.nav * (1.0 - cost_frac)
            nav = after_trade * (1.0 + new * (self.close[t] / self.close[t - 1] - 1.0))
            fee = self.nav * cost_frac
        growth = max(nav / self.nav, MIN_GROWTH)

        risk = (cfg.risk_aversion - 1.0) / 2.0 * (growth - 1.0) ** 2
        hold = cfg.hold_cost_bps / 10_000.0 * new ** 2
        r_perf = cfg.reward_scale * (math.log(growth) - risk - hold)
        r_churn = -self.churn_coef * traded
        r_smooth = -self.smooth_coef * (dpos - self.prev_dpos) ** 2
        r_cost = r_churn + r_smooth
        reward = r_perf + self.curriculum_lambda * self.w_cost * r_cost * cfg.max_penalty_scale
        r_timing = self.timing_bonus(dpos) if cfg.timing_bonus_scale != 0.0 else 0.0
        reward += cfg.timing_bonus_scale * r_timing

        self.nav = self.nav * growth
        self.fees_paid += fee
        self.turnover += traded
        self.n_trades += 1 if traded > 0 else 0
        self.prev_dpos = dpos
        self.position = new
        self.t = t + 1
        self.steps += 1
        self.episode_reward += reward

        terminated = self.nav <= cfg.bankrupt_nav
        truncated = not terminated and (
            self.steps >= self.max_steps or self.t + 1 not in self.valid
        )
        info = {
            "reward_perf": r_perf,
            "reward_cost": r_cost,
            "reward_churn": r_churn,
            "reward_smooth": r_smooth,
            "reward_timing": r_timing,
        }
        return self.observation(), reward, terminated, truncated, info
