"""The configuration profile (quick, full, seed000, seed001, simple) every stage reads."""

from __future__ import annotations

import dagster as dg

from cryptorl_core import settings
from cryptorl_core.profiles import PipelineConfig
from cryptorl_dagster.resources.market import env_or

PROFILE_ENV = settings.PROFILE_ENV


class ProfileResource(dg.ConfigurableResource):
    """Selects the typed pipeline configuration.

    :param name: ``quick`` (CPU minutes), ``full`` (full size, seed 001 with the project's
        measured departures), ``seed000`` or ``seed001`` (the seeds exactly; ``docs/SEEDS.md``),
        ``simple`` (seed 004's plan B "V7 ultra-simple").
    """

    name: str = settings.DEFAULT_PROFILE

    @classmethod
    def from_env(cls) -> ProfileResource:
        """The code location's resource: ``dg.EnvVar("CRYPTORL_PROFILE")`` when set, else ``quick``."""
        return cls(name=env_or(PROFILE_ENV, settings.DEFAULT_PROFILE))

    def pipeline(self) -> PipelineConfig:
        return PipelineConfig.profile(self.name)
