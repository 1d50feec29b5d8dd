"""The base of the training assets' run configurations (launchpad / tests overrides)."""

from __future__ import annotations

from typing import Any, Protocol, TypeVar, cast

import dagster as dg


class Replaceable(Protocol):
    """A stage configuration (:class:`~cryptorl_core.config_base.ConfigBase`): copied with changes."""

    def replace(self, **changes: Any) -> Any: ...


C = TypeVar("C", bound=Replaceable)


class RunOverrides(dg.Config):
    """Per-run overrides of a stage's profile configuration: every field is optional (``None``:
    keep the profile's value) and names the stage-config field it sets."""

    def overrides(self) -> dict[str, Any]:
        """The fields this run sets."""
        return {k: v for k, v in self.model_dump().items() if v is not None}

    def apply(self, config: C) -> C:
        """``config`` with the fields this run sets."""
        changes = self.overrides()
        return cast(C, config.replace(**changes)) if changes else config
