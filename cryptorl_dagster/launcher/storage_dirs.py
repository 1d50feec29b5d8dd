"""Local storage classes rooted at ``base_dir/subdir``.

``dagster.yaml`` can only read a whole env var (``{env: CRYPTORL_STORAGE}``), not join paths;
these let compute logs and Dagster's artifact storage live in ``storage/logs`` and
``storage/dagster`` (the folders ``make clean`` removes) instead of the root of ``storage/``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from dagster import Field, StringSource
from dagster._core.storage.local_compute_log_manager import LocalComputeLogManager
from dagster._core.storage.root import LocalArtifactStorage
from dagster._serdes import ConfigurableClassData


class SubdirArtifactStorage(LocalArtifactStorage):
    """``LocalArtifactStorage`` whose storage dir is ``base_dir/subdir`` (no extra ``storage``)."""

    def __init__(self, base_dir: str, subdir: str, inst_data: ConfigurableClassData | None = None):
        self._subdir = subdir
        super().__init__(base_dir=base_dir, inst_data=inst_data)

    @property
    def storage_dir(self) -> str:
        return os.path.join(self.base_dir, self._subdir)

    def file_manager_dir(self, run_id: str) -> str:
        return os.path.join(self.storage_dir, run_id, "files")

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {"base_dir": StringSource, "subdir": Field(StringSource, default_value="dagster")}

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
            "subdir": Field(StringSource, default_value="logs"),
        }

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]
    ) -> SubdirComputeLogManager:
        config = dict(config_value)
        config["base_dir"] = os.path.join(config["base_dir"], config.pop("subdir"))
        return cls(inst_data=inst_data, **config)
