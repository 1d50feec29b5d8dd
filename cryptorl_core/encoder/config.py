"""Configuration of the masked-autoencoder (MAE) foundation model and its training."""

from __future__ import annotations

from dataclasses import dataclass

from cryptorl_core.config_base import ConfigBase
from cryptorl_core.schema import WINDOW

#: Fields that fix the shapes of the weights: a checkpoint whose values differ from the
#: expected ones cannot be used in its place (see :mod:`cryptorl_core.encoder.artifact`).
ARCHITECTURE_FIELDS = ("window", "d_model", "n_heads", "n_layers", "dim_feedforward", "decoder_hidden")

#: Seed 000 pre-trains the encoder for 90 epochs (early stopping on the eval loss may end sooner).
SEED000_MAE_EPOCHS = 90


@dataclass(frozen=True)
class MAEConfig(ConfigBase):
    """Architecture and training hyper-parameters of :class:`~cryptorl_core.encoder.model.CryptoMAE`.

    Sources: ``window``, ``d_model``, ``n_heads``, ``n_layers``, ``dim_feedforward`` and
    ``epochs`` (90, in :meth:`seed000`) are seed 000's; the rest (decoder, masking, optimiser,
    early stopping, sampling caps) are the project's choices (``docs/SEEDS.md``).

    :param window: time steps per input window (the agent's observation window).
    :param d_model: token width of the transformer.
    :param n_heads: attention heads (must divide ``d_model``).
    :param n_layers: transformer encoder layers.
    :param dim_feedforward: hidden width of each encoder layer's feed-forward block.
    :param decoder_hidden: hidden width of the light MLP decoder.
    :param dropout: dropout inside the encoder layers (off in ``eval()``).
    :param mask_ratio: fraction of the window's time steps hidden from the encoder.
    :param epochs: maximum training epochs.
    :param batch_size: windows per gradient step.
    :param lr: peak AdamW learning rate.
    :param weight_decay: AdamW weight decay.
    :param warmup_frac: fraction of all steps spent in linear learning-rate warm-up
        before the cosine decay.
    :param grad_clip: gradient-norm clip (0 disables clipping).
    :param patience: epochs without an eval-loss improvement before stopping early.
    :param min_delta: smallest eval-loss decrease that counts as an improvement.
    :param max_train_windows: cap on train windows per epoch, evenly spaced over the
        train rows (``None``: every window).
    :param max_eval_windows: cap on eval windows, evenly spaced (``None``: every window).
    :param eval_mask_seed: seed of the fixed eval masks, so eval losses are comparable
        across epochs.
    :param seed: seed of weights, masks, dropout and shuffling; recorded in the result.
    :param amp: bf16 autocast (CUDA only; ignored on CPU).
    :param compile: ``torch.compile`` the training model (CUDA only; ignored on CPU).
    :param cpu_threads: torch intra-op threads while training on CPU (restored afterwards);
        ``None`` keeps torch's default.
    """

    window: int = WINDOW
    d_model: int = 256
    n_heads: int = 4
    n_layers: int = 2
    dim_feedforward: int = 1024
    decoder_hidden: int = 256
    dropout: float = 0.1
    mask_ratio: float = 0.5
    epochs: int = 50
    batch_size: int = 256
    lr: float = 3e-4
    weight_decay: float = 0.05
    warmup_frac: float = 0.05
    grad_clip: float = 1.0
    patience: int = 5
    min_delta: float = 1e-4
    max_train_windows: int | None = None
    max_eval_windows: int | None = None
    eval_mask_seed: int = 1234
    seed: int = 0
    amp: bool = True
    compile: bool = True
    cpu_threads: int | None = None

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        if not 0.0 < self.mask_ratio < 1.0:
            raise ValueError(f"mask_ratio={self.mask_ratio} must lie strictly between 0 and 1")
        if self.n_masked < 1 or self.n_masked >= self.window:
            raise ValueError(f"mask_ratio={self.mask_ratio} masks {self.n_masked} of {self.window} steps; "
                             "need at least one masked and one visible step")

    @property
    def n_masked(self) -> int:
        """Time steps masked per window."""
        return int(round(self.mask_ratio * self.window))

    @classmethod
    def quick(cls) -> MAEConfig:
        """Small model and few windows: one segment trains on a 2-core CPU in seconds."""
        # d_model 64, not 32: a 32-wide token is a bottleneck for ~57 input features, and
        # small batches give more updates per CPU second.
        return cls(d_model=64, n_heads=4, n_layers=1, dim_feedforward=128, decoder_hidden=64,
                   dropout=0.0, epochs=8, batch_size=32, lr=2e-3, patience=3,
                   max_train_windows=1024, max_eval_windows=256, cpu_threads=1)

    @classmethod
    def seed000(cls) -> MAEConfig:
        """Seed 000's encoder: d_model 256, 4 heads, 2 layers, feed-forward 1024, 64-step
        windows, trained for 90 epochs."""
        return cls(epochs=SEED000_MAE_EPOCHS)

    @classmethod
    def seed001(cls) -> MAEConfig:
        """Seed 001 changes only the agent: seed 000's encoder."""
        return cls.seed000()

    @classmethod
    def full(cls) -> MAEConfig:
        """An alias of :meth:`seed001` (= seed 000's encoder); also the ``simple`` profile's."""
        return cls.seed001()

    def architecture(self) -> dict[str, int]:
        """The fields that fix the weights' shapes."""
        return {k: getattr(self, k) for k in ARCHITECTURE_FIELDS}
