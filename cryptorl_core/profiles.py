"""Configuration profiles: ``quick`` (CPU minutes) and ``full`` (the seed's hyper-parameters)."""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptorl_core.features.config import FeatureConfig
from cryptorl_core.segments import WindowConfig

PROFILES = ("quick", "full")


@dataclass(frozen=True)
class PipelineConfig:
    """Every stage's configuration, one typed object.

    :param name: profile name.
    :param windows: walk-forward window lengths (the same in both profiles).
    :param features: feature configuration.
    :param lookahead_cuts: cut points of the look-ahead checks.
    """

    name: str = "quick"
    windows: WindowConfig = field(default_factory=WindowConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    lookahead_cuts: int = 12

    @classmethod
    def profile(cls, name: str) -> PipelineConfig:
        """Build a named profile."""
        if name not in PROFILES:
            raise ValueError(f"unknown profile {name!r}; choose one of {PROFILES}")
        return getattr(cls, name)()

    @classmethod
    def quick(cls) -> PipelineConfig:
        return cls(name="quick", features=FeatureConfig.quick())

    @classmethod
    def full(cls) -> PipelineConfig:
        return cls(name="full", features=FeatureConfig.full(), lookahead_cuts=24)
