"""Batched torch trading environment (SB3 ``VecEnv``) and its scalar reference."""

from cryptorl_core.device import resolve_device
from cryptorl_core.env.batch_env import (
    OBS_KEYS,
    BatchCryptoEnv,
    gather_rows,
    gather_windows,
    row_index,
)
from cryptorl_core.env.config import EnvConfig
from cryptorl_core.env.market import SegmentMarket
from cryptorl_core.env.reference import ReferenceCryptoEnv

__all__ = [
    "OBS_KEYS",
    "BatchCryptoEnv",
    "EnvConfig",
    "ReferenceCryptoEnv",
    "SegmentMarket",
    "gather_rows",
    "gather_windows",
    "resolve_device",
    "row_index",
]
