"""CryptoMAE: a transformer masked autoencoder over windows of technical features.

A window ``(window, n_features)`` is projected step by step to ``d_model`` tokens. During
pre-training a random subset of time steps is masked: their tokens are replaced by one
learned mask token *before* the encoder runs, and the masked input values are zeroed
before the projection, so nothing of a masked step's values reaches the encoder, the
decoder or their gradients. Sinusoidal positional encodings are added after masking,
so the encoder knows *where* the hidden steps are. A light MLP decoder reconstructs every
step from the encoder's output; the MSE is taken over masked steps only.

Downstream (the agent) uses :meth:`CryptoMAE.encode`: the same encoder without masking.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from cryptorl_core.encoder.config import MAEConfig


def sinusoidal_positions(length: int, d_model: int) -> torch.Tensor:
    """The fixed sin/cos positional table of "Attention is all you need".

    :param length: number of positions.
    :param d_model: encoding width.
    :return: tensor ``(length, d_model)``.
    """
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    div = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    table = torch.zeros(length, d_model)
    table[:, 0::2] = torch.sin(position * div)
    table[:, 1::2] = torch.cos(position * div[: d_model // 2])
    return table


def random_time_mask(batch: int, window: int, n_masked: int, device: torch.device,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Exactly ``n_masked`` uniformly chosen masked steps per window.

    :param batch: number of windows.
    :param window: steps per window.
    :param n_masked: masked steps per window.
    :param device: device of the returned mask.
    :param generator: optional generator (on the CPU) for reproducible masks.
    :return: bool tensor ``(batch, window)``, True = masked.
    """
    noise = torch.rand(batch, window, generator=generator,
                       device="cpu" if generator is not None else device)
    ranks = noise.argsort(dim=1).argsort(dim=1)
    return (ranks < n_masked).to(device)


class CryptoMAE(nn.Module):
    """Masked autoencoder over ``(window, n_features)`` windows.

    :param n_features: input width (technical feature columns).
    :param config: architecture (``window``, ``d_model``, ``n_heads``, ``n_layers``,
        ``dim_feedforward``, ``decoder_hidden``, ``dropout``, ``mask_ratio``).
    """

    def __init__(self, n_features: int, config: MAEConfig) -> None:
        super().__init__()
        self.n_features = n_features
        self.config = config
        self.input_proj = nn.Linear(n_features, config.d_model)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, config.d_model))
        nn.init.normal_(self.mask_token, std=0.02)
        self.register_buffer("positions", sinusoidal_positions(config.window, config.d_model),
                             persistent=False)
        layer = nn.TransformerEncoderLayer(
            d_model=config.d_model, nhead=config.n_heads, dim_feedforward=config.dim_feedforward,
            dropout=config.dropout, activation="gelu", batch_first=True, norm_first=True,
        )
        # enable_nested_tensor only helps with padding masks, which windows never have.
        self.encoder = nn.TransformerEncoder(layer, config.n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(config.d_model)
        self.decoder = nn.Sequential(
            nn.Linear(config.d_model, config.decoder_hidden),
            nn.GELU(),
            nn.Linear(config.decoder_hidden, n_features),
        )

    @property
    def d_model(self) -> int:
        return self.config.d_model

    def _check_input(self, x: torch.Tensor) -> None:
        expected = (self.config.window, self.n_features)
        if x.dim() != 3 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"expected windows (batch, {expected[0]}, {expected[1]}), got {tuple(x.shape)}")

    def _tokens(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Projected tokens with masked steps replaced by the mask token, plus positions."""
        if mask is None:
            tokens = self.input_proj(x)
        else:
            hidden = mask.unsqueeze(-1)
            # Zero first so even NaN/inf at masked steps cannot leak through the projection.
            tokens = self.input_proj(x.masked_fill(hidden, 0.0))
            tokens = torch.where(hidden, self.mask_token.to(tokens.dtype), tokens)
        return tokens + self.positions.to(tokens.dtype)

    def encode(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Contextual embeddings of every time step.

        :param x: windows ``(batch, window, n_features)``.
        :param mask: optional bool ``(batch, window)``; True steps are hidden from the encoder.
            Downstream use passes ``None`` (no masking).
        :return: ``(batch, window, d_model)``.
        """
        self._check_input(x)
        return self.norm(self.encoder(self._tokens(x, mask)))

    def sample_mask(self, batch: int, device: torch.device,
                    generator: torch.Generator | None = None) -> torch.Tensor:
        """A random mask with ``config.n_masked`` hidden steps per window."""
        return random_time_mask(batch, self.config.window, self.config.n_masked, device, generator)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mask, encode, reconstruct.

        :param x: windows ``(batch, window, n_features)``.
        :param mask: bool ``(batch, window)``, True = masked; drawn at random when ``None``.
        :return: ``(loss, reconstruction, mask)``: the MSE over masked steps only (all
            features), the reconstruction ``(batch, window, n_features)`` and the mask used.
        """
        if mask is None:
            mask = self.sample_mask(x.shape[0], x.device)
        recon = self.decoder(self.encode(x, mask))
        return masked_mse(recon, x, mask), recon, mask


def masked_mse(recon: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the masked steps only (computed in float32).

    :param recon: reconstruction ``(batch, window, n_features)``.
    :param target: the original windows.
    :param mask: bool ``(batch, window)``, True = masked.
    :return: scalar loss.
    """
    per_step = (recon.float() - target.float()).pow(2).mean(dim=-1)
    weights = mask.float()
    return (per_step * weights).sum() / weights.sum().clamp_min(1.0)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
