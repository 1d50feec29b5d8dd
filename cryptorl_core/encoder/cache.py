"""Per-row embedding cache of a frozen encoder, computed once per segment.

Row ``t`` of the cache is the encoder output of the window ending at row ``t`` (rows
``t - window + 1 .. t``), so it only depends on rows ``<= t``. Rows ``t < window - 1``
have no full window: their window is left-padded by repeating the segment's first row.
Those rows are never episode starts (see :mod:`cryptorl_core.schema`); the padding only
keeps the cache rectangular so the agent can index it by row.

Shape and memory: ``(n_rows, tokens, d_model)``, i.e. ``n_rows * tokens * d_model * bytes``.
For the full profile on one segment (about 11.7k rows, 64 tokens, d_model 256) that is
11.7e3 * 64 * 256 * 2 B = about 380 MB in bfloat16 (760 MB in float32). ``tokens < window``
mean-pools groups of ``window // tokens`` consecutive steps, dividing the size accordingly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from cryptorl_core.device import resolve_device
from cryptorl_core.encoder.artifact import EncoderDimensionError
from cryptorl_core.encoder.model import CryptoMAE
from cryptorl_core.encoder.windows import feature_matrix, gather_windows


def frozen_encoder(model: CryptoMAE) -> CryptoMAE:
    """Put ``model`` in ``eval()`` mode with every parameter's ``requires_grad`` off.

    :param model: the encoder.
    :return: the same model (for chaining).
    """
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def cache_nbytes(n_rows: int, tokens: int, d_model: int, dtype: torch.dtype = torch.float32) -> int:
    """Bytes of an embedding cache: ``n_rows * tokens * d_model * itemsize``."""
    return n_rows * tokens * d_model * torch.empty(0, dtype=dtype).element_size()


def pool_tokens(embeddings: torch.Tensor, tokens: int) -> torch.Tensor:
    """Mean-pool ``(batch, window, d)`` into ``(batch, tokens, d)`` over equal groups of steps.

    :param embeddings: per-step embeddings.
    :param tokens: output tokens; must divide the window. ``tokens == window``: no pooling.
    """
    batch, window, d = embeddings.shape
    if tokens == window:
        return embeddings
    if tokens < 1 or window % tokens:
        raise ValueError(f"tokens={tokens} must divide the window length {window}")
    return embeddings.reshape(batch, tokens, window // tokens, d).mean(dim=2)


def left_padded(data: torch.Tensor, window: int) -> torch.Tensor:
    """Prepend ``window - 1`` copies of the first row, so the window of row ``t`` is
    ``padded[t : t + window]`` for every ``t`` (row ``t`` ends at padded index ``t + window - 1``)."""
    return torch.cat([data[:1].expand(window - 1, -1), data], dim=0)


@torch.no_grad()
def encode_all(model: CryptoMAE, frame_or_array: pd.DataFrame | np.ndarray | torch.Tensor,
               batch_size: int = 512, device: str | torch.device = "auto",
               dtype: torch.dtype = torch.float32, tokens: int | None = None,
               columns: Sequence[str] | None = None, progress: bool = False) -> torch.Tensor:
    """Embedding of the window ending at every row of a segment.

    :param model: the encoder (moved to ``device`` and frozen, see :func:`frozen_encoder`).
    :param frame_or_array: a segment frame (its technical columns, or ``columns``) or a
        ``(n_rows, n_features)`` array already in the model's column order.
    :param batch_size: windows per forward pass.
    :param device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
    :param dtype: dtype of the cache, ``torch.float32`` or ``torch.bfloat16``. On CUDA,
        bfloat16 also runs the encoder under bf16 autocast; on CPU the encoder runs in
        float32 and the result is cast.
    :param tokens: tokens per row (mean-pooled, must divide the window); ``None`` = window.
    :param columns: feature columns to take from a frame (default: every technical column).
    :param progress: show a tqdm bar.
    :return: tensor ``(n_rows, tokens, d_model)`` of ``dtype`` on ``device``.
    """
    dev = resolve_device(device)
    model = frozen_encoder(model.to(dev))
    window = model.config.window
    tokens = window if tokens is None else tokens
    if isinstance(frame_or_array, pd.DataFrame):
        array: np.ndarray | torch.Tensor = feature_matrix(frame_or_array, columns)
    else:
        array = frame_or_array
    data = torch.as_tensor(array, dtype=torch.float32).to(dev)
    if data.dim() != 2 or data.shape[1] != model.n_features:
        raise EncoderDimensionError(
            f"encode_all: input has shape {tuple(data.shape)}, the encoder expects "
            f"(n_rows, {model.n_features})")
    n_rows = data.shape[0]
    padded = left_padded(data, window)
    out = torch.empty(n_rows, tokens, model.d_model, dtype=dtype, device=dev)
    use_amp = dev.type == "cuda" and dtype == torch.bfloat16
    for start in tqdm(range(0, n_rows, batch_size), desc="encode_all", disable=not progress):
        ends = torch.arange(start, min(start + batch_size, n_rows), device=dev) + (window - 1)
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=use_amp):
            emb = model.encode(gather_windows(padded, ends, window))
        out[start : start + len(ends)] = pool_tokens(emb.float(), tokens).to(dtype)
    return out
