"""Cost curricula of training: what the env's cost shaping is at each point of training.

- :func:`curriculum_values` / :class:`CurriculumCallback`: three-phase cost curriculum
  (Discovery, Discipline, Consolidation) on the env's attributes;
- :func:`w_cost_distribution` / :class:`WCostCurriculumCallback`: widens the MORL cost-weight
  distribution over training.
"""

from __future__ import annotations

from dataclasses import dataclass

from stable_baselines3.common.callbacks import BaseCallback

from cryptorl_core.agent.config import AgentConfig


def training_progress(num_timesteps: int, total_timesteps: int) -> float:
    """Fraction of training done, in ``[0, 1]``."""
    return min(1.0, max(0.0, num_timesteps / max(total_timesteps, 1)))


def _ramp(x: float, start: float, end: float) -> float:
    """0 before ``start``, 1 after ``end``, linear in between."""
    if end <= start:
        return 1.0 if x >= end else 0.0
    return min(1.0, max(0.0, (x - start) / (end - start)))


@dataclass(frozen=True)
class CurriculumValues:
    """Cost-shaping values of the env at one point of training.

    :param phase: 0 Discovery, 1 Discipline, 2 Consolidation.
    :param churn_coef: penalty per unit of ``|dpos|``.
    :param smooth_coef: penalty on the squared change of ``dpos``.
    :param curriculum_lambda: weight of the whole cost term.
    """

    phase: int
    churn_coef: float
    smooth_coef: float
    curriculum_lambda: float


PHASE_NAMES = ("discovery", "discipline", "consolidation")


def curriculum_values(progress: float, config: AgentConfig) -> CurriculumValues:
    """The three-phase curriculum.

    - Discovery (``0 .. discovery_end``): churn ``0 -> churn_discovery``, no smoothness penalty,
      so the agent first finds out that positions pay;
    - Discipline (``.. discipline_end``): churn ``-> churn_final``, smoothness ``0 -> smooth_final``;
    - Consolidation (rest): fixed.

    ``curriculum_lambda`` ramps ``0 -> lambda_final`` over Discovery and Discipline.
    """
    d_end, c_end = config.discovery_end, config.discipline_end
    if progress < d_end:
        phase = 0
        churn = config.churn_discovery * _ramp(progress, 0.0, d_end)
        smooth = 0.0
    else:
        phase = 1 if progress < c_end else 2
        f = _ramp(progress, d_end, c_end)
        churn = config.churn_discovery + (config.churn_final - config.churn_discovery) * f
        smooth = config.smooth_final * f
    lam = config.lambda_final * _ramp(progress, 0.0, c_end)
    return CurriculumValues(phase, float(churn), float(smooth), float(lam))


def final_curriculum(config: AgentConfig) -> CurriculumValues:
    """The Consolidation values (what evaluation judges the policy against)."""
    return curriculum_values(1.0, config)


class CurriculumCallback(BaseCallback):
    """Sets ``churn_coef``, ``smooth_coef`` and ``curriculum_lambda`` on the training env
    from training progress (:func:`curriculum_values`).

    :param config: the agent configuration (phase boundaries and targets, total timesteps).
    """

    def __init__(self, config: AgentConfig, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.config = config
        self.current: CurriculumValues | None = None

    def _apply(self) -> None:
        values = curriculum_values(training_progress(self.num_timesteps, self.config.total_timesteps), self.config)
        if values != self.current:
            env = self.training_env
            env.set_attr("churn_coef", values.churn_coef)
            env.set_attr("smooth_coef", values.smooth_coef)
            env.set_attr("curriculum_lambda", values.curriculum_lambda)
            self.current = values
        self.logger.record("curriculum/phase", values.phase)
        self.logger.record("curriculum/lambda", values.curriculum_lambda)
        self.logger.record("curriculum/churn_coef", values.churn_coef)
        self.logger.record("curriculum/smooth_coef", values.smooth_coef)

    def _on_training_start(self) -> None:
        self._apply()

    def _on_step(self) -> bool:
        self._apply()
        return True


@dataclass(frozen=True)
class WCostDistribution:
    """Arguments of ``BatchCryptoEnv.set_w_cost_distribution``."""

    low: float
    high: float
    p_zero: float


def w_cost_distribution(progress: float, config: AgentConfig) -> WCostDistribution:
    """MORL cost-weight curriculum: ``w_cost ~ U[0, high]`` (0 with probability ``p_zero``),
    ``high`` widening linearly from ``w_cost_start_high`` to 1 and ``p_zero`` shrinking from
    ``w_cost_start_p_zero`` to ``w_cost_final_p_zero`` by ``w_cost_widen_end``. Early episodes
    are mostly cheap, so the agent learns to trade before it learns what trading costs."""
    f = _ramp(progress, 0.0, config.w_cost_widen_end)
    high = config.w_cost_start_high + (1.0 - config.w_cost_start_high) * f
    p_zero = config.w_cost_start_p_zero + (config.w_cost_final_p_zero - config.w_cost_start_p_zero) * f
    return WCostDistribution(0.0, float(high), float(p_zero))


class WCostCurriculumCallback(BaseCallback):
    """Widens the training env's ``w_cost`` distribution over training (:func:`w_cost_distribution`).

    New values apply to episodes that start afterwards (running episodes keep their weight).

    :param config: the agent configuration.
    :param min_change: re-send the distribution only when ``high`` or ``p_zero`` moved this much.
    """

    def __init__(self, config: AgentConfig, min_change: float = 1e-3, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.config = config
        self.min_change = min_change
        self.current: WCostDistribution | None = None

    def _apply(self, force: bool = False) -> None:
        dist = w_cost_distribution(training_progress(self.num_timesteps, self.config.total_timesteps), self.config)
        cur = self.current
        if force or cur is None or abs(dist.high - cur.high) >= self.min_change or abs(dist.p_zero - cur.p_zero) >= self.min_change:
            self.training_env.env_method("set_w_cost_distribution", dist.low, dist.high, dist.p_zero)
            self.current = dist
            self.logger.record("curriculum/w_cost_high", dist.high)
            self.logger.record("curriculum/w_cost_p_zero", dist.p_zero)

    def _on_training_start(self) -> None:
        self._apply(force=True)

    def _on_step(self) -> bool:
        self._apply()
        return True
