"""Dagster resources: artifact storage, market source, configuration profile, IO managers.

Environment variables and storage folders come from ``cryptorl_core.settings``.
"""

from cryptorl_dagster.resources.artifacts import ArtifactStore, storage_root
from cryptorl_dagster.resources.io_managers import ParquetFrameIOManager
from cryptorl_dagster.resources.market import MarketSource
from cryptorl_dagster.resources.profile import ProfileResource

__all__ = ["ArtifactStore", "MarketSource", "ParquetFrameIOManager", "ProfileResource", "storage_root"]


def default_resources() -> dict:
    """Resources of the code location.

    ``$CRYPTORL_PROFILE``, ``$CRYPTORL_DATA_DIR`` and ``$CRYPTORL_DEDUP`` reach the resources as
    ``dg.EnvVar`` when set (resolved in the run worker, shown as env vars in the UI), else as
    their defaults (quick profile, synthetic market). Storage folders follow
    ``$CRYPTORL_STORAGE`` or ``<repo>/storage`` (``cryptorl_core.settings.StorageLayout``).
    """
    import dagster as dg

    from cryptorl_core.settings import storage_layout

    return {
        "artifacts": ArtifactStore(),
        "market_source": MarketSource.from_env(),
        "profile": ProfileResource.from_env(),
        "frame_io_manager": ParquetFrameIOManager(),
        "io_manager": dg.FilesystemIOManager(base_dir=str(storage_layout().io)),
    }
