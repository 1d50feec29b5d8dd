"""``mae_encoder``: the per-segment masked-autoencoder foundation model (``encoder.pth``)."""



import dagster as dg
import pandas as pd

from cryptorl_core.device import resolve_device
from cryptorl_core.encoder import (
    ENCODER_FILENAME,
    EncoderArtifact,
    MAETrainResult,
    save_encoder,
    train_mae,
)
from cryptorl_core.encoder.plots import loss_curve_png
from cryptorl_dagster.metadata import markdown_table, png_markdown
from cryptorl_dagster.partitions import segment_partitions
from cryptorl_dagster.resources import ArtifactStore, ProfileResource
from cryptorl_dagster.run_config import RunOverrides
from cryptorl_dagster.tags import GPU_TAGS

ASSET_NAME = "mae_encoder"


class EncoderRunConfig(RunOverrides):
    """Per-run overrides of the profile's encoder configuration (launchpad / tests); unset
    fields keep the profile's values. Each is the :class:`~cryptorl_core.encoder.MAEConfig`
    field of the same name.

    :param epochs: maximum training epochs.
    :param batch_size: windows per gradient step.
    :param lr: peak learning rate.
    :param patience: epochs without an eval-loss gain before stopping early.
    :param seed: seed of weights, masks, dropout and shuffling.
    :param max_train_windows: cap on train windows per epoch.
    :param max_eval_windows: cap on eval windows.
    :param amp: bf16 autocast (CUDA only).
    :param compile: ``torch.compile`` the training model (CUDA only).
    :param cpu_threads: torch intra-op threads while training on CPU.
    """

    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    patience: int | None = None
    seed: int | None = None
    max_train_windows: int | None = None
    max_eval_windows: int | None = None
    amp: bool | None = None
    compile: bool | None = None
    cpu_threads: int | None = None


def _metadata(result: MAETrainResult, path: str, png: bytes) -> dict:
    history = pd.DataFrame(result.history).set_index("epoch")
    return {
        "path": dg.MetadataValue.path(path),
        "loss_curve": png_markdown(png, "MAE loss curve"),
        "best_epoch": result.best_epoch,
        "train_loss": result.best_train_loss,
        "eval_loss": result.best_eval_loss,
        "epochs_run": len(result.history),
        "resumed_at_epoch": result.start_epoch,
        "stopped_early": result.stopped_early,
        "n_params": result.n_params,
        "seconds_per_epoch": round(result.seconds_per_epoch, 3),
        "device": result.device,
        "seed": result.seed,
        "n_train_windows": result.n_train_windows,
        "n_eval_windows": result.n_eval_windows,
        "n_features": len(result.feature_columns),
        "norm_fingerprint": result.norm_fingerprint,
        "config": dg.MetadataValue.json(result.config.as_dict()),
        "history": markdown_table(history),
    }


@dg.asset(
    partitions_def=segment_partitions,
    group_name="encoder",
    op_tags=GPU_TAGS,
    kinds={"pytorch"},
)
def mae_encoder(
    context: dg.AssetExecutionContext, config: EncoderRunConfig, features: pd.DataFrame,
    artifacts: ArtifactStore, profile: ProfileResource,
) -> dg.Output[EncoderArtifact]:
    """Transformer masked autoencoder pre-trained on the segment's train windows (64 h of
    technical features), early-stopped on its eval windows. Resumes an interrupted run
    from its per-epoch checkpoint; publishes ``encoder.pth`` with the feature columns and
    the normalisation fingerprint it was trained on."""
    key = context.partition_key
    mae_config = config.apply(profile.pipeline().mae)
    device = resolve_device("auto")  # honours $CRYPTORL_DEVICE set by the run launcher
    context.log.info(f"training MAE for {key} on {device} ({profile.name} profile)")

    result = train_mae(features, mae_config, artifacts.checkpoint_dir(ASSET_NAME, key), device=device,
                       progress=True)
    if result.start_epoch > 1:
        context.log.info(f"resumed from the checkpoint after epoch {result.start_epoch - 1}")

    png = loss_curve_png(result.history, result.best_epoch)
    extra = {**result.metrics(), "segment": key, "history": result.history}
    with artifacts.publish(ASSET_NAME, key) as staging:
        save_encoder(staging / ENCODER_FILENAME, result.model, mae_config, result.feature_columns,
                     result.norm_fingerprint, extra=extra)
        (staging / "loss_curve.png").write_bytes(png)
        pd.DataFrame(result.history).to_csv(staging / "history.csv", index=False)
    path = str(artifacts.path(ASSET_NAME, key) / ENCODER_FILENAME)

    artifact = EncoderArtifact(path=path, config=mae_config.as_dict(), feature_columns=result.feature_columns,
                               norm_fingerprint=result.norm_fingerprint, metrics=result.metrics())
    return dg.Output(artifact, metadata=_metadata(result, path, png))
