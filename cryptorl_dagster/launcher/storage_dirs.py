"""Local instance storage rooted at the project's storage folder, with no env var required.

``dagster.yaml`` can only read a whole env var (``{env: CRYPTORL_STORAGE}``, which fails when
the variable is unset) and cannot join paths. These classes take an optional ``base_dir``
and default to ``cryptorl_core.settings.storage_root()`` (``$CRYPTORL_STORAGE`` or
``<repo>/storage``), so plain ``dagster dev``, ``dg dev`` and ``dagster asset materialize`` in
the repository root keep all state under ``storage/``:

- :class:`CryptoRLSqliteStorage`: runs, event logs (``history/``) and schedules (``schedules/``);
- :class:`SubdirArtifactStorage`: Dagster's local artifact storage in ``dagster/``;
- :class:`SubdirComputeLogManager`: compute logs in ``logs/``.

Each process (webserver, daemon, code server, run worker) resolves the default itself from
the same settings, so they agree as long as they share the environment (they inherit it).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from dagster import Field, StringSource

from cryptorl_core.settings import StorageLayout, storage_root
from cryptorl_dagster.launcher._dagster_internal import (
    ConfigurableClassData,
    DagsterSqliteStorage,
    LocalArtifactStorage,
    LocalComputeLogManager,
)

_BASE_DIR_DESCRIPTION = "Storage root; default $CRYPTORL_STORAGE or <repo>/storage."


def _base_dir_field() -> Field:
    return Field(StringSource, is_required=False, description=_BASE_DIR_DESCRIPTION)


def resolve_base_dir(value: str | None) -> str:
    """An explicit ``base_dir`` (made absolute), else the settings' storage root."""
    return os.path.abspath(os.path.expanduser(value)) if value else str(storage_root())


class CryptoRLSqliteStorage(DagsterSqliteStorage):
    """Dagster's sqlite storage (``history/``, ``schedules/``) under the storage root.

    ``dagster.yaml``: ``storage: {custom: {module: cryptorl_dagster.launcher,
    class: CryptoRLSqliteStorage, config: {}}}``; ``config: {base_dir: ...}`` overrides the root.
    """

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {"base_dir": _base_dir_field()}

    @classmethod
    def from_config_value(  # type: ignore[override]
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> CryptoRLSqliteStorage:
        return cls.from_local(resolve_base_dir(config_value.get("base_dir")), inst_data=inst_data)


class SubdirArtifactStorage(LocalArtifactStorage):
    """``LocalArtifactStorage`` whose storage dir is ``base_dir/subdir`` (no extra ``storage``)."""

    def __init__(
        self, base_dir: str | None = None, subdir: str = StorageLayout.DAGSTER,
        inst_data: ConfigurableClassData | None = None,
    ):
        self._subdir = subdir
        super().__init__(base_dir=resolve_base_dir(base_dir), inst_data=inst_data)

    @property
    def storage_dir(self) -> str:
        return os.path.join(self.base_dir, self._subdir)

    def file_manager_dir(self, run_id: str) -> str:
        return os.path.join(self.storage_dir, run_id, "files")

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {
            "base_dir": _base_dir_field(),
            "subdir": Field(StringSource, default_value=StorageLayout.DAGSTER),
        }

    @classmethod
    def from_config_value(  # type: ignore[override]
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> SubdirArtifactStorage:
        return cls(inst_data=inst_data, **config_value)


class SubdirComputeLogManager(LocalComputeLogManager):
    """``LocalComputeLogManager`` writing to ``base_dir/subdir``."""

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {
            **LocalComputeLogManager.config_type(),
            "base_dir": _base_dir_field(),
            "subdir": Field(StringSource, default_value=StorageLayout.LOGS),
        }

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]
    ) -> SubdirComputeLogManager:
        config = dict(config_value)
        base_dir = resolve_base_dir(config.pop("base_dir", None))
        config["base_dir"] = os.path.join(base_dir, config.pop("subdir"))
        return cls(inst_data=inst_data, **config)
