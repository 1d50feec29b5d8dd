"""Masked-autoencoder (MAE) foundation model over 64-step windows of technical features.

- :mod:`~cryptorl_core.encoder.config`: :class:`MAEConfig` (``quick()`` / ``full()``);
- :mod:`~cryptorl_core.encoder.model`: :class:`CryptoMAE` (mask, encode, reconstruct);
- :mod:`~cryptorl_core.encoder.windows`: windows of one split of a segment frame;
- :mod:`~cryptorl_core.encoder.train`: :func:`train_mae` (early stopping, resume);
- :mod:`~cryptorl_core.encoder.artifact`: ``encoder.pth`` save/load with dimension checks;
- :mod:`~cryptorl_core.encoder.cache`: :func:`encode_all`, the per-row embedding cache.
"""

from cryptorl_core.encoder.artifact import (
    ENCODER_FILENAME,
    CorruptCheckpointError,
    EncoderArtifact,
    EncoderCheckpointError,
    EncoderDimensionError,
    LoadedEncoder,
    load_encoder,
    save_encoder,
)
from cryptorl_core.encoder.cache import cache_nbytes, encode_all, frozen_encoder, pool_tokens
from cryptorl_core.encoder.config import MAEConfig
from cryptorl_core.encoder.model import CryptoMAE, count_parameters, masked_mse
from cryptorl_core.encoder.train import MAETrainResult, norm_fingerprint_of, train_mae
from cryptorl_core.encoder.windows import SplitWindows, feature_matrix, gather_windows, window_ends

__all__ = [
    "ENCODER_FILENAME", "CorruptCheckpointError", "CryptoMAE", "EncoderArtifact",
    "EncoderCheckpointError", "EncoderDimensionError", "LoadedEncoder", "MAEConfig",
    "MAETrainResult", "SplitWindows", "cache_nbytes", "count_parameters", "encode_all",
    "feature_matrix", "frozen_encoder", "gather_windows", "load_encoder", "masked_mse",
    "norm_fingerprint_of", "pool_tokens", "save_encoder", "train_mae", "window_ends",
]
