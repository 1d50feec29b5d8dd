"""``cryptorl_core.settings``: every CRYPTORL_* variable, its default and override, and the
storage layout the Dagster side and the compare CLI share."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import dagster as dg
import pytest

from cryptorl_core import settings
from cryptorl_core.settings import StorageLayout
from cryptorl_dagster.resources.profile import ProfileResource

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in settings.ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_defaults_with_nothing_set(no_env):
    assert settings.project_root() == REPO  # the source checkout
    assert settings.storage_root() == REPO / "storage"
    assert settings.profile_name() == "quick"
    assert settings.data_dir() == ""
    assert settings.dedup_policy() == ""
    assert settings.device_request() == "auto"


def test_overrides(no_env, tmp_path: Path):
    no_env.setenv("CRYPTORL_STORAGE", str(tmp_path / "s"))
    no_env.setenv("CRYPTORL_PROFILE", "full")
    no_env.setenv("CRYPTORL_DATA_DIR", "/data/market")
    no_env.setenv("CRYPTORL_DEDUP", "keep_last")
    no_env.setenv("CRYPTORL_DEVICE", " CUDA ")
    assert settings.storage_root() == tmp_path / "s"
    assert settings.profile_name() == "full"
    assert settings.data_dir() == "/data/market"
    assert settings.dedup_policy() == "keep_last"
    assert settings.device_request() == "cuda"


def test_empty_counts_as_unset_and_paths_are_absolute(no_env, tmp_path: Path):
    no_env.setenv("CRYPTORL_STORAGE", "  ")
    no_env.setenv("CRYPTORL_PROFILE", "")
    assert settings.storage_root() == REPO / "storage"
    assert settings.profile_name() == "quick"
    no_env.chdir(tmp_path)
    no_env.setenv("CRYPTORL_STORAGE", "rel/store")
    assert settings.storage_root() == tmp_path / "rel" / "store"
    no_env.setenv("HOME", str(tmp_path))
    no_env.setenv("CRYPTORL_STORAGE", "~/store")
    assert settings.storage_root() == tmp_path / "store"


def test_explicit_mapping_instead_of_the_environment(no_env):
    environ = {"CRYPTORL_STORAGE": "/x/y", "CRYPTORL_MAX_GAP_MACRO_HOURS": "72"}
    assert settings.storage_root(environ) == Path("/x/y")
    assert settings.env_int(settings.MAX_GAP_MACRO_ENV, 168, environ) == 72
    assert settings.env_int(settings.MAX_GAP_CRYPTO_ENV, 48, environ) == 48
    with pytest.raises(ValueError, match="CRYPTORL_MAX_GAP_MACRO_HOURS"):
        settings.env_int(settings.MAX_GAP_MACRO_ENV, 168, {"CRYPTORL_MAX_GAP_MACRO_HOURS": "3 days"})


def test_storage_layout(no_env, tmp_path: Path):
    layout = StorageLayout(tmp_path)
    assert {p.name for p in (layout.history, layout.schedules, layout.logs, layout.dagster, layout.artifacts,
                             layout.checkpoints, layout.frames, layout.io)} == {
        "history", "schedules", "logs", "dagster", "artifacts", "checkpoints", "frames", "io"}
    assert layout.frame("features", "2025-Q4") == tmp_path / "frames" / "features" / "2025-Q4.parquet"
    assert layout.artifact("hmm_model", "2025-Q4") == tmp_path / "artifacts" / "hmm_model" / "2025-Q4"
    assert layout.artifact("wfo_summary") == tmp_path / "artifacts" / "wfo_summary" / "all"
    no_env.setenv("CRYPTORL_STORAGE", str(tmp_path))
    assert settings.storage_layout() == layout


def test_every_cryptorl_variable_in_the_code_is_named_in_settings():
    """No module reads a CRYPTORL_* variable that settings does not own."""
    found: set[str] = set()
    for path in [*REPO.glob("cryptorl_core/**/*.py"), *REPO.glob("cryptorl_dagster/**/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found |= set(re.findall(r"^CRYPTORL_[A-Z_]+$", node.value))
    assert found <= set(settings.ENV_VARS), found - set(settings.ENV_VARS)


def test_dagster_side_uses_the_settings(no_env, tmp_path: Path):
    from cryptorl_core import compare
    from cryptorl_dagster.resources import ArtifactStore, ParquetFrameIOManager, storage_root
    from cryptorl_dagster.resources.market import MarketSource

    no_env.setenv("CRYPTORL_STORAGE", str(tmp_path))
    assert storage_root() == compare.storage_root() == tmp_path
    store = ArtifactStore()
    assert store.path("hmm_model", "2025-Q4") == StorageLayout(tmp_path).artifact("hmm_model", "2025-Q4")
    assert store.checkpoint_dir("tqc_policy", "2025-Q4").parent.parent == tmp_path / "checkpoints"
    assert ParquetFrameIOManager().base_dir == ""  # resolved per call: <storage>/frames

    # Unset: plain defaults (zero configuration); set: dg.EnvVar, resolved in the run.
    assert ProfileResource.from_env().name == "quick"
    assert MarketSource.from_env().data_dir == ""
    no_env.setenv("CRYPTORL_PROFILE", "seed001")
    no_env.setenv("CRYPTORL_DATA_DIR", str(tmp_path))
    profile, source = ProfileResource.from_env(), MarketSource.from_env()
    assert isinstance(profile.name, dg.EnvVar) and profile.name.env_var_name == "CRYPTORL_PROFILE"
    assert isinstance(source.data_dir, dg.EnvVar) and source.data_dir.env_var_name == "CRYPTORL_DATA_DIR"
    assert MarketSource.from_settings().data_dir == str(tmp_path)  # the partitions' view


def test_profile_env_var_reaches_the_asset(no_env):
    """``dg.EnvVar("CRYPTORL_PROFILE")`` resolves to the variable's value inside a run."""
    no_env.setenv("CRYPTORL_PROFILE", "seed000")

    @dg.asset
    def which_profile(profile: ProfileResource) -> str:
        return profile.pipeline().name

    result = dg.materialize([which_profile], resources={"profile": ProfileResource.from_env()})
    assert result.output_for_node("which_profile") == "seed000"


def test_compare_cli_reads_where_the_assets_write(tmp_path: Path):
    """The HMM context the regime asset publishes (artifacts/hmm_model/<key>/context.parquet)."""
    import pandas as pd

    from cryptorl_core.compare import HMM_CONTEXT_FILENAME, default_hmm_context
    from cryptorl_core.schema import HMM_COLUMNS
    from cryptorl_dagster.assets import encoder, regime

    assert regime.ASSET_NAME == "hmm_model" and encoder.ASSET_NAME == "mae_encoder"
    assert "context.parquet" == HMM_CONTEXT_FILENAME
    index = pd.date_range("2025-01-01", periods=3, freq="h", tz="UTC")
    context = pd.DataFrame({c: [0.25, 0.5, 0.25] for c in HMM_COLUMNS}, index=index)
    folder = StorageLayout(tmp_path).artifact(regime.ASSET_NAME, "2099-Q1")
    folder.mkdir(parents=True)
    context.to_parquet(folder / HMM_CONTEXT_FILENAME)
    got = default_hmm_context(tmp_path, "2099-Q1", pd.DataFrame(index=index))
    pd.testing.assert_frame_equal(got, context, check_freq=False)
    assert default_hmm_context(tmp_path, "2099-Q2", pd.DataFrame(index=index)) is None


def test_library_never_imports_dagster():
    """``cryptorl_core`` (settings included) stays free of Dagster."""
    offenders = []
    for path in REPO.glob("cryptorl_core/**/*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.relative_to(REPO)}: {n}" for n in names if n.split(".")[0].startswith("dagster")]
    assert not offenders, offenders
