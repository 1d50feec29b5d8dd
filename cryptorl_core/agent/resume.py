"""Resume state of a policy training run, and the save on a termination signal.

Layout of a checkpoint directory::

    checkpoint_dir/
      ckpt_000000040000/       one complete checkpoint per folder (rotating, last N kept)
        model.zip              SB3 zip: weights, optimisers, step counter, ep-info buffer
        replay_buffer.pkl      the replay buffer (off-policy, if save_replay_buffer)
        state.json             callback states, run fingerprint, num_timesteps
      best_model.zip           best model by eval reward so far (written by SegmentEvalCallback)
      DONE.json                written when a run finishes; the next call starts fresh

A checkpoint is written into a temporary folder and renamed into place, so a crash during
the write leaves the previous checkpoint intact and never a half one. A checkpoint resumes a
run only when its fingerprint (configuration and data) matches.

What a resume restores: the model (weights, optimisers, ``log_ent_coef``, ``num_timesteps``,
episode counter), the replay buffer (if saved), and every callback's state (evaluation
history, best reward, early-stopping and overfitting counters, metric history). What it does
not restore: the envs' in-flight episodes (all envs start new episodes) and the global RNG
streams, so a resumed run continues the same training but is not bit-identical to an
uninterrupted one.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

logger = logging.getLogger(__name__)

CHECKPOINT_PREFIX = "ckpt_"
MODEL_FILE = "model.zip"
REPLAY_FILE = "replay_buffer.pkl"
STATE_FILE = "state.json"
BEST_MODEL_FILE = "best_model.zip"
DONE_FILE = "DONE.json"


class TrainingInterrupted(RuntimeError):
    """Training stopped on a termination signal after saving a checkpoint.

    :param checkpoint: the checkpoint written.
    :param num_timesteps: env transitions done.
    """

    def __init__(self, checkpoint: Path | None, num_timesteps: int, signum: int | None = None) -> None:
        name = signal.Signals(signum).name if signum is not None else "termination"
        super().__init__(f"training interrupted by {name} at {num_timesteps} steps; "
                         f"checkpoint {checkpoint} (re-run with the same checkpoint_dir to resume)")
        self.checkpoint, self.num_timesteps, self.signum = checkpoint, num_timesteps, signum

    def __reduce__(self) -> tuple[type, tuple[Path | None, int, int | None]]:
        # Pickles with its own arguments, so a seed worker's interruption reaches the caller.
        return type(self), (self.checkpoint, self.num_timesteps, self.signum)


@dataclass
class Checkpoint:
    """One complete checkpoint on disk.

    :param path: its folder.
    :param num_timesteps: env transitions done when it was saved.
    :param state: the content of ``state.json``.
    """

    path: Path
    num_timesteps: int
    state: dict[str, Any]

    @property
    def model_path(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def replay_path(self) -> Path:
        return self.path / REPLAY_FILE


def _checkpoint_dirs(checkpoint_dir: Path) -> list[Path]:
    """Complete checkpoint folders, oldest first (by step counter in the name)."""
    if not checkpoint_dir.exists():
        return []
    dirs = [p for p in checkpoint_dir.iterdir()
            if p.is_dir() and p.name.startswith(CHECKPOINT_PREFIX) and (p / STATE_FILE).exists()
            and (p / MODEL_FILE).exists()]
    return sorted(dirs, key=lambda p: int(p.name[len(CHECKPOINT_PREFIX):]))


def save_checkpoint(model: BaseAlgorithm, checkpoint_dir: str | os.PathLike, state: dict[str, Any],
                    keep_last: int = 3, save_replay_buffer: bool = True) -> Path:
    """Write one checkpoint atomically and delete all but the ``keep_last`` newest.

    :param model: the model being trained.
    :param checkpoint_dir: the run's checkpoint folder.
    :param state: JSON-able state (callback states, fingerprint); ``num_timesteps`` is added.
    :param keep_last: checkpoints kept (>= 1).
    :param save_replay_buffer: also pickle the replay buffer (off-policy models only).
    :return: the checkpoint folder.
    """
    root = Path(checkpoint_dir)
    root.mkdir(parents=True, exist_ok=True)
    step = int(model.num_timesteps)
    final = root / f"{CHECKPOINT_PREFIX}{step:012d}"
    tmp = root / f".tmp-{final.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    model.save(tmp / MODEL_FILE)
    if save_replay_buffer and isinstance(model, OffPolicyAlgorithm) and model.replay_buffer is not None:
        model.save_replay_buffer(tmp / REPLAY_FILE)
    # state.json last: its presence marks the folder complete.
    (tmp / STATE_FILE).write_text(json.dumps({**state, "num_timesteps": step}, default=float))
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in _checkpoint_dirs(root)[:-max(int(keep_last), 1)]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(checkpoint_dir: str | os.PathLike) -> list[Checkpoint]:
    """Every complete checkpoint, oldest first."""
    out = []
    for path in _checkpoint_dirs(Path(checkpoint_dir)):
        try:
            state = json.loads((path / STATE_FILE).read_text())
        except (OSError, ValueError):
            continue
        out.append(Checkpoint(path, int(state.get("num_timesteps", 0)), state))
    return out


def latest_checkpoint(checkpoint_dir: str | os.PathLike | None, fingerprint: str | None = None) -> Checkpoint | None:
    """The newest complete checkpoint whose fingerprint matches, or None.

    A ``DONE.json`` (finished run) or checkpoints of another fingerprint are cleared, so a
    new run never mixes with them.
    """
    if checkpoint_dir is None:
        return None
    root = Path(checkpoint_dir)
    if (root / DONE_FILE).exists():
        clear_checkpoints(root)
        return None
    found = list_checkpoints(root)
    if fingerprint is not None and found and found[-1].state.get("fingerprint") != fingerprint:
        logger.info("checkpoints in %s belong to another configuration or data; starting fresh", root)
        clear_checkpoints(root)
        return None
    return found[-1] if found else None


def clear_checkpoints(checkpoint_dir: str | os.PathLike) -> None:
    """Remove every checkpoint, the best model and the DONE marker of a run folder."""
    root = Path(checkpoint_dir)
    if not root.exists():
        return
    for p in root.iterdir():
        if p.name.startswith((CHECKPOINT_PREFIX, ".tmp-")):
            shutil.rmtree(p, ignore_errors=True)
    for name in (BEST_MODEL_FILE, DONE_FILE):
        (root / name).unlink(missing_ok=True)


def mark_done(checkpoint_dir: str | os.PathLike, summary: dict[str, Any]) -> None:
    """Record that the run finished (the next call with this folder starts a new run) and
    free the disk the checkpoints used."""
    root = Path(checkpoint_dir)
    (root / DONE_FILE).write_text(json.dumps(summary, default=str))
    for p in root.iterdir():
        if p.name.startswith((CHECKPOINT_PREFIX, ".tmp-")):
            shutil.rmtree(p, ignore_errors=True)


class GracefulTermination:
    """Context manager: while active, SIGTERM and SIGINT only set a flag, which the training
    loop polls (``ResumeCheckpointCallback``) to save a checkpoint and stop cleanly. The
    previous handlers are restored on exit.

    Why both: a run cancel reaches a run worker as SIGTERM, and Dagster's multiprocess executor
    passes it on to each step process as SIGINT; Ctrl-C in a terminal or notebook is SIGINT too.
    Either way the run stops at a checkpoint. A repeated signal only sets the flag again.

    Signal handlers can only be installed from the main thread; elsewhere this is a no-op
    (the flag can still be set with :meth:`request`).

    :param signals: signals to intercept.
    """

    def __init__(self, signals: Sequence[int] = (signal.SIGTERM, signal.SIGINT)) -> None:
        self.signals = tuple(signals)
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def request(self, signum: int = signal.SIGTERM, frame: FrameType | None = None) -> None:
        """The handler: remember the signal (the training loop does the rest)."""
        if self.signum is None:
            logger.warning("received %s: saving a checkpoint and stopping", signal.Signals(signum).name)
        self.signum = signum

    def __enter__(self) -> GracefulTermination:
        if threading.current_thread() is threading.main_thread():
            for sig in self.signals:
                self._previous[sig] = signal.signal(sig, self.request)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


def callback_states(callbacks: Sequence[Any]) -> dict[str, Any]:
    """``{state_key: state_dict()}`` of every stateful callback."""
    return {cb.state_key: cb.state_dict() for cb in callbacks if getattr(cb, "state_key", "")}


def restore_callback_states(callbacks: Sequence[Any], states: dict[str, Any]) -> None:
    """Inverse of :func:`callback_states`."""
    for cb in callbacks:
        key = getattr(cb, "state_key", "")
        if key and key in states:
            cb.load_state_dict(states[key])


def make_save_fn(checkpoint_dir: Path, callbacks: Sequence[Any], extra_state: dict[str, Any],
                 keep_last: int, save_replay_buffer: bool) -> Callable[[BaseAlgorithm], Path]:
    """The ``save_fn`` of ``ResumeCheckpointCallback``: model + replay buffer + callback states."""

    def save(model: BaseAlgorithm) -> Path:
        state = {**extra_state, "callbacks": callback_states(callbacks)}
        return save_checkpoint(model, checkpoint_dir, state, keep_last, save_replay_buffer)

    return save
