"""Shared fixtures: the synthetic market, the latest segment, its frames, and Dagster
resources that keep every file under the test's temporary folder."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from cryptorl_core.data.market import MarketData
from cryptorl_core.data.synthetic import generate_synthetic_market
from cryptorl_core.device import cpu_threads
from cryptorl_core.features.config import FeatureConfig
from cryptorl_core.features.pipeline import build_segment_frame
from cryptorl_core.segments import HOUR, Segment, WindowConfig, walk_forward_segments

warnings.filterwarnings("ignore", category=dg.PreviewWarning)

#: Real market data for development; tests that use it skip when it is absent.
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def sb3_log_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where Stable-Baselines3's default logger writes when a test helper calls ``learn`` without
    the project's trainer (which gives it no folder at all): pytest's own temporary folder, not a
    new ``/tmp/SB3-<time>`` per run."""
    folder = tmp_path_factory.mktemp("sb3")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SB3_LOGDIR", str(folder))
        yield folder


@pytest.fixture(scope="session")
def synthetic_market() -> MarketData:
    return generate_synthetic_market()


@pytest.fixture(scope="session")
def latest_segment(synthetic_market: MarketData) -> Segment:
    return walk_forward_segments(synthetic_market.start, synthetic_market.end)[-1]


@pytest.fixture(scope="session")
def raw_slice(synthetic_market: MarketData, latest_segment: Segment) -> pd.DataFrame:
    """The market rows the latest segment needs (warm-up to test end)."""
    start = latest_segment.train_start - WindowConfig().warmup_hours * HOUR
    f = synthetic_market.frame
    return f.loc[(f.index >= start) & (f.index < latest_segment.test_end)]


@pytest.fixture(scope="session")
def segment_frame(raw_slice: pd.DataFrame, latest_segment: Segment) -> pd.DataFrame:
    """The features of the latest synthetic segment, with the fitted parameters in attrs."""
    frame, params, _ = build_segment_frame(raw_slice, latest_segment, FeatureConfig())
    frame.attrs = {"feature_params": params.as_dict(), "fingerprint": params.fingerprint()}
    return frame


@pytest.fixture
def dagster_resources(tmp_path: Path) -> dict:
    """The code location's resources, writing under ``tmp_path`` with the quick profile."""
    from cryptorl_dagster.resources import (
        ArtifactStore,
        MarketSource,
        ParquetFrameIOManager,
        ProfileResource,
    )

    return {
        "artifacts": ArtifactStore(base_dir=str(tmp_path / "artifacts")),
        "market_source": MarketSource(),
        "profile": ProfileResource(name="quick"),
        "frame_io_manager": ParquetFrameIOManager(base_dir=str(tmp_path / "frames")),
        "io_manager": dg.FilesystemIOManager(base_dir=str(tmp_path / "io")),
    }


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models train far faster on one thread than with two threads spinning against
    other processes on a small shared CPU (measured 4.5 s vs 68 s)."""
    with cpu_threads(1):
        yield


@pytest.fixture
def latest_key() -> str:
    from cryptorl_dagster.partitions import segments

    return segments()[-1].key
