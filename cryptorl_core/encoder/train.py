"""Pre-training of :class:`~cryptorl_core.encoder.model.CryptoMAE` on one segment.

Read :func:`train_mae` top to bottom: windows -> model -> optimizer -> (resume) -> epochs
(train, eval, keep best, checkpoint, early stop) -> best weights.

Leakage: training windows lie wholly inside the train rows and eval windows wholly inside
the eval rows (the purge gaps between them are at least one window long); test rows are
never read.

Resume: with a ``checkpoint_dir`` every completed epoch is saved atomically to
``mae_state.pt`` (weights, optimizer, scheduler, best weights, history, early-stopping
counters and RNG states). A later call with the same directory, config and data continues
after the last completed epoch and ends with exactly the result of an uninterrupted run
(on the same device). A finished run writes ``DONE.json`` and removes the state, so the
next call starts fresh; a state whose run fingerprint (config, columns, data) differs is
discarded, not resumed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from tqdm.auto import tqdm

from cryptorl_core.device import cpu_threads, resolve_device
from cryptorl_core.encoder.artifact import atomic_torch_save
from cryptorl_core.encoder.config import MAEConfig
from cryptorl_core.encoder.model import CryptoMAE, count_parameters
from cryptorl_core.encoder.windows import SplitWindows, feature_matrix
from cryptorl_core.features.pipeline import FeatureParams
from cryptorl_core.schema import EVAL, TRAIN, feature_columns
from cryptorl_core.seeding import seed_everything

logger = logging.getLogger(__name__)

STATE_FILE = "mae_state.pt"
DONE_FILE = "DONE.json"


@dataclass
class MAETrainResult:
    """Outcome of :func:`train_mae`.

    :param model: the model with its best-epoch weights, in ``eval()`` mode, on ``device``.
    :param config: the configuration used.
    :param feature_columns: input columns, in order.
    :param norm_fingerprint: fingerprint of the frame's feature normalisation.
    :param history: one dict per epoch: ``epoch``, ``train_loss``, ``eval_loss``,
        ``seconds``, ``lr``, ``train_windows_per_s``.
    :param best_epoch: epoch (1-based) whose weights were kept.
    :param best_eval_loss: its eval reconstruction loss (masked MSE).
    :param best_train_loss: its train loss.
    :param n_params: trainable parameters.
    :param device: device trained on.
    :param seed: the seed.
    :param start_epoch: first epoch this call ran (> 1 when it resumed).
    :param stopped_early: whether early stopping ended training.
    :param n_train_windows: train windows per epoch.
    :param n_eval_windows: eval windows.
    :param run_fingerprint: hash of config, columns and data (decides resuming).
    """

    model: CryptoMAE
    config: MAEConfig
    feature_columns: list[str]
    norm_fingerprint: str
    history: list[dict[str, float]]
    best_epoch: int
    best_eval_loss: float
    best_train_loss: float
    n_params: int
    device: str
    seed: int
    start_epoch: int
    stopped_early: bool
    n_train_windows: int
    n_eval_windows: int
    run_fingerprint: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds_per_epoch(self) -> float:
        """Mean wall time of the epochs run (including resumed ones)."""
        return sum(h["seconds"] for h in self.history) / max(len(self.history), 1)

    def metrics(self) -> dict[str, Any]:
        """Scalars for metadata and the checkpoint's ``extra``."""
        return {
            "best_epoch": self.best_epoch, "best_eval_loss": self.best_eval_loss,
            "best_train_loss": self.best_train_loss, "epochs_run": len(self.history),
            "start_epoch": self.start_epoch, "stopped_early": self.stopped_early,
            "n_params": self.n_params, "seconds_per_epoch": self.seconds_per_epoch,
            "device": self.device, "seed": self.seed, "n_train_windows": self.n_train_windows,
            "n_eval_windows": self.n_eval_windows, "run_fingerprint": self.run_fingerprint,
        }


def norm_fingerprint_of(frame: pd.DataFrame) -> str:
    """The feature-normalisation fingerprint stored in ``frame.attrs`` by the features stage
    (``"fingerprint"``, else recomputed from ``"feature_params"``); ``"unknown"`` if absent."""
    if frame.attrs.get("fingerprint"):
        return str(frame.attrs["fingerprint"])
    if frame.attrs.get("feature_params"):
        return FeatureParams.from_dict(frame.attrs["feature_params"]).fingerprint()
    return "unknown"


def run_fingerprint(config: MAEConfig, columns: list[str], data: torch.Tensor) -> str:
    """Hash of everything that determines a training run: config, columns and the data."""
    h = hashlib.sha256(config.fingerprint().encode())
    h.update(json.dumps(columns).encode())
    h.update(data.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def cosine_schedule(optimizer: torch.optim.Optimizer, total_steps: int,
                    warmup_frac: float) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up to the peak learning rate, then cosine decay to zero, per step."""
    warmup = max(1, int(warmup_frac * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def fixed_masks(model: CryptoMAE, n: int, seed: int, device: torch.device) -> torch.Tensor:
    """Masks drawn once from their own generator, so every epoch's eval loss is comparable."""
    return model.sample_mask(n, device, generator=torch.Generator().manual_seed(seed))


def train_one_epoch(step_model: torch.nn.Module, windows: SplitWindows, optimizer: torch.optim.Optimizer,
                    scheduler: torch.optim.lr_scheduler.LRScheduler, config: MAEConfig,
                    shuffle: torch.Generator, use_amp: bool, model: CryptoMAE) -> float:
    """One pass over the shuffled train windows; returns the mean masked MSE."""
    step_model.train()
    device = windows.data.device
    total, steps = torch.zeros((), device=device), 0
    for batch in windows.batches(config.batch_size, generator=shuffle, drop_last=True):
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_amp):
            loss, _, _ = step_model(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        scheduler.step()
        total += loss.detach()  # summed on the device: no host sync per step
        steps += 1
    return float(total) / max(steps, 1)


@torch.no_grad()
def evaluate(step_model: torch.nn.Module, windows: SplitWindows, masks: torch.Tensor,
             batch_size: int, use_amp: bool) -> float:
    """Masked MSE over the eval windows with the fixed ``masks``, weighted by window."""
    step_model.eval()
    device = windows.data.device
    total = torch.zeros((), device=device)
    for i, batch in enumerate(windows.batches(batch_size)):
        mask = masks[i * batch_size : i * batch_size + batch.shape[0]]
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_amp):
            loss, _, _ = step_model(batch, mask)
        total += loss.float() * batch.shape[0]
    return float(total) / max(len(windows), 1)


def _cpu_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def _rng_state(shuffle: torch.Generator) -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "shuffle": shuffle.get_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def _restore_rng(state: dict[str, Any], shuffle: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    shuffle.set_state(state["shuffle"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_resume_state(checkpoint_dir: Path | None, fingerprint: str) -> dict[str, Any] | None:
    """The saved epoch state to resume from, or ``None`` to start fresh.

    A finished run (``DONE.json``), an unreadable state or one from a different run
    fingerprint is cleared so it cannot be mixed with this run.
    """
    if checkpoint_dir is None:
        return None
    state_path, done_path = checkpoint_dir / STATE_FILE, checkpoint_dir / DONE_FILE
    if done_path.exists():
        done_path.unlink()
        state_path.unlink(missing_ok=True)
        return None
    if not state_path.exists():
        return None
    try:
        state = torch.load(state_path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a torn or foreign file: training from scratch is always safe
        logger.warning("ignoring unreadable MAE state %s (%s); starting fresh", state_path, exc)
        state_path.unlink(missing_ok=True)
        return None
    if state.get("run_fingerprint") != fingerprint:
        logger.info("MAE state %s belongs to another config/data; starting fresh", state_path)
        state_path.unlink(missing_ok=True)
        return None
    return state


def train_mae(frame: pd.DataFrame, config: MAEConfig, checkpoint_dir: str | os.PathLike | None = None,
              device: str | torch.device = "auto", progress: bool = True,
              on_epoch_end: Callable[[dict[str, float]], None] | None = None) -> MAETrainResult:
    """Pre-train the MAE (see :func:`_train_mae`) with ``config.cpu_threads`` torch threads on CPU."""
    on_cpu = resolve_device(device).type == "cpu"
    with cpu_threads(config.cpu_threads if on_cpu else None):
        return _train_mae(frame, config, checkpoint_dir, device, progress, on_epoch_end)


def _train_mae(frame: pd.DataFrame, config: MAEConfig, checkpoint_dir: str | os.PathLike | None,
               device: str | torch.device, progress: bool,
               on_epoch_end: Callable[[dict[str, float]], None] | None) -> MAETrainResult:
    """Pre-train the MAE on a segment's train windows, early-stopping on eval windows.

    :param frame: a segment frame (technical columns and ``split``).
    :param config: hyper-parameters (:meth:`MAEConfig.quick` / :meth:`MAEConfig.full`).
    :param checkpoint_dir: folder for the per-epoch resume state; ``None`` disables resuming.
    :param device: ``"cpu"``, ``"cuda"`` or ``"auto"``. bf16 autocast and ``torch.compile``
        are used only on CUDA (and only if ``config.amp`` / ``config.compile``).
    :param progress: show a tqdm bar over epochs.
    :param on_epoch_end: called with each epoch's history entry after its state is saved
        (an exception raised there interrupts training; a re-run resumes after that epoch).
    :return: the trained model (best epoch) and its history.
    """
    dev = resolve_device(device)
    if str(device).startswith("cuda") and dev.type != "cuda":
        logger.warning("CUDA requested but not available; training the MAE on CPU")
    use_amp = config.amp and dev.type == "cuda"
    use_compile = config.compile and dev.type == "cuda"
    seed_everything(config.seed)

    # Data: one feature matrix on the device, windows gathered by index.
    columns = feature_columns(frame)
    data = torch.from_numpy(feature_matrix(frame, columns)).to(dev)
    train_w = SplitWindows.from_frame(frame, TRAIN, config.window, config.max_train_windows, data=data)
    eval_w = SplitWindows.from_frame(frame, EVAL, config.window, config.max_eval_windows, data=data)
    if len(train_w) == 0 or len(eval_w) == 0:
        raise ValueError(f"MAE needs windows of {config.window} consecutive train and eval rows; "
                         f"found {len(train_w)} train and {len(eval_w)} eval windows")
    fingerprint = run_fingerprint(config, columns, data)

    # Model, optimizer, schedule.
    model = CryptoMAE(len(columns), config).to(dev)
    step_model = torch.compile(model) if use_compile else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = train_w.n_batches(config.batch_size, drop_last=True)
    windows_per_epoch = min(len(train_w), steps_per_epoch * config.batch_size)
    scheduler = cosine_schedule(optimizer, config.epochs * steps_per_epoch, config.warmup_frac)
    shuffle = torch.Generator().manual_seed(config.seed)
    eval_masks = fixed_masks(model, len(eval_w), config.eval_mask_seed, dev)

    # Training state, possibly restored from the last completed epoch.
    history: list[dict[str, float]] = []
    best_state, best_epoch, best_eval, best_train, since_best = _cpu_state(model), 0, math.inf, math.inf, 0
    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if ckpt_dir is not None:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
    state = load_resume_state(ckpt_dir, fingerprint)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history = list(state["history"])
        best_state, best_epoch = state["best_state"], int(state["best_epoch"])
        best_eval, best_train = float(state["best_eval_loss"]), float(state["best_train_loss"])
        since_best = int(state["epochs_since_best"])
        _restore_rng(state["rng"], shuffle)
        logger.info("resuming MAE training after epoch %d from %s", len(history), ckpt_dir)
    start_epoch = len(history) + 1
    stopped_early = since_best >= config.patience

    bar = tqdm(range(start_epoch, config.epochs + 1), desc="mae", disable=not progress,
               initial=start_epoch - 1, total=config.epochs)
    for epoch in bar:
        if stopped_early:
            break
        t0 = time.perf_counter()
        train_loss = train_one_epoch(step_model, train_w, optimizer, scheduler, config, shuffle,
                                     use_amp, model)
        train_seconds = time.perf_counter() - t0
        eval_loss = evaluate(step_model, eval_w, eval_masks, config.batch_size, use_amp)
        entry = {"epoch": epoch, "train_loss": train_loss, "eval_loss": eval_loss,
                 "seconds": time.perf_counter() - t0, "lr": scheduler.get_last_lr()[0],
                 "train_windows_per_s": windows_per_epoch / train_seconds}
        history.append(entry)

        # Keep the best epoch's weights; stop after `patience` epochs without improvement.
        if eval_loss < best_eval - config.min_delta:
            best_state, best_epoch, best_eval, best_train, since_best = (
                _cpu_state(model), epoch, eval_loss, train_loss, 0)
        else:
            since_best += 1
        stopped_early = since_best >= config.patience
        bar.set_postfix(train=f"{train_loss:.4f}", eval=f"{eval_loss:.4f}", best=best_epoch)

        if ckpt_dir is not None:
            atomic_torch_save({
                "run_fingerprint": fingerprint, "epoch": epoch, "model": _cpu_state(model),
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "best_state": best_state, "best_epoch": best_epoch, "best_eval_loss": best_eval,
                "best_train_loss": best_train, "epochs_since_best": since_best,
                "history": history, "rng": _rng_state(shuffle),
            }, ckpt_dir / STATE_FILE)
        if on_epoch_end is not None:
            on_epoch_end(entry)
    bar.close()

    if ckpt_dir is not None:
        # Marker first, then drop the state: a crash in between still means "finished".
        (ckpt_dir / DONE_FILE).write_text(json.dumps(
            {"run_fingerprint": fingerprint, "best_epoch": best_epoch, "epochs": len(history)}))
        (ckpt_dir / STATE_FILE).unlink(missing_ok=True)

    model.load_state_dict(best_state)
    model.eval()
    return MAETrainResult(
        model=model, config=config, feature_columns=columns, norm_fingerprint=norm_fingerprint_of(frame),
        history=history, best_epoch=best_epoch, best_eval_loss=best_eval, best_train_loss=best_train,
        n_params=count_parameters(model), device=str(dev), seed=config.seed, start_epoch=start_epoch,
        stopped_early=stopped_early, n_train_windows=len(train_w), n_eval_windows=len(eval_w),
        run_fingerprint=fingerprint,
    )
