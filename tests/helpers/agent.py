"""Tiny inputs shared by the agent tests: a small frozen encoder, the real HMM context, a
configuration that trains in seconds, a ``profile`` resource with a tiny agent network for the
Dagster tests, and a callback that cancels a run the way Dagster does."""

from __future__ import annotations

import dataclasses
import os
import signal

import pandas as pd
import torch
from stable_baselines3.common.callbacks import BaseCallback

from cryptorl_core.agent import AgentConfig
from cryptorl_core.encoder import CryptoMAE, LoadedEncoder, MAEConfig
from cryptorl_core.env import EnvConfig
from cryptorl_core.profiles import PipelineConfig
from cryptorl_core.schema import feature_columns
from cryptorl_dagster.resources import ProfileResource

TINY_MAE = MAEConfig(d_model=8, n_heads=2, n_layers=1, dim_feedforward=16, decoder_hidden=8, dropout=0.0)


def in_memory_encoder(frame: pd.DataFrame, config: MAEConfig, seed: int = 0) -> LoadedEncoder:
    """An untrained (random, seeded) encoder of the frame's technical columns, never saved."""
    columns = feature_columns(frame)
    torch.manual_seed(seed)
    return LoadedEncoder.in_memory(CryptoMAE(len(columns), config).eval(), columns)


def tiny_encoder(frame: pd.DataFrame, seed: int = 0) -> LoadedEncoder:
    """An untrained (random, seeded) :data:`TINY_MAE` encoder of the frame's technical columns."""
    return in_memory_encoder(frame, TINY_MAE, seed)


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
        keep_checkpoints=2, log_freq=5, min_evals=1, patience=100, n_seeds=1, seed_workers=1,
        collapse_retries=0, fail_on_collapse=False,
    )
    return base.replace(**changes)


def tiny_network(config: AgentConfig) -> AgentConfig:
    """``config`` with every width shrunk (tokens 1, features 16, heads 16x16, batch 32), one
    seed, and a collapsed policy published (marked) instead of failing: for smoke tests of the
    wiring only (a run config can ask for more seeds)."""
    return config.replace(tokens=1, features_dim=16, film_hidden=8, net_arch=(16, 16), batch_size=32,
                          learning_starts=min(config.learning_starts, 64),
                          buffer_size=min(config.buffer_size, 5_000), n_seeds=1, seed_workers=1,
                          collapse_retries=0, fail_on_collapse=False)


class TinyNetworkProfile(ProfileResource):
    """The named profile with :func:`tiny_network` applied to its agent and the quick-size
    encoder: the ``profile`` resource of the Dagster tests that train ``tqc_policy`` (the run
    config sets the steps, envs and encoder epochs)."""

    def pipeline(self) -> PipelineConfig:
        base = super().pipeline()
        return dataclasses.replace(base, agent=tiny_network(base.agent), mae=MAEConfig.quick())


class SendSignal(BaseCallback):
    """Sends ``sig`` to this process once, after ``at`` transitions: SIGTERM is what a run cancel
    sends a run worker, SIGINT what Dagster passes on to a step process and what Ctrl-C sends."""

    def __init__(self, at: int, sig: int = signal.SIGTERM) -> None:
        super().__init__()
        self.at, self.sig, self.sent = at, sig, False

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.at and not self.sent:
            self.sent = True
            os.kill(os.getpid(), self.sig)
        return True
