"""The configuration profile (quick / full) every stage reads."""

from __future__ import annotations

import os

import dagster as dg

from cryptorl_core.profiles import PipelineConfig

PROFILE_ENV = "CRYPTORL_PROFILE"


class ProfileResource(dg.ConfigurableResource):
    """Selects the typed pipeline configuration.

    :param name: ``quick`` (CPU minutes) or ``full`` (the seed's hyper-parameters).
    """

    name: str = "quick"

    @classmethod
    def from_env(cls) -> ProfileResource:
        return cls(name=os.environ.get(PROFILE_ENV, "quick"))

    def pipeline(self) -> PipelineConfig:
        return PipelineConfig.profile(self.name)
