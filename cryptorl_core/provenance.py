"""What a model was trained with, beyond its configuration and seed.

The same code, configuration and seed give the same policy on one machine, but not on
another: float kernels differ between CPUs and between releases of torch and numpy, and
training amplifies the difference. Two synthetic backfills of one commit, on two machines,
differed in every segment (``docs/EXPERIMENTS.md``, "Backfill 13 again"). So each trained
policy records the software and hardware it was trained on, next to its configuration.
"""

from __future__ import annotations

import platform
import sys
from importlib import metadata
from pathlib import Path

import torch

#: The distributions whose numerics reach a trained policy or its backtest.
NUMERIC_PACKAGES: tuple[str, ...] = ("torch", "numpy", "stable-baselines3", "sb3-contrib", "gymnasium",
                                     "hmmlearn", "scikit-learn", "scipy", "pandas")

#: Where Linux names the CPU model.
CPUINFO = Path("/proc/cpuinfo")


def cpu_model(cpuinfo: Path = CPUINFO) -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what :func:`platform.processor` says,
    else ``"unknown"``."""
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def package_versions(names: tuple[str, ...] = NUMERIC_PACKAGES) -> dict[str, str]:
    """Installed version of each distribution (``"not installed"`` when absent)."""
    versions: dict[str, str] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def training_environment(device: torch.device | str = "cpu") -> dict[str, str]:
    """The machine and software a model is trained on: Python, OS and architecture, CPU model,
    the accelerator's name on CUDA, and :data:`NUMERIC_PACKAGES`' versions (torch's threads are
    the configuration's ``cpu_threads``). Flat strings, for JSON files and asset metadata alike.

    :param device: the training device.
    """
    dev = torch.device(device)
    env = {"python": sys.version.split()[0], "platform": platform.platform(), "machine": platform.machine(),
           "cpu": cpu_model()}
    if dev.type == "cuda":
        env["accelerator"] = torch.cuda.get_device_name(dev)
    return {**env, **package_versions()}
