"""Torch device selection shared by every training stage."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from cryptorl_core.settings import DEVICE_ENV, device_request

#: Environment variable read when the device is "auto" (set by the run launcher).
DEVICE_ENV_VAR = DEVICE_ENV


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Turn a device request into a concrete :class:`torch.device`.

    :param device: ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"auto"`` or ``None``. ``"auto"``
        first honours ``$CRYPTORL_DEVICE``, then picks CUDA when available, else CPU.
    :return: the device. Asking for CUDA where there is none falls back to CPU, because
        every CUDA code path also runs on CPU; the caller logs the fallback.
    """
    if isinstance(device, torch.device):
        return device
    name = (device or "auto").strip().lower()
    if name == "auto":
        name = device_request()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        name = "cpu"
    return torch.device(name)


@contextmanager
def cpu_threads(n: int | None) -> Iterator[None]:
    """Temporarily set torch's intra-op thread count (``None``: leave it).

    Small models on a 2-core machine train faster on one thread: intra-op threading of
    tiny tensors costs more in synchronisation than it gains, and oversubscribes a shared box.
    """
    previous = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
