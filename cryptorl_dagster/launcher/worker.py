"""Run-worker processes: recording, finding and signalling them from any process on the host.

The launcher records the worker's pid and host in run tags, so the webserver and the daemon
(other processes than the one that launched the run) can terminate it or check its health.
The worker runs in its own session, so a Ctrl-C meant for the webserver or the daemon does not
reach it. A cancel signals the worker alone: Dagster's multiprocess executor passes the
interrupt on to its step subprocesses, so each gets one signal, at a point Dagster expects.
"""

from __future__ import annotations

import os
import signal
import socket

from dagster import DagsterRun

#: Run tags written by the launcher.
WORKER_PID_TAG = "cryptorl/worker-pid"
WORKER_HOST_TAG = "cryptorl/worker-host"


def hostname() -> str:
    """This machine's name, as recorded in :data:`WORKER_HOST_TAG`."""
    return socket.gethostname()


def worker_pid(run: DagsterRun) -> int | None:
    """The worker pid recorded on ``run``, or None if absent or malformed."""
    raw = run.tags.get(WORKER_PID_TAG)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def on_this_host(run: DagsterRun) -> bool:
    """Whether the run's worker was launched on this machine (pids are per host)."""
    return run.tags.get(WORKER_HOST_TAG) == hostname()


def is_worker_alive(pid: int, run_id: str) -> bool:
    """Whether ``pid`` is alive and is the worker of ``run_id``.

    On Linux the command line is checked for the run id, which guards against a recycled pid
    (and treats a zombie, whose command line is empty, as dead). Elsewhere only liveness is known.
    """
    cmdline_path = f"/proc/{pid}/cmdline"
    if os.path.isdir("/proc/self"):
        try:
            with open(cmdline_path, "rb") as f:
                return run_id.encode() in f.read()
        except OSError:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def signal_worker(pid: int, sig: int = signal.SIGTERM) -> bool:
    """Send ``sig`` to the worker process; False if it no longer exists."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True
