"""The ``mae_encoder`` asset: materializes after ``features`` on the synthetic market,
publishes a loadable ``encoder.pth`` and reports its training in the metadata."""

from __future__ import annotations

import dagster as dg
import pytest
import torch

from cryptorl_core.encoder import EncoderArtifact, MAEConfig, load_encoder
from cryptorl_core.encoder.train import DONE_FILE
from cryptorl_core.schema import feature_columns
from cryptorl_dagster.assets.encoder import EncoderRunConfig, mae_encoder
from cryptorl_dagster.assets.features import features
from cryptorl_dagster.assets.market import raw_market_data
from cryptorl_dagster.tags import GPU_TAGS

#: The quick profile cut to two short epochs by the run config, so the test stays within seconds on a CPU.
TINY_RUN = EncoderRunConfig(epochs=2, max_train_windows=128, max_eval_windows=64)
TINY_QUICK = MAEConfig.quick().replace(epochs=2, max_train_windows=128, max_eval_windows=64)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def cpu_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRYPTORL_DEVICE", "cpu")


def test_run_config_overrides_the_profile() -> None:
    assert EncoderRunConfig().apply(MAEConfig.quick()) == MAEConfig.quick()  # nothing set: the profile's
    assert TINY_RUN.apply(MAEConfig.quick()) == TINY_QUICK
    assert EncoderRunConfig(seed=3, amp=False, compile=False).apply(MAEConfig.full()) == MAEConfig.full().replace(
        seed=3, amp=False, compile=False)
    assert set(EncoderRunConfig.model_fields) <= set(MAEConfig().as_dict())  # every field is MAEConfig's


def test_asset_is_partitioned_and_gpu_tagged() -> None:
    spec = mae_encoder.specs_by_key[dg.AssetKey("mae_encoder")]
    assert spec.group_name == "encoder"
    assert mae_encoder.partitions_def is not None
    assert GPU_TAGS.items() <= mae_encoder.op.tags.items()
    assert dg.AssetKey("features") in mae_encoder.keys_by_input_name.values()


def test_mae_encoder_materializes(dagster_resources, latest_key, tmp_path, cpu_device) -> None:
    result = dg.materialize([raw_market_data, features, mae_encoder], partition_key=latest_key,
                            resources=dagster_resources, instance=dg.DagsterInstance.ephemeral(),
                            run_config=dg.RunConfig(ops={"mae_encoder": TINY_RUN}))
    assert result.success
    artifact = result.output_for_node("mae_encoder")
    assert isinstance(artifact, EncoderArtifact)
    frame = result.output_for_node("features")
    assert artifact.feature_columns == feature_columns(frame)
    assert artifact.norm_fingerprint == frame.attrs["fingerprint"]

    # Published atomically under the artifact store; loads with the expected dimensions.
    published = tmp_path / "artifacts" / "mae_encoder" / latest_key
    assert {p.name for p in published.iterdir()} >= {"encoder.pth", "loss_curve.png", "history.csv"}
    loaded = artifact.load(device="cpu")
    assert loaded.config == TINY_QUICK and loaded.extra["segment"] == latest_key
    assert torch.load(published / "encoder.pth", weights_only=True)["norm_fingerprint"] == artifact.norm_fingerprint
    load_encoder(artifact.path, expected_config=TINY_QUICK, expected_columns=feature_columns(frame))

    meta = result.asset_materializations_for_node("mae_encoder")[0].metadata
    assert meta["loss_curve"].value.startswith("![MAE loss curve](data:image/png;base64,")
    assert meta["device"].value == "cpu"
    assert 1 <= meta["best_epoch"].value <= 2 and meta["epochs_run"].value == 2
    assert meta["n_params"].value == artifact.metrics["n_params"] > 0
    assert meta["eval_loss"].value == pytest.approx(artifact.metrics["best_eval_loss"])
    assert meta["seconds_per_epoch"].value > 0
    # Training finished: the checkpoint folder holds the marker, so a re-run starts fresh.
    assert (tmp_path / "checkpoints" / "mae_encoder" / latest_key / DONE_FILE).exists()
