"""Dagster resources: artifact storage, market source, configuration profile, IO managers."""

from cryptorl_dagster.resources.artifacts import ArtifactStore, storage_root
from cryptorl_dagster.resources.io_managers import ParquetFrameIOManager
from cryptorl_dagster.resources.market import MarketSource
from cryptorl_dagster.resources.profile import ProfileResource

__all__ = ["ArtifactStore", "MarketSource", "ParquetFrameIOManager", "ProfileResource", "storage_root"]


def default_resources() -> dict:
    """Resources of the code location, configured from the environment."""
    import dagster as dg

    return {
        "artifacts": ArtifactStore(),
        "market_source": MarketSource.from_env(),
        "profile": ProfileResource.from_env(),
        "frame_io_manager": ParquetFrameIOManager(),
        "io_manager": dg.FilesystemIOManager(base_dir=str(storage_root() / "io")),
    }
