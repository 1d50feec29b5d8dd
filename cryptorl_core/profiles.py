"""Configuration profiles (:data:`PROFILES`): ``quick`` (CPU minutes), ``full`` (full size),
``seed000`` / ``seed001`` (the seeds exactly) and ``simple`` (seed 004's plan B).

Each stage owns its configuration class (a :class:`~cryptorl_core.config_base.ConfigBase`
dataclass); this module only composes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptorl_core.agent.config import AgentConfig
from cryptorl_core.backtest.config import BacktestConfig
from cryptorl_core.config_base import PROFILE_NAMES, ConfigBase
from cryptorl_core.encoder.config import MAEConfig
from cryptorl_core.features.config import FeatureConfig
from cryptorl_core.regime.config import HMMConfig
from cryptorl_core.segments import WindowConfig

#: Every profile name (defined in :mod:`cryptorl_core.config_base`, which every stage's config imports).
PROFILES = PROFILE_NAMES


@dataclass(frozen=True)
class PipelineConfig(ConfigBase):
    """Every stage's configuration, one typed object.

    :param name: profile name.
    :param windows: walk-forward window lengths (the same in both profiles).
    :param features: feature configuration.
    :param hmm: regime model configuration.
    :param mae: masked-autoencoder configuration.
    :param agent: agent, training environment and callback configuration.
    :param backtest: backtest, baselines and collapse-audit configuration.
    :param lookahead_cuts: cut points of the look-ahead checks.
    """

    name: str = "quick"
    windows: WindowConfig = field(default_factory=WindowConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig.quick)
    hmm: HMMConfig = field(default_factory=HMMConfig.quick)
    mae: MAEConfig = field(default_factory=MAEConfig.quick)
    agent: AgentConfig = field(default_factory=AgentConfig.quick)
    backtest: BacktestConfig = field(default_factory=BacktestConfig.quick)
    lookahead_cuts: int = 12

    @classmethod
    def quick(cls) -> PipelineConfig:
        return cls(name="quick")

    @classmethod
    def full(cls) -> PipelineConfig:
        """Full size: the seeds' encoder and seed 001's agent with the project's measured
        departures (:data:`~cryptorl_core.agent.config.FULL_DEPARTURES_FROM_SEED`)."""
        return cls._full_size("full", MAEConfig.full(), AgentConfig.full())

    @classmethod
    def seed000(cls) -> PipelineConfig:
        """Seed 000 exactly: its encoder and its agent (``docs/SEEDS.md``)."""
        return cls._full_size("seed000", MAEConfig.seed000(), AgentConfig.seed000())

    @classmethod
    def seed001(cls) -> PipelineConfig:
        """Seed 001 exactly: seed 000's encoder and seed 001's agent."""
        return cls._full_size("seed001", MAEConfig.seed001(), AgentConfig.seed001())

    @classmethod
    def simple(cls) -> PipelineConfig:
        """Seed 004's plan B "V7 ultra-simple": the full-size stages on BTC's 12 features
        (:meth:`FeatureConfig.simple`) with :meth:`AgentConfig.simple` (pure PnL, 10M steps)."""
        return cls._full_size("simple", MAEConfig.full(), AgentConfig.simple()).replace(
            features=FeatureConfig.simple())

    @classmethod
    def _full_size(cls, name: str, mae: MAEConfig, agent: AgentConfig) -> PipelineConfig:
        """The full-size stages shared by every seed profile, with ``mae`` and ``agent``."""
        return cls(name=name, features=FeatureConfig.full(), hmm=HMMConfig.full(), mae=mae, agent=agent,
                   backtest=BacktestConfig.full(), lookahead_cuts=24)
