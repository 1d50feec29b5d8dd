"""Cheap, cached check that a CUDA environment is usable before a GPU run is launched."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time

#: Probe kinds accepted in the launcher config.
PROBES = ("nvidia-smi", "torch", "present", "absent")

_TORCH_SNIPPET = "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"


class CudaProbe:
    """Answers "can ``python`` run CUDA work here?" and caches the answer for ``ttl_s`` seconds.

    :param kind: ``nvidia-smi`` (a driver and at least one GPU are visible), ``torch`` (the CUDA
        interpreter's torch sees a GPU: exact, but imports torch), ``present`` / ``absent``
        (declare the answer: containers without nvidia-smi, tests).
    :param timeout_s: how long a probe command may take before it counts as "no GPU".
    :param ttl_s: how long an answer is reused; the daemon lives for days, GPUs can come and go.
    """

    def __init__(self, kind: str = "nvidia-smi", timeout_s: float = 20.0, ttl_s: float = 600.0):
        if kind not in PROBES:
            raise ValueError(f"cuda_probe must be one of {PROBES}, got {kind!r}")
        self.kind = kind
        self.timeout_s = timeout_s
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[float, bool, str]] = {}
        self._lock = threading.Lock()

    def check(self, python: str) -> tuple[bool, str]:
        """Whether ``python`` can run CUDA work, and why not when it cannot.

        :param python: path of the CUDA environment's interpreter.
        :return: ``(available, reason)``; ``reason`` explains a negative answer.
        """
        if not (os.path.isfile(python) and os.access(python, os.X_OK)):
            return False, f"CUDA python {python!r} does not exist or is not executable"
        with self._lock:
            cached = self._cache.get(python)
            if cached is not None and time.monotonic() - cached[0] < self.ttl_s:
                return cached[1], cached[2]
            available, reason = self._run_probe(python)
            self._cache[python] = (time.monotonic(), available, reason)
            return available, reason

    def _run_probe(self, python: str) -> tuple[bool, str]:
        if self.kind == "present":
            return True, "declared present (cuda_probe: present)"
        if self.kind == "absent":
            return False, "declared absent (cuda_probe: absent)"
        if self.kind == "nvidia-smi":
            exe = shutil.which("nvidia-smi")
            if exe is None:
                return False, "nvidia-smi not found on PATH"
            ok, out = _run([exe, "-L"], self.timeout_s)
            if ok and "GPU" in out:
                return True, out.strip().splitlines()[0]
            return False, f"nvidia-smi -L lists no GPU: {out.strip()[:200]}"
        ok, out = _run([python, "-c", _TORCH_SNIPPET], self.timeout_s)
        return (
            (True, "torch.cuda.is_available()")
            if ok
            else (
                False,
                f"torch.cuda.is_available() is False in {python}: {out.strip()[-200:]}",
            )
        )


def _run(cmd: list[str], timeout_s: float) -> tuple[bool, str]:
    """Run a probe command; a timeout or OS error counts as failure."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        return False, str(err)
    return proc.returncode == 0, proc.stdout + proc.stderr
