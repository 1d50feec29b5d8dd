"""Artifact storage under ``storage/``: published per-partition folders and resumable checkpoints."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from cryptorl_core.settings import StorageLayout, storage_layout, storage_root

__all__ = ["ArtifactStore", "storage_root"]


class ArtifactStore(dg.ConfigurableResource):
    """Files an asset leaves for people and later stages (plots, models, CSVs).

    A materialization writes into a staging folder that replaces the published folder
    only when the asset succeeds, so a failed run never loses or overwrites what an
    earlier run published. Checkpoints live apart and survive failures (for resume).

    :param base_dir: root folder; empty means ``<storage>/artifacts`` (``cryptorl_core.settings``);
        checkpoints go beside it (``<storage>/checkpoints``).
    """

    base_dir: str = ""

    @property
    def root(self) -> Path:
        return Path(self.base_dir) if self.base_dir else storage_layout().artifacts

    def path(self, asset: str, partition: str | None = None) -> Path:
        """The published folder of an asset (partition)."""
        return self.root / asset / (partition or "all")

    def checkpoint_dir(self, asset: str, partition: str | None = None) -> Path:
        """Persistent folder for resumable training state."""
        path = self.root.parent / StorageLayout.CHECKPOINTS / asset / (partition or "all")
        path.mkdir(parents=True, exist_ok=True)
        return path

    @contextmanager
    def publish(self, asset: str, partition: str | None = None) -> Iterator[Path]:
        """Yield a staging folder; on success it atomically becomes :meth:`path`."""
        final = self.path(asset, partition)
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = final.parent / f".staging-{final.name}-{uuid.uuid4().hex[:8]}"
        staging.mkdir()
        try:
            yield staging
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        old = final.parent / f".old-{final.name}-{uuid.uuid4().hex[:8]}"
        if final.exists():
            final.rename(old)
        staging.rename(final)
        shutil.rmtree(old, ignore_errors=True)
