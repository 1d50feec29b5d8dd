"""Seeds trained at once in worker processes: best-of-N selection at about the wall time of one run.

Why processes, not threads: at the quick profile's size SB3's Python loop is the bottleneck,
and threads would share one GIL. Each worker trains on ``AgentConfig.cpu_threads`` torch
threads, so two seeds fill a 2-core machine. Workers are spawned, never forked (torch's thread
pools and CUDA do not survive a fork), and every call runs in a fresh process, so a run gives
the same policy alone or next to another.

Termination: a SIGTERM or SIGINT to the caller (a run cancel, Ctrl-C) is passed on to the
workers, whose own :class:`~cryptorl_core.agent.resume.GracefulTermination` saves a checkpoint
as a lone run does; the caller raises :class:`~cryptorl_core.agent.resume.TrainingInterrupted`
once every worker has stopped.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from types import FrameType
from typing import Any, TypeVar

from cryptorl_core.agent.resume import GracefulTermination, TrainingInterrupted

T = TypeVar("T")


class ForwardedTermination(GracefulTermination):
    """:class:`GracefulTermination` that also passes the signal on to this process's live
    multiprocessing children (the seed workers), so each saves its own checkpoint."""

    def request(self, signum: int = signal.SIGTERM, frame: FrameType | None = None) -> None:
        super().request(signum, frame)
        for child in multiprocessing.active_children():
            with contextlib.suppress(ProcessLookupError, TypeError):  # exited meanwhile / not started
                os.kill(child.pid, signum)


def _configure_worker_logging(level: int) -> None:
    """Worker initializer: the caller's log level, on the worker's stderr."""
    logging.basicConfig(level=level, format="%(asctime)s %(processName)s %(name)s %(levelname)s: %(message)s")


def run_in_workers(fn: Callable[..., T], calls: Sequence[dict[str, Any]], workers: int) -> list[T]:
    """``[fn(**kwargs) for kwargs in calls]``, run in up to ``workers`` spawned processes at once.

    Every call runs to its end, even when another fails, so that each interrupted worker has
    saved its checkpoint before this returns or raises.

    :param fn: a module-level function (spawned workers import it by name); arguments and
        result must pickle.
    :param calls: keyword arguments of each call.
    :param workers: processes at once (at least 1).
    :return: the results, in the order of ``calls``.
    :raises TrainingInterrupted: a termination signal arrived (the first worker's, or one for a
        worker killed by it before its own guard was up).
    :raises Exception: the first other exception a call raised.
    """
    context = multiprocessing.get_context("spawn")
    outcomes: list[Any] = []
    with ForwardedTermination() as guard, ProcessPoolExecutor(
            max_workers=max(1, workers), mp_context=context, initializer=_configure_worker_logging,
            initargs=(logging.getLogger().getEffectiveLevel(),)) as pool:
        futures = [pool.submit(fn, **kwargs) for kwargs in calls]
        for future in futures:
            try:
                outcomes.append(future.result())
            except Exception as exc:  # noqa: BLE001 - collected; raised after every worker stopped
                outcomes.append(exc)
    errors = [o for o in outcomes if isinstance(o, Exception)]
    interrupted = [e for e in errors if isinstance(e, TrainingInterrupted)]
    if interrupted:
        raise interrupted[0]
    if guard.requested and any(isinstance(e, BrokenProcessPool) for e in errors):
        raise TrainingInterrupted(None, 0, guard.signum) from errors[0]
    if errors:
        raise errors[0]
    return outcomes
