"""The MAE encoder: windows, masking, training, resume, checkpoints and the embedding cache."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from cryptorl_core.encoder import (
    CorruptCheckpointError,
    CryptoMAE,
    EncoderDimensionError,
    MAEConfig,
    SplitWindows,
    cache_nbytes,
    encode_all,
    frozen_encoder,
    load_encoder,
    save_encoder,
    train_mae,
    window_ends,
)
from cryptorl_core.encoder.model import masked_mse, random_time_mask
from cryptorl_core.encoder.train import DONE_FILE, STATE_FILE
from cryptorl_core.encoder.windows import feature_matrix
from cryptorl_core.schema import EVAL, PURGED, SPLIT_COL, TEST, TRAIN, WINDOW, feature_columns

#: A model small enough that a few epochs on a few hundred windows take a second or two.
TINY = MAEConfig(d_model=16, n_heads=2, n_layers=1, dim_feedforward=32, decoder_hidden=16,
                 dropout=0.0, epochs=4, batch_size=64, lr=3e-3, patience=10,
                 max_train_windows=256, max_eval_windows=128)


def random_segment_frame(n_train: int = 400, n_eval: int = 160, n_test: int = 80,
                         n_features: int = 6, seed: int = 0) -> pd.DataFrame:
    """A frame with the segment-frame structure: train | purge | eval | purge | test, with
    smooth (AR(1)) float32 features so that masked steps are predictable from neighbours."""
    rng = np.random.default_rng(seed)
    labels = [TRAIN] * n_train + [PURGED] * WINDOW + [EVAL] * n_eval + [PURGED] * WINDOW + [TEST] * n_test
    n = len(labels)
    x = np.zeros((n, n_features))
    for t in range(1, n):
        x[t] = 0.9 * x[t - 1] + 0.45 * rng.standard_normal(n_features)
    index = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC", name="timestamp")
    frame = pd.DataFrame(x.astype(np.float32), index=index, columns=[f"f{i}" for i in range(n_features)])
    frame[SPLIT_COL] = labels
    frame["price_open"] = frame["price_close"] = 100.0
    frame.attrs["fingerprint"] = "test-fingerprint"
    return frame


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_model() -> CryptoMAE:
    torch.manual_seed(0)
    return CryptoMAE(6, TINY).eval()


# --- configuration and windows ---------------------------------------------------------

def test_profiles_have_seed_dimensions_and_fingerprints_differ() -> None:
    full, quick = MAEConfig.full(), MAEConfig.quick()
    assert (full.d_model, full.n_heads, full.n_layers, full.dim_feedforward, full.window) == (256, 4, 2, 1024, 64)
    assert quick.d_model < full.d_model and quick.max_train_windows is not None
    assert MAEConfig.from_dict(quick.as_dict()) == quick
    assert quick.fingerprint() != quick.replace(lr=1e-4).fingerprint()
    with pytest.raises(ValueError, match="divisible"):
        MAEConfig(d_model=30, n_heads=4)


def test_windows_lie_wholly_inside_their_split() -> None:
    frame = random_segment_frame()
    split = frame[SPLIT_COL].to_numpy()
    train_ends = window_ends(split, TRAIN)
    eval_ends = window_ends(split, EVAL)
    assert len(train_ends) == 400 - WINDOW + 1 and train_ends[0] == WINDOW - 1
    assert len(eval_ends) == 160 - WINDOW + 1
    for ends, name in ((train_ends, TRAIN), (eval_ends, EVAL)):
        rows = ends[:, None] + np.arange(1 - WINDOW, 1)
        assert (split[rows] == name).all()
    windows = SplitWindows.from_frame(frame, TRAIN, limit=50)
    assert len(windows) == 50
    first = windows[0].numpy()
    np.testing.assert_array_equal(first, feature_matrix(frame)[0:WINDOW])
    batch = next(windows.batches(8))
    assert batch.shape == (8, WINDOW, 6)


# --- masking ------------------------------------------------------------------------------

def test_masked_input_values_never_reach_encoder_or_decoder(tiny_model: CryptoMAE) -> None:
    torch.manual_seed(1)
    x = torch.randn(5, WINDOW, 6)
    mask = tiny_model.sample_mask(5, torch.device("cpu"))
    assert (mask.sum(dim=1) == TINY.n_masked).all()
    # Overwrite the masked steps with huge values and NaN: nothing downstream may change.
    tampered = x.clone()
    tampered[mask] = 1e6
    tampered[0, mask[0].nonzero()[0, 0]] = float("nan")
    with torch.no_grad():
        enc_a, enc_b = tiny_model.encode(x, mask), tiny_model.encode(tampered, mask)
        _, recon_a, _ = tiny_model(x, mask)
        _, recon_b, _ = tiny_model(tampered, mask)
    assert torch.equal(enc_a, enc_b)
    assert torch.equal(recon_a, recon_b)
    # No gradient path either: d(reconstruction)/d(masked inputs) is exactly zero.
    xg = x.clone().requires_grad_(True)
    tiny_model(xg, mask)[1].sum().backward()
    assert torch.all(xg.grad[mask] == 0) and torch.any(xg.grad[~mask] != 0)
    # Visible values do matter.
    moved = x.clone()
    moved[~mask] += 1.0
    with torch.no_grad():
        assert not torch.allclose(tiny_model.encode(moved, mask), enc_a)


def test_loss_counts_masked_steps_only() -> None:
    recon, target = torch.randn(3, WINDOW, 6), torch.randn(3, WINDOW, 6)
    mask = random_time_mask(3, WINDOW, TINY.n_masked, torch.device("cpu"))
    loss = masked_mse(recon, target, mask)
    assert torch.isclose(loss, ((recon - target) ** 2).mean(-1)[mask].mean())
    # Errors on visible steps do not count.
    assert torch.isclose(masked_mse(recon, torch.where(mask.unsqueeze(-1), target, recon + 9.0), mask), loss)


# --- training -------------------------------------------------------------------------------

def _window_mean_baseline(x: torch.Tensor, mask: torch.Tensor) -> float:
    """Masked MSE of predicting each window's per-feature mean of its visible steps."""
    visible = (~mask).unsqueeze(-1).float()
    window_mean = (x * visible).sum(1, keepdim=True) / visible.sum(1, keepdim=True)
    return float(masked_mse(window_mean.expand_as(x), x, mask))


def test_reconstruction_beats_window_mean_baseline(tmp_path) -> None:
    """On held-out (eval) windows the MAE reconstructs masked steps clearly better than
    predicting each window's per-feature mean of its visible steps."""
    frame = random_segment_frame(n_train=1200, n_eval=320)
    cfg = TINY.replace(d_model=32, dim_feedforward=64, decoder_hidden=32, epochs=10,
                       max_train_windows=1024, batch_size=32)
    result = train_mae(frame, cfg, tmp_path, device="cpu", progress=False)
    assert result.history[-1]["train_loss"] < 0.5 * result.history[0]["train_loss"]
    x = next(SplitWindows.from_frame(frame, EVAL).batches(512))
    mask = random_time_mask(len(x), WINDOW, cfg.n_masked, torch.device("cpu"), torch.Generator().manual_seed(7))
    with torch.no_grad():
        model_loss = float(result.model(x, mask)[0])
    baseline = _window_mean_baseline(x, mask)
    assert model_loss < 0.5 * baseline, (model_loss, baseline)


def test_trains_on_the_synthetic_segment_frame(segment_frame: pd.DataFrame, tmp_path) -> None:
    """The real feature pipeline's frame: every technical column is an input, the loss falls."""
    cfg = MAEConfig.quick().replace(epochs=2, max_train_windows=256, max_eval_windows=128)
    result = train_mae(segment_frame, cfg, tmp_path, device="cpu", progress=False)
    assert result.feature_columns == feature_columns(segment_frame) and len(result.feature_columns) > 40
    assert result.norm_fingerprint == segment_frame.attrs["fingerprint"]
    assert result.history[-1]["eval_loss"] < result.history[0]["eval_loss"]
    assert result.n_train_windows == 256 and result.n_eval_windows == 128


def test_early_stopping_keeps_best_epoch() -> None:
    # lr=0: the eval loss never improves after epoch 1, so training stops after 1 + patience.
    cfg = TINY.replace(lr=0.0, epochs=10, patience=2)
    result = train_mae(random_segment_frame(), cfg, None, device="cpu", progress=False)
    assert result.stopped_early and len(result.history) == 3
    assert result.best_epoch == 1
    assert result.best_eval_loss == result.history[0]["eval_loss"]
    assert {"train_loss", "eval_loss", "seconds", "lr"} <= set(result.history[0])


class _Interrupt(Exception):
    pass


def _interrupt_now(entry: dict) -> None:
    raise _Interrupt


def test_resume_continues_after_last_completed_epoch(tmp_path) -> None:
    frame = random_segment_frame()
    full_run = train_mae(frame, TINY, tmp_path / "uninterrupted", device="cpu", progress=False)

    def stop_after_two(entry: dict) -> None:
        if entry["epoch"] == 2:
            raise _Interrupt

    ckpt = tmp_path / "interrupted"
    with pytest.raises(_Interrupt):
        train_mae(frame, TINY, ckpt, device="cpu", progress=False, on_epoch_end=stop_after_two)
    assert (ckpt / STATE_FILE).exists() and not (ckpt / DONE_FILE).exists()

    seen: list[int] = []
    resumed = train_mae(frame, TINY, ckpt, device="cpu", progress=False,
                        on_epoch_end=lambda e: seen.append(e["epoch"]))
    assert resumed.start_epoch == 3 and seen == [3, 4]
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]
    # Same RNG, optimizer and scheduler state: identical to the uninterrupted run.
    for a, b in zip(resumed.history, full_run.history, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-6)
        assert a["eval_loss"] == pytest.approx(b["eval_loss"], rel=1e-6)
    for k, v in full_run.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[k], v)

    # Finished: marker written, state gone; the next run (another config) starts fresh.
    assert (ckpt / DONE_FILE).exists() and not (ckpt / STATE_FILE).exists()
    fresh = train_mae(frame, TINY.replace(epochs=1), ckpt, device="cpu", progress=False)
    assert fresh.start_epoch == 1 and len(fresh.history) == 1


def test_unfinished_state_of_another_config_is_not_resumed(tmp_path) -> None:
    frame = random_segment_frame()
    with pytest.raises(_Interrupt):
        train_mae(frame, TINY, tmp_path, device="cpu", progress=False,
                  on_epoch_end=_interrupt_now)
    other = train_mae(frame, TINY.replace(lr=1e-3, epochs=2), tmp_path, device="cpu", progress=False)
    assert other.start_epoch == 1 and len(other.history) == 2


def test_training_needs_eval_windows() -> None:
    frame = random_segment_frame(n_eval=WINDOW - 1)
    with pytest.raises(ValueError, match="eval windows"):
        train_mae(frame, TINY, None, device="cpu", progress=False)


# --- checkpoints ----------------------------------------------------------------------------

def test_checkpoint_round_trip_is_weights_only(tiny_model: CryptoMAE, tmp_path) -> None:
    cols = [f"f{i}" for i in range(6)]
    path = save_encoder(tmp_path, tiny_model, TINY, cols, "abc123", extra={"best_epoch": 3, "when": pd.Timestamp(0)})
    raw = torch.load(path, weights_only=True)
    assert raw["feature_columns"] == cols and raw["norm_fingerprint"] == "abc123"
    loaded = load_encoder(path, expected_config=TINY, expected_columns=cols)
    assert loaded.config == TINY and loaded.extra["best_epoch"] == 3 and not loaded.model.training
    x = torch.randn(2, WINDOW, 6)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model.encode(x), tiny_model.encode(x))


def test_dimension_mismatch_names_both_values(tiny_model: CryptoMAE, tmp_path) -> None:
    cols = [f"f{i}" for i in range(6)]
    path = save_encoder(tmp_path / "encoder.pth", tiny_model, TINY, cols, "fp")
    with pytest.raises(EncoderDimensionError, match="d_model: checkpoint has 16, expected 32"):
        load_encoder(path, expected_config=TINY.replace(d_model=32))
    with pytest.raises(EncoderDimensionError, match="n_layers: checkpoint has 1, expected 2") as info:
        load_encoder(path, expected_config=TINY.replace(n_layers=2, n_heads=4))
    assert "n_heads: checkpoint has 2, expected 4" in str(info.value) and str(path) in str(info.value)
    with pytest.raises(EncoderDimensionError, match="input width .*checkpoint has 6, expected 7"):
        load_encoder(path, expected_columns=cols + ["extra"])
    with pytest.raises(EncoderDimensionError, match="checkpoint has 'f2', expected 'g2'"):
        load_encoder(path, expected_columns=["f0", "f1", "g2", "f3", "f4", "f5"])


def test_corrupt_or_truncated_file_is_named(tiny_model: CryptoMAE, tmp_path) -> None:
    path = save_encoder(tmp_path, tiny_model, TINY, [f"f{i}" for i in range(6)], "fp")
    blob = path.read_bytes()
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(CorruptCheckpointError, match="truncated.pth"):
        load_encoder(truncated)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CorruptCheckpointError, match="garbage.pth"):
        load_encoder(garbage)
    foreign = tmp_path / "foreign.pth"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(CorruptCheckpointError, match="foreign.pth is not an encoder checkpoint"):
        load_encoder(foreign)
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        load_encoder(tmp_path / "missing.pth")


# --- embedding cache -------------------------------------------------------------------------

def test_encode_all_shape_dtype_padding_and_pooling(tiny_model: CryptoMAE) -> None:
    data = np.random.default_rng(0).standard_normal((150, 6)).astype(np.float32)
    emb = encode_all(tiny_model, data, batch_size=32, device="cpu")
    assert emb.shape == (150, WINDOW, TINY.d_model) and emb.dtype == torch.float32
    x = torch.from_numpy(data)
    with torch.no_grad():
        # Row 100: the window of rows 37..100; row 0: 64 copies of row 0 (left padding).
        torch.testing.assert_close(emb[100], tiny_model.encode(x[37:101].unsqueeze(0))[0])
        torch.testing.assert_close(emb[0], tiny_model.encode(x[:1].expand(WINDOW, -1).unsqueeze(0))[0])
    bf16 = encode_all(tiny_model, data, batch_size=64, device="cpu", dtype=torch.bfloat16)
    assert bf16.dtype == torch.bfloat16
    torch.testing.assert_close(bf16.float(), emb, atol=0.05, rtol=0.02)
    pooled = encode_all(tiny_model, data, device="cpu", tokens=16)
    assert pooled.shape == (150, 16, TINY.d_model)
    torch.testing.assert_close(pooled[:, 0], emb[:, :4].mean(1))
    assert cache_nbytes(11_600, 64, 256, torch.bfloat16) == 11_600 * 64 * 256 * 2
    with pytest.raises(EncoderDimensionError, match="expects"):
        encode_all(tiny_model, data[:, :5], device="cpu")


def test_encode_all_is_causal(tiny_model: CryptoMAE) -> None:
    frame = random_segment_frame(n_train=120, n_eval=0, n_test=0)
    before = encode_all(tiny_model, frame, device="cpu")
    changed = frame.copy()
    cols = feature_columns(frame)
    changed.loc[changed.index[90:], cols] += 5.0
    after = encode_all(tiny_model, changed, device="cpu")
    assert torch.equal(before[:90], after[:90])
    assert not torch.allclose(before[90:], after[90:])


def test_frozen_encoder_has_no_trainable_parameters() -> None:
    model = frozen_encoder(CryptoMAE(6, TINY).train())
    assert not model.training and all(not p.requires_grad for p in model.parameters())
