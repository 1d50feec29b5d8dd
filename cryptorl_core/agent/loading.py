"""Load a saved policy, ready for ``predict``: the one :func:`load_policy` of the project.

The market tensors a :class:`~cryptorl_core.agent.extractor.FoundationFeatureExtractor` reads
are never saved with the model: give them ready (``market``), or give the raw inputs
(``frame``, ``hmm_context``, ``encoder``) and they are built for the segment. The algorithm is
read from the zip (:func:`~cryptorl_core.agent.algorithms.algorithm_of`) unless named.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import torch
from stable_baselines3.common.base_class import BaseAlgorithm

from cryptorl_core.agent.algorithms import ALGORITHMS, algorithm_of
from cryptorl_core.agent.extractor import attach_market, foundation_extractors
from cryptorl_core.agent.market_tensors import MarketTensors
from cryptorl_core.device import resolve_device
from cryptorl_core.encoder.artifact import LoadedEncoder, load_encoder

#: Published model names of a policy folder, in the order :func:`model_file` looks for them.
MODEL_NAMES = ("tqc.zip", "sac.zip", "ppo.zip", "dqn.zip", "a2c.zip")


def model_file(path: str | os.PathLike) -> Path:
    """A model zip, or the first ``<algo>.zip`` (:data:`MODEL_NAMES`) in a published folder."""
    p = Path(path)
    if not p.is_dir():
        return p
    for name in MODEL_NAMES:
        if (p / name).is_file():
            return p / name
    raise FileNotFoundError(f"{p}: none of {', '.join(MODEL_NAMES)} in this folder")


def load_policy(
    path: str | os.PathLike,
    market: MarketTensors | None = None,
    *,
    frame: pd.DataFrame | None = None,
    hmm_context: pd.DataFrame | None = None,
    encoder: LoadedEncoder | str | os.PathLike | None = None,
    algo: str | None = None,
    device: torch.device | str = "cpu",
) -> BaseAlgorithm:
    """Load a saved SB3 model and, if it uses the agent's extractor, attach the segment's tensors.

    :param path: the model's ``.zip``, or the policy stage's published folder.
    :param market: the segment's ready market tensors (attached as they are); else built from
        ``frame``, ``hmm_context`` and ``encoder`` when the policy uses the agent's extractor.
    :param frame: the segment frame (needed to build the market tensors).
    :param hmm_context: HMM context of every frame row (``RegimeModel.context(frame)``).
    :param encoder: the encoder (``EncoderArtifact.load``), or the path of its ``encoder.pth``
        (read with :func:`~cryptorl_core.encoder.artifact.load_encoder`).
    :param algo: algorithm name (:data:`~cryptorl_core.agent.algorithms.ALGORITHMS`); None reads
        it from the zip.
    :param device: torch device.
    :return: the model, ready for ``predict``.
    :raises ExtractorDimensionError: the tensors do not fit the saved policy.
    """
    if market is not None and frame is not None:
        raise ValueError("give either the market tensors or the frame to build them from, not both")
    dev = resolve_device(device)
    path = model_file(path)
    algo_cls = algorithm_of(path) if algo is None else ALGORITHMS[algo]
    model = algo_cls.load(str(path), device=dev)
    if market is not None:
        attach_market(model, market)
    elif foundation_extractors(model):
        if frame is None or hmm_context is None or encoder is None:
            raise ValueError(f"{path} uses the agent's feature extractor: give market, or frame, hmm_context and encoder")
        if not isinstance(encoder, LoadedEncoder):
            encoder = load_encoder(encoder, device=dev)
        tokens = foundation_extractors(model)[0].tokens
        attach_market(model, MarketTensors.build(frame, hmm_context, encoder, tokens=tokens, device=dev))
    return model
