"""Configuration of the batched trading environment."""

from __future__ import annotations

from dataclasses import dataclass

from cryptorl_core.config_base import ConfigBase

# Re-exported: env.config.resolve_device was the env's own helper before the shared one existed.
from cryptorl_core.device import resolve_device

__all__ = [
    "BPS",
    "EXECUTION_LAGS",
    "MIN_GROWTH",
    "PROFILE_ACTION_GAIN",
    "PROFILE_HOLD_COST_BPS",
    "PROFILE_RISK_AVERSION",
    "PROFILE_SIZING",
    "SIZINGS",
    "TIMING_BONUS_BAD",
    "TIMING_BONUS_GOOD",
    "EnvConfig",
    "check_w_cost_distribution",
    "resolve_device",
]

#: One basis point as a fraction.
BPS = 1e-4

#: Execution lags the environment understands. 1 is the honest one; 0 is a look-ahead
#: cheat kept only so a test can show that a peeking policy profits without the lag.
EXECUTION_LAGS = (0, 1)

#: Action gain of both profiles: the seed's plain clip. Gain 1.5 (the profiles' from backfill 4 to
#: 12) sized fully, but its flat zone (|action| > 0.67 is all +-1) held one position through
#: range spells and whole one-regime quarters, the collapse rule's verdict in 6 of backfill 12's
#: 23 test quarters. On 22 synthetic segments' nested held-out months and train windows, gain 1
#: left no train quarter collapsed on either seed pair, for a smaller position (docs/EXPERIMENTS.md,
#: "Gain 1 under the profile", "Gain 1 on fresh seeds").
PROFILE_ACTION_GAIN = 1.0

#: Relative risk aversion of both profiles' step utility. Log growth (1, the seed) makes the best
#: position bang-bang; on seven synthetic segments' train and eval windows, gamma 4 halved the
#: train quarters where the agent held one position (4 -> 2 of 21) and kept the eval return above
#: the regime rule's; 2 and 10 did worse (docs/EXPERIMENTS.md, "Risk aversion").
PROFILE_RISK_AVERSION = 4.0

#: Sizing of both profiles: the agent's own target, the seed's. From backfill 10 to 14 the profiles
#: scaled it by the ``vol_target`` multiplier (``vol_scaled``), added when gain 1.5 saturated the
#: target at +-1. At gain 1 the target no longer saturates, and the multiplier (about 0.5 on bear
#: bars, 0.3 on crash bars, 1 on range bars of synthetic train windows) mostly halved the shorts.
#: Without it, on two seed pairs' 22 nested held-out months each, more months reached
#: buy-and-hold's Sharpe and the median alpha rose by more than the 1.6 pp that seed pairs moved
#: the ``vol_scaled`` profile's (this profile's two pairs differ by 4.9 pp), but the agent held
#: range bars, so one pair had more collapsed months; :data:`PROFILE_HOLD_COST_BPS` prices that
#: bet (docs/EXPERIMENTS.md, "The agent sizes its own position", "The profile on a second seed
#: pair").
PROFILE_SIZING = "agent"

#: Hold cost of both profiles, in basis points a bar on the squared position (reward only). With
#: the agent sizing its own position, 2 bp took the train range bars held from 0.84 to 0.08 and
#: the collapsed held-out months back to the ``vol_scaled`` profile's (1), and kept a median
#: alpha 4.1 pp above that profile's on 22 nested held-out months, less than the 4.9 pp between
#: this profile's own two seed pairs (docs/EXPERIMENTS.md, "No overlay with a 2 bp hold cost").
PROFILE_HOLD_COST_BPS = 2.0

#: Floor of the one-step NAV growth factor, so ``log`` stays finite if a short is wiped out.
MIN_GROWTH = 1e-6

#: Who sets the size of the executed position: the agent (``clip(action_gain * action)``); the
#: agent the direction and timing and the ``vol_target`` rule the size (plan B, seed 004); or the
#: agent's own target scaled down by the ``vol_target`` rule's multiplier (``vol_scaled``).
SIZINGS = ("agent", "vol_target", "vol_scaled")

#: Seed 004's timing bonus: paid for a good BUY, and for a bad one (before ``timing_bonus_scale``).
TIMING_BONUS_GOOD = 5.0
TIMING_BONUS_BAD = -2.0


@dataclass
class EnvConfig(ConfigBase):
    """Market mechanics, reward shaping and sampling of :class:`~cryptorl_core.env.BatchCryptoEnv`.

    Reward (the seed's MORL form), per step::

        reward = r_perf + curriculum_lambda * w_cost * r_cost * max_penalty_scale
                 + timing_bonus_scale * r_timing
        r_perf = reward_scale * (log(g) - (risk_aversion - 1) / 2 * (g - 1) ** 2
                                 - hold_cost_bps / 10_000 * pos_{t+1} ** 2)
        g = NAV_{t+1} / NAV_t                                     (net of fee and slippage)
        r_cost = -(churn_coef * |dpos_t| + smooth_coef * (dpos_t - dpos_{t-1}) ** 2)
        r_timing = +5 / -2 on the step that ends on bar s + N, for a BUY decided on bar s
                   (dpos_s > 0, filled at open[s+1]) whose close[s + N] is above / not above
                   open[s+1]; 0 on every other step (seed 004's timing bonus, plan B)

    The timing bonus is delayed, never anticipated: a BUY's outcome is known at bar s + N's
    close, and it is paid in the reward of the step that consumes that bar, so no future price
    reaches the reward of an earlier step or any observation. A BUY whose episode ends before
    bar s + N earns nothing. ``N = timing_bonus_horizon``; "BUY" and "good" are the definitions
    of :func:`~cryptorl_core.backtest.timing.timing_quality` (an increase of the position;
    the price N hours after the fill strictly higher than the fill).

    :param n_envs: number of parallel environments (the constructor may override it).
    :param episode_length: maximum steps of a training episode (``mode="random"``); an episode
        also ends when the next bar would leave its split.
    :param fee_bps: exchange fee, basis points of traded notional ``|dpos| * NAV``.
    :param slippage_bps: slippage, basis points of traded notional.
    :param action_gain: the target position is ``clip(action_gain * action)``. At 1 (the seed's
        mapping) a full position needs a saturated tanh, which the entropy bonus and gSDE's mean
        clip (|mean| <= 2, tanh 0.96) resist; at 2 half the action range already means full size.
    :param position_step: the target position is rounded to multiples of this (0 disables).
    :param long_only: clip the target position to ``[0, 1]`` instead of ``[-1, 1]``.
    :param execution_lag: 1 (default, honest): a decision taken on bar t's close is executed at
        bar t+1's open. 0: the new position earns bar t's own close-to-close return, a look-ahead
        cheat that exists only for the lag test.
    :param reward_scale: multiplier of the step utility in ``r_perf``.
    :param risk_aversion: relative risk aversion ``gamma`` of the step utility in ``r_perf``.
        At 1 (the seed) ``r_perf`` is the log growth, whose optimum is Kelly's ``mu / sigma^2``:
        clipped to +-1 for almost any drift, so the best policy is bang-bang and holds one
        position through a whole regime. The second-order term makes the expected utility
        ``pos * mu - gamma * pos^2 * sigma^2 / 2``, whose optimum ``mu / (gamma * sigma^2)`` is
        an interior position that shrinks with volatility and with doubt about the regime. It
        reads only the step's own realised growth, like the log term.
    :param hold_cost_bps: a shaping cost per bar on the square of the position held over it,
        in basis points of NAV (0, the default: off); in the reward only, never in the NAV, so
        no backtest figure includes it. Unlike the variance term it does not shrink with
        volatility: the best position becomes ``mu / (2 * hold + gamma * sigma^2)``, so a drift of
        a basis point or two an hour (what a calm regime shows in one train year by chance) is
        worth a small position, and a strong trend's still a full one. At 2 bp it halved the
        synthetic train windows' range spells held, and shrank bear shorts with weaker drift
        too; at 0.5, 1 and 2 bp it cut the collapsed train quarters (7 of 88 to 3-4) but none
        of the three passed the nested held-out rule (docs/EXPERIMENTS.md, "A hold cost" and
        the two sections after it). Without the overlay (``sizing="agent"``) 2 bp passed it:
        both profiles use :data:`PROFILE_HOLD_COST_BPS`.
    :param max_penalty_scale: multiplier of the weighted cost term (the seed's MAX_PENALTY_SCALE).
    :param curriculum_lambda: initial curriculum weight of the cost term (callbacks change it).
    :param churn_coef: initial penalty per unit of ``|dpos|``.
    :param smooth_coef: initial penalty on the squared change of ``dpos`` between steps.
    :param w_cost_low: lower end of the per-episode cost weight ``w_cost``.
    :param w_cost_high: upper end of ``w_cost``.
    :param w_cost_p_zero: probability that an episode gets ``w_cost = 0`` (pure performance).
    :param w_cost_alpha: Beta(alpha, beta) shape of ``w_cost`` on ``[low, high]`` (1, 1 = uniform).
    :param w_cost_beta: second Beta shape parameter.
    :param bankrupt_nav: an episode terminates (not truncates) when NAV falls to this or below.
    :param step_info: also put the per-step reward components (``reward_perf``, ``reward_cost``)
        in every ``infos[i]``; costs one small dict per env per step on the host, about as much
        as the rest of a CPU step. Off by default: the same values are always on the env as
        ``(n_envs,)`` tensors ``reward_perf``, ``reward_cost``, ``reward_churn``,
        ``reward_smooth``, which a callback reads with
        ``self.training_env.get_attr("reward_perf")[0]`` after each step.
    :param timing_bonus_scale: weight of seed 004's timing bonus ``r_timing`` in the reward
        (0, the default: off). Needs ``execution_lag=1``.
    :param timing_bonus_horizon: N, hours from a BUY's fill to the close that judges it; the
        default is :class:`~cryptorl_core.backtest.config.BacktestConfig`'s ``timing_horizon_h``.
    :param sizing: ``"agent"`` (default): the target position is the agent's
        ``clip(action_gain * action)`` on the grid. ``"vol_target"`` (plan B): the agent sets
        direction and timing, the sign of that target (0 when it rounds to flat), and the
        ``vol_target`` rule sets the size: ``sign * min(1, target_vol / trailing realised vol)``
        on the grid, from a per-row multiplier precomputed causally from closes up to the
        decision bar (:func:`~cryptorl_core.env.sizing.vol_target_size`). ``"vol_scaled"``: the
        agent's grid target times that multiplier, on the grid: the agent sizes by conviction,
        the multiplier scales its risk down when trailing volatility is above the train
        window's median.
    """

    n_envs: int = 16
    episode_length: int = 720
    fee_bps: float = 10.0
    slippage_bps: float = 2.0
    action_gain: float = 1.0
    position_step: float = 0.1
    long_only: bool = False
    execution_lag: int = 1
    reward_scale: float = 100.0
    risk_aversion: float = 1.0
    hold_cost_bps: float = 0.0
    max_penalty_scale: float = 1.0
    curriculum_lambda: float = 1.0
    churn_coef: float = 0.1
    smooth_coef: float = 0.1
    w_cost_low: float = 0.0
    w_cost_high: float = 1.0
    w_cost_p_zero: float = 0.0
    w_cost_alpha: float = 1.0
    w_cost_beta: float = 1.0
    bankrupt_nav: float = 0.1
    step_info: bool = False
    timing_bonus_scale: float = 0.0
    timing_bonus_horizon: int = 24
    sizing: str = "agent"

    #: The env is no pipeline stage: the agent's profiles pick :meth:`quick`, :meth:`seed` or :meth:`full`.
    PROFILES = ("quick", "full")

    def __post_init__(self) -> None:
        if self.n_envs < 1:
            raise ValueError(f"n_envs must be >= 1, got {self.n_envs}")
        if self.episode_length < 1:
            raise ValueError(f"episode_length must be >= 1, got {self.episode_length}")
        if self.execution_lag not in EXECUTION_LAGS:
            raise ValueError(
                f"execution_lag must be one of {EXECUTION_LAGS}, got {self.execution_lag}"
            )
        if self.fee_bps < 0 or self.slippage_bps < 0:
            raise ValueError("fee_bps and slippage_bps must be >= 0")
        if self.action_gain <= 0:
            raise ValueError(f"action_gain must be > 0, got {self.action_gain}")
        if not 0.0 <= self.position_step <= 1.0:
            raise ValueError(f"position_step must be in [0, 1], got {self.position_step}")
        if self.hold_cost_bps < 0:
            raise ValueError(f"hold_cost_bps must be >= 0, got {self.hold_cost_bps}")
        if self.risk_aversion < 1.0:
            raise ValueError(f"risk_aversion must be >= 1 (1 = log utility), got {self.risk_aversion}")
        if self.sizing not in SIZINGS:
            raise ValueError(f"sizing must be one of {SIZINGS}, got {self.sizing!r}")
        if self.timing_bonus_horizon < 1:
            raise ValueError(f"timing_bonus_horizon must be >= 1, got {self.timing_bonus_horizon}")
        if self.timing_bonus_scale != 0.0 and self.execution_lag != 1:
            raise ValueError("the timing bonus judges fills at the next open: it needs execution_lag=1")
        check_w_cost_distribution(
            self.w_cost_low,
            self.w_cost_high,
            self.w_cost_p_zero,
            self.w_cost_alpha,
            self.w_cost_beta,
        )

    @property
    def cost_rate(self) -> float:
        """Fee plus slippage as a fraction of traded notional."""
        return (self.fee_bps + self.slippage_bps) * BPS

    @property
    def sizes_by_overlay(self) -> bool:
        """Whether a sizing overlay (``sizing`` other than ``"agent"``) sizes the agent's target,
        so the executed position is not the agent's own decision."""
        return self.sizing != "agent"

    @classmethod
    def quick(cls) -> EnvConfig:
        """Small CPU configuration for smoke runs and tests (the project's reward and sizing as
        in :meth:`full`)."""
        return cls(n_envs=16, episode_length=256, **_profile_fields())

    @classmethod
    def seed(cls) -> EnvConfig:
        """The seeds' env (seed 000): month-long hourly episodes, 1024 parallel envs, the plain
        clip of the action to a position (gain 1), 10 bp fee + 2 bp slippage, reward scale 100."""
        return cls(n_envs=1024, episode_length=720)

    @classmethod
    def full(cls) -> EnvConfig:
        """:meth:`seed` with the project's action gain, risk aversion, hold cost and sizing
        (:data:`PROFILE_ACTION_GAIN`, :data:`PROFILE_RISK_AVERSION`, :data:`PROFILE_HOLD_COST_BPS`,
        :data:`PROFILE_SIZING`)."""
        return cls.seed().with_overrides(**_profile_fields())

    #: Copy with some fields changed (validated again): :meth:`replace` under the env's older name.
    with_overrides = ConfigBase.replace


def check_w_cost_distribution(
    low: float, high: float, p_zero: float, alpha: float, beta: float
) -> None:
    """Raise ``ValueError`` unless the parameters describe a distribution on ``[0, 1]``.

    :param low: lower end.
    :param high: upper end.
    :param p_zero: probability of exactly 0.
    :param alpha: first Beta shape.
    :param beta: second Beta shape.
    """
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"need 0 <= low <= high <= 1, got low={low}, high={high}")
    if not 0.0 <= p_zero <= 1.0:
        raise ValueError(f"p_zero must be in [0, 1], got {p_zero}")
    if alpha <= 0 or beta <= 0:
        raise ValueError(f"Beta shapes must be > 0, got alpha={alpha}, beta={beta}")


def _profile_fields() -> dict[str, float | str]:
    """The env fields both profiles take from the project's measurements (the ``PROFILE_*`` values)."""
    return {"action_gain": PROFILE_ACTION_GAIN, "risk_aversion": PROFILE_RISK_AVERSION,
            "hold_cost_bps": PROFILE_HOLD_COST_BPS, "sizing": PROFILE_SIZING}
