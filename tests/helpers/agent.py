"""Tiny inputs shared by the agent tests: a small frozen encoder, the real HMM context, a
configuration that trains in seconds, and a callback that cancels a run the way Dagster does."""

from __future__ import annotations

import os
import signal

import pandas as pd
import torch
from stable_baselines3.common.callbacks import BaseCallback

from cryptorl_core.agent import AgentConfig
from cryptorl_core.encoder import CryptoMAE, MAEConfig
from cryptorl_core.env import EnvConfig
from cryptorl_core.schema import feature_columns

TINY_MAE = MAEConfig(d_model=8, n_heads=2, n_layers=1, dim_feedforward=16, decoder_hidden=8, dropout=0.0)


def tiny_encoder(frame: pd.DataFrame, seed: int = 0) -> CryptoMAE:
    """An untrained (random, seeded) encoder of the frame's technical columns."""
    torch.manual_seed(seed)
    return CryptoMAE(len(feature_columns(frame)), TINY_MAE).eval()


def hmm_context(frame: pd.DataFrame) -> pd.DataFrame:
    """The real regime stage's filtered context (fits in well under a second)."""
    from cryptorl_core.regime import HMMConfig, fit_regime_model

    cfg = HMMConfig.quick() if hasattr(HMMConfig, "quick") else HMMConfig()
    return fit_regime_model(frame, cfg).context(frame)


def tiny_config(**changes: object) -> AgentConfig:
    """A few hundred steps of TQC with tiny nets (seconds on a CPU)."""
    base = AgentConfig.quick().replace(
        total_timesteps=480, n_envs=4, batch_size=32, buffer_size=2_000, learning_starts=64,
        gradient_steps=1, net_arch=(16, 16), tokens=1, features_dim=16, film_hidden=8,
        env=EnvConfig(n_envs=4, episode_length=64), eval_freq=240, checkpoint_freq=160,
        keep_checkpoints=2, log_freq=5, min_evals=1, patience=100, collapse_retries=0,
        fail_on_collapse=False,
    )
    return base.replace(**changes)


class SendSigterm(BaseCallback):
    """Sends SIGTERM to this process (what Dagster's run cancel does) once, after ``at`` transitions."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at, self.sent = at, False

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.at and not self.sent:
            self.sent = True
            os.kill(os.getpid(), signal.SIGTERM)
        return True
