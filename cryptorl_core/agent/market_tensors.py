"""The device-resident tensors the agent's feature extractor gathers from.

The environment's observation only carries the row index ``t`` of the current bar (see
:mod:`cryptorl_core.env.batch_env`). Everything the policy sees about the market lives here,
once per segment, on the training device:

- ``embeddings`` (cache mode, the default): the frozen encoder's per-row embedding cache
  ``(n_rows, tokens, d_model)`` from :func:`~cryptorl_core.encoder.encode_all`; row ``t`` is
  the window ending at ``t``. The encoder runs once per segment, never in a gradient step.
- ``features`` + ``encoder`` (live mode, for the benchmark): the raw technical matrix
  ``(n_rows, n_tech)`` and the frozen encoder, which the extractor runs on the gathered
  ``(64, n_tech)`` windows in every forward pass.
- ``context``: the 5 HMM columns ``(n_rows, 5)`` (filtered state probabilities and entropy).

:meth:`MarketTensors.build` takes one form of each input: the regime context as a frame
(``RegimeModel.context(frame)``) and the encoder as a :class:`~cryptorl_core.encoder.artifact.LoadedEncoder`
(model and feature columns). The caller converts what it holds, once::

    context = regime_model.context(frame)             # the hmm_model asset's RegimeModel
    encoder = encoder_artifact.load(device)           # the mae_encoder asset's EncoderArtifact,
    # or load_encoder("encoder.pth"), or LoadedEncoder.in_memory(model, feature_columns(frame))
    market = MarketTensors.build(frame, context, encoder, tokens=config.tokens, device=device)

A precomputed embedding cache goes through :meth:`MarketTensors.from_cache` instead.

None of these tensors is ever a parameter or a persistent buffer of the policy: they are
attached after construction (:func:`~cryptorl_core.agent.extractor.attach_market`), so they
are neither pickled into an SB3 zip nor into ``policy_kwargs``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from cryptorl_core.device import resolve_device
from cryptorl_core.encoder.artifact import EncoderDimensionError, LoadedEncoder
from cryptorl_core.encoder.cache import encode_all, frozen_encoder, pool_tokens
from cryptorl_core.encoder.model import CryptoMAE
from cryptorl_core.encoder.windows import feature_matrix
from cryptorl_core.env.batch_env import gather_rows, gather_windows
from cryptorl_core.regime.context import context_array
from cryptorl_core.schema import HMM_COLUMNS

MODES = ("cache", "live")
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def hmm_context_array(context: pd.DataFrame, frame: pd.DataFrame | None = None) -> np.ndarray:
    """The 5 HMM columns of every row of a segment frame as a float32 array
    (:func:`~cryptorl_core.regime.context.context_array` of :data:`~cryptorl_core.schema.HMM_COLUMNS`).

    :param context: a frame holding :data:`~cryptorl_core.schema.HMM_COLUMNS`
        (``RegimeModel.context(frame)``).
    :param frame: the segment frame (checks the row count and the index); not checked when None.
    :return: ``(n_rows, 5)`` float32, finite.
    """
    if not isinstance(context, pd.DataFrame):
        raise TypeError(f"the HMM context must be a DataFrame (RegimeModel.context(frame)), got {type(context).__name__}")
    return context_array(context, HMM_COLUMNS, frame, np.float32)


@dataclass
class MarketTensors:
    """Per-row tensors of one segment, on one device (see the module docstring).

    :param context: ``(n_rows, 5)`` float32 HMM context.
    :param embeddings: ``(n_rows, tokens, d_model)`` embedding cache (cache mode).
    :param features: ``(n_rows, n_tech)`` float32 technical matrix (live mode).
    :param encoder: the frozen encoder (live mode); never registered as a submodule.
    :param tokens: tokens per row the extractor sees.
    """

    context: torch.Tensor
    embeddings: torch.Tensor | None = None
    features: torch.Tensor | None = None
    encoder: CryptoMAE | None = None
    tokens: int = 0

    def __post_init__(self) -> None:
        if (self.embeddings is None) == (self.encoder is None):
            raise ValueError("give either an embedding cache (cache mode) or features + encoder (live mode)")
        if self.encoder is not None and self.features is None:
            raise ValueError("live mode needs the technical feature matrix")
        if self.embeddings is not None:
            if self.embeddings.dim() != 3:
                raise ValueError(f"embedding cache must be (n_rows, tokens, d_model), got {tuple(self.embeddings.shape)}")
            self.tokens = int(self.embeddings.shape[1])
        elif self.tokens < 1:
            self.tokens = self.encoder.config.window
        if self.encoder is not None and self.encoder.config.window % self.tokens:
            raise ValueError(f"tokens={self.tokens} must divide the encoder window {self.encoder.config.window}")
        rows = {"context": self.context.shape[0]}
        for name in ("embeddings", "features"):
            value = getattr(self, name)
            if value is not None:
                rows[name] = value.shape[0]
        if len(set(rows.values())) != 1:
            raise ValueError(f"market tensors disagree on the number of rows: {rows}")

    # ------------------------------------------------------------------ properties

    @property
    def mode(self) -> str:
        """``"cache"`` or ``"live"``."""
        return "cache" if self.embeddings is not None else "live"

    @property
    def n_rows(self) -> int:
        return int(self.context.shape[0])

    @property
    def d_model(self) -> int:
        """Embedding width."""
        return int(self.embeddings.shape[2]) if self.embeddings is not None else self.encoder.d_model

    @property
    def n_context(self) -> int:
        return int(self.context.shape[1])

    @property
    def device(self) -> torch.device:
        return self.context.device

    def nbytes(self) -> int:
        """Device memory held (embedding cache or feature matrix, plus the context)."""
        held = [t for t in (self.context, self.embeddings, self.features) if t is not None]
        return sum(t.numel() * t.element_size() for t in held)

    # ------------------------------------------------------------------ gathering

    def embeddings_at(self, index: torch.Tensor) -> torch.Tensor:
        """Float32 embeddings ``(batch, tokens, d_model)`` of the rows in ``index``.

        Live mode runs the frozen encoder on the gathered windows under ``no_grad``.
        """
        if self.embeddings is not None:
            return gather_rows(self.embeddings, index).float()
        with torch.no_grad():
            windows = gather_windows(self.features, index, self.encoder.config.window)
            return pool_tokens(self.encoder.encode(windows).float(), self.tokens)

    def context_at(self, index: torch.Tensor) -> torch.Tensor:
        """HMM context ``(batch, 5)`` of the rows in ``index``."""
        return gather_rows(self.context, index)

    def to(self, device: torch.device | str) -> MarketTensors:
        """The same tensors on ``device`` (self if already there). The live encoder is copied,
        not moved: ``nn.Module.to`` works in place and would move it from under ``self``."""
        dev = resolve_device(device)
        if self.device == dev:
            return self
        return MarketTensors(
            context=self.context.to(dev),
            embeddings=None if self.embeddings is None else self.embeddings.to(dev),
            features=None if self.features is None else self.features.to(dev),
            encoder=None if self.encoder is None else frozen_encoder(copy.deepcopy(self.encoder).to(dev)),
            tokens=self.tokens,
        )

    # ------------------------------------------------------------------ construction

    @classmethod
    def build(
        cls,
        frame: pd.DataFrame,
        context: pd.DataFrame,
        encoder: LoadedEncoder,
        tokens: int | None = None,
        mode: str = "cache",
        device: torch.device | str = "auto",
        cache_dtype: str | torch.dtype = "float32",
        batch_size: int = 512,
    ) -> MarketTensors:
        """Build the tensors of a segment frame from its HMM context and the frozen encoder.

        :param frame: the segment frame (holding the encoder's feature columns).
        :param context: the HMM context of every frame row (``RegimeModel.context(frame)``).
        :param encoder: the encoder with its feature columns (``EncoderArtifact.load``,
            :func:`~cryptorl_core.encoder.artifact.load_encoder` or ``LoadedEncoder.in_memory``).
        :param tokens: tokens per row (mean-pooled from the window); ``None``: the whole window.
        :param mode: ``"cache"`` (encode every row once) or ``"live"`` (encoder in every forward).
        :param device: where the tensors live.
        :param cache_dtype: dtype of the cache; bfloat16 is honoured on CUDA only (CPU bf16
            matmuls are slow and the cache is small there).
        :param batch_size: windows per encoder pass while building the cache.
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        dev = resolve_device(device)
        hmm = torch.from_numpy(hmm_context_array(context, frame)).to(dev)
        model = frozen_encoder(encoder.model.to(dev))
        columns = list(encoder.feature_columns)
        if mode == "live":
            features = torch.from_numpy(feature_matrix(frame, columns)).to(dev)
            if features.shape[1] != model.n_features:
                raise EncoderDimensionError(
                    f"segment frame has {features.shape[1]} technical columns, the encoder expects {model.n_features}")
            return cls(context=hmm, features=features, encoder=model, tokens=tokens or model.config.window)
        dtype = _DTYPES[cache_dtype] if isinstance(cache_dtype, str) else cache_dtype
        if dev.type != "cuda":
            dtype = torch.float32
        cache = encode_all(model, frame, batch_size=batch_size, device=dev, dtype=dtype,
                           tokens=tokens, columns=columns)
        return cls(context=hmm, embeddings=cache)

    @classmethod
    def from_cache(
        cls,
        frame: pd.DataFrame,
        context: pd.DataFrame,
        cache: torch.Tensor,
        tokens: int | None = None,
        device: torch.device | str = "auto",
    ) -> MarketTensors:
        """Cache-mode tensors from a precomputed embedding cache.

        :param frame: the segment frame (row count and index of the context).
        :param context: the HMM context of every frame row (``RegimeModel.context(frame)``).
        :param cache: ``(n_rows, tokens, d_model)`` embeddings (:func:`~cryptorl_core.encoder.encode_all`).
        :param tokens: tokens per row, mean-pooled from the cache's; ``None``: the cache's.
        :param device: where the tensors live.
        """
        dev = resolve_device(device)
        cache = cache.to(dev)
        if cache.dim() != 3 or cache.shape[0] != len(frame):
            raise EncoderDimensionError(
                f"embedding cache has shape {tuple(cache.shape)}, expected ({len(frame)}, tokens, d_model)")
        if tokens is not None and cache.shape[1] != tokens:
            cache = pool_tokens(cache.float(), tokens).to(cache.dtype)
        return cls(context=torch.from_numpy(hmm_context_array(context, frame)).to(dev), embeddings=cache)
