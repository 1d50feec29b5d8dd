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
from cryptorl_core.env.discrete import (
    DiscretePositionWrapper,
    env_actions,
    index_to_action,
    position_grid,
)
from cryptorl_core.env.market import SegmentMarket
from cryptorl_core.env.reference import ReferenceCryptoEnv

__all__ = [
    "OBS_KEYS",
    "BatchCryptoEnv",
    "DiscretePositionWrapper",
    "EnvConfig",
    "ReferenceCryptoEnv",
    "SegmentMarket",
    "env_actions",
    "gather_rows",
    "gather_windows",
    "index_to_action",
    "position_grid",
    "resolve_device",
    "row_index",
]
