"""Stand-ins for the backtest stage's upstream assets: a random-walk segment frame (train |
purged | test), a random but valid HMM context, a hand-set regime model, a tiny untrained
encoder, tiny TQC policies, and a policy that trades every bar."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import torch

from cryptorl_core.agent import AgentConfig, PolicyArtifact
from cryptorl_core.encoder.artifact import ENCODER_FILENAME, EncoderArtifact
from cryptorl_core.encoder.config import MAEConfig
from cryptorl_core.env import EnvConfig
from cryptorl_core.regime.model import RegimeModel
from cryptorl_core.schema import HMM_COLUMNS, PRICE_CLOSE_COL, PRICE_OPEN_COL, SPLIT_COL
from cryptorl_dagster.partitions import segment_partitions

N_TRAIN, N_PURGE, N_TEST = 700, 64, 600
TECH = ("f_ret", "f_vol", "f_mom")
#: A tiny encoder / extractor (seconds on a 2-core CPU).
D_MODEL, TOKENS = 8, 4
TINY_ENCODER = MAEConfig(d_model=D_MODEL, n_heads=2, n_layers=1, dim_feedforward=16, decoder_hidden=8, dropout=0.0)


def random_walk_frame(seed: int = 0, n_test: int = N_TEST, drift: float = 0.0, vol: float = 0.01,
                      start: str = "2024-01-01") -> pd.DataFrame:
    """A segment frame over an i.i.d. Gaussian log random walk: train | purged | test.

    Opens equal the previous close (a 24/7 market has no overnight gap), so bar t+1's return
    is independent of everything known at bar t's close.
    """
    rng = np.random.default_rng(seed)
    n = N_TRAIN + N_PURGE + n_test
    close = 100.0 * np.exp(np.cumsum(rng.normal(drift, vol, n)))
    open_ = np.concatenate([[100.0], close[:-1]])
    index = pd.date_range(start, periods=n, freq="h", tz="UTC", name="timestamp")
    frame = pd.DataFrame({c: rng.normal(size=n).astype(np.float32) for c in TECH}, index=index)
    frame[SPLIT_COL] = ["train"] * N_TRAIN + ["purged"] * N_PURGE + ["test"] * n_test
    frame[PRICE_OPEN_COL] = open_
    frame[PRICE_CLOSE_COL] = close
    return frame


def hmm_context_frame(frame: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Random but valid HMM context (probabilities summing to 1, and an entropy)."""
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(4), size=len(frame)).astype(np.float32)
    entropy = -(p * np.log(p)).sum(axis=1) / np.log(4)
    return pd.DataFrame(np.column_stack([p, entropy]), index=frame.index, columns=list(HMM_COLUMNS))


def stand_in_regime() -> RegimeModel:
    """A hand-set 4-state regime model over ``f_ret`` and ``f_vol``: the real ``hmm_model`` type,
    whose filtered context on a stand-in frame is valid (probabilities and entropy), without a fit."""
    means = np.array([[-1.0, 1.0], [-0.3, 0.3], [0.3, -0.3], [1.0, -1.0]])
    return RegimeModel(columns=TECH[:2], transmat=np.full((4, 4), 0.02) + 0.92 * np.eye(4), means=means,
                       covars=np.stack([np.eye(2)] * 4), mapping=(0, 1, 2, 3), fit_window={}, seeds=(0,),
                       best_seed=0)


def save_tiny_encoder(frame: pd.DataFrame, path: Path) -> Path:
    """An untrained 1-layer encoder over the frame's technical columns, saved as ``encoder.pth``."""
    from cryptorl_core.encoder.artifact import save_encoder
    from cryptorl_core.encoder.model import CryptoMAE

    torch.manual_seed(0)
    return save_encoder(path, CryptoMAE(len(TECH), TINY_ENCODER), TINY_ENCODER, list(TECH), "test")


def tiny_encoder_artifact(frame: pd.DataFrame, folder: Path) -> EncoderArtifact:
    """:func:`save_tiny_encoder` in ``folder``, as the ``mae_encoder`` asset hands it downstream."""
    path = save_tiny_encoder(frame, folder / ENCODER_FILENAME)
    return EncoderArtifact(path=str(path), config=TINY_ENCODER.as_dict(), feature_columns=list(TECH),
                           norm_fingerprint="test")


def policy_artifact(model_path: Path, algo: str = "tqc") -> PolicyArtifact:
    """A saved model as the ``tqc_policy`` asset hands it downstream (quick profile's agent config)."""
    return PolicyArtifact(path=str(Path(model_path).parent), model_path=str(model_path),
                          final_model_path=str(model_path), config_path="", algo=algo,
                          config=AgentConfig.quick().as_dict(), metrics={}, d_model=D_MODEL, tokens=TOKENS)


def train_tiny_tqc(frame: pd.DataFrame, market, path: Path, seed: int, steps: int = 96,
                   embedding: bool = True) -> Path:
    """A TQC on the agent's extractor, trained for a few steps and saved (no market inside)."""
    from sb3_contrib import TQC

    from cryptorl_core.agent.extractor import (
        FoundationFeatureExtractor,
        attach_market,
        extractor_kwargs,
    )
    from cryptorl_core.env import BatchCryptoEnv

    env = BatchCryptoEnv.from_segment_frame(frame, "train", EnvConfig(n_envs=4, episode_length=48), seed=seed)
    model = TQC(
        "MultiInputPolicy", env, learning_starts=48, batch_size=32, use_sde=True, seed=seed, device="cpu",
        policy_kwargs={
            "features_extractor_class": FoundationFeatureExtractor,
            "features_extractor_kwargs": extractor_kwargs(D_MODEL, TOKENS, 16, 8, 0.05, embedding=embedding),
            "net_arch": [16, 16], "n_quantiles": 5,
        },
    )
    attach_market(model, market)
    model.learn(steps)
    model.save(path)
    return path


def alternating(obs) -> np.ndarray:
    """Long on even rows, flat on odd rows: a trade every bar."""
    return np.array([[1.0 - float(obs["market"][0, 0]) % 2]], dtype=np.float32)


def upstream_stand_ins(frame: pd.DataFrame, regime: RegimeModel, encoder: EncoderArtifact,
                       policy: PolicyArtifact | None = None) -> list:
    """``features``, ``hmm_model``, ``mae_encoder`` (and ``tqc_policy`` when ``policy`` is given)
    with the real keys, partitions and output types, returning the fixed values given."""

    @dg.asset(name="features", partitions_def=segment_partitions, io_manager_key="frame_io_manager")
    def features_stand_in() -> pd.DataFrame:
        return frame

    @dg.asset(name="hmm_model", partitions_def=segment_partitions)
    def hmm_stand_in() -> RegimeModel:
        return regime

    @dg.asset(name="mae_encoder", partitions_def=segment_partitions)
    def encoder_stand_in() -> EncoderArtifact:
        return encoder

    assets = [features_stand_in, hmm_stand_in, encoder_stand_in]
    if policy is not None:

        @dg.asset(name="tqc_policy", partitions_def=segment_partitions)
        def policy_stand_in() -> PolicyArtifact:
            return policy

        assets.append(policy_stand_in)
    return assets
