"""The configuration profile (quick, full, seed000, seed001) every stage reads."""

from __future__ import annotations

import os

import dagster as dg

from cryptorl_core.profiles import PipelineConfig

PROFILE_ENV = "CRYPTORL_PROFILE"


class ProfileResource(dg.ConfigurableResource):
    """Selects the typed pipeline configuration.

    :param name: ``quick`` (CPU minutes), ``full`` (full size, seed 001 with the project's
        measured departures), ``seed000`` or ``seed001`` (the seeds exactly; ``docs/SEEDS.md``).
    """

    name: str = "quick"

    @classmethod
    def from_env(cls) -> ProfileResource:
        return cls(name=os.environ.get(PROFILE_ENV, "quick"))

    def pipeline(self) -> PipelineConfig:
        return PipelineConfig.profile(self.name)
