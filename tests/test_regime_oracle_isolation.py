"""The ``regime_oracle`` is an upper bound shown in reports, never an input.

The synthetic market's ``true_regime`` column must not reach any feature, the HMM, the agent's
market tensors or the environment's observation: each is built from a frame with the column
present, permuted and removed, and must come out identical. A positive control shows the oracle
itself does read the column.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from cryptorl_core.backtest.baselines import segment_baseline_positions
from cryptorl_core.env import BatchCryptoEnv, EnvConfig
from cryptorl_core.features.config import FeatureConfig
from cryptorl_core.features.pipeline import build_segment_frame
from cryptorl_core.regime import HMMConfig, fit_regime_model, parameter_difference
from cryptorl_core.schema import TRUE_REGIME_COL, feature_columns
from cryptorl_core.segments import Segment

#: Library packages on the agent's side of the pipeline: none of them may name the true regime.
AGENT_SIDE_PACKAGES = ("agent", "env", "encoder", "features")
CORE = Path(__file__).resolve().parents[1] / "cryptorl_core"


def _variants(raw: pd.DataFrame) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(0)
    permuted = raw.copy()
    permuted[TRUE_REGIME_COL] = rng.permutation(raw[TRUE_REGIME_COL].to_numpy())
    return {"present": raw, "permuted": permuted, "removed": raw.drop(columns=[TRUE_REGIME_COL])}


@pytest.fixture(scope="module")
def frames(raw_slice: pd.DataFrame, latest_segment: Segment) -> dict[str, pd.DataFrame]:
    """Segment frames built from the raw market with ``true_regime`` present, permuted, removed."""
    assert TRUE_REGIME_COL in raw_slice.columns
    return {name: build_segment_frame(raw, latest_segment, FeatureConfig())[0]
            for name, raw in _variants(raw_slice).items()}


def _without_truth(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=[TRUE_REGIME_COL], errors="ignore")


def test_features_do_not_see_the_true_regime(frames: dict[str, pd.DataFrame]) -> None:
    base = frames["present"]
    assert TRUE_REGIME_COL in base.columns and TRUE_REGIME_COL not in feature_columns(base)
    assert not any("regime" in c for c in feature_columns(base))
    for name, frame in frames.items():
        assert feature_columns(frame) == feature_columns(base), name
        pd.testing.assert_frame_equal(_without_truth(frame), _without_truth(base), check_exact=True, obj=name)
    # The permuted column really differs (the comparison above is not vacuous).
    assert (frames["permuted"][TRUE_REGIME_COL] != base[TRUE_REGIME_COL]).any()


def test_hmm_fit_and_context_do_not_see_the_true_regime(frames: dict[str, pd.DataFrame]) -> None:
    models = {name: fit_regime_model(frame, HMMConfig.quick()) for name, frame in frames.items()}
    base = models["present"]
    assert TRUE_REGIME_COL not in base.columns
    context = base.context(frames["present"])
    for name, model in models.items():
        assert parameter_difference(model, base) == 0.0, name
        pd.testing.assert_frame_equal(model.context(frames[name]), context, check_exact=True, obj=name)
        # The fitted model's context does not change when the column changes under it.
        pd.testing.assert_frame_equal(base.context(frames[name]), context, check_exact=True, obj=name)


def test_market_tensors_do_not_see_the_true_regime(frames: dict[str, pd.DataFrame]) -> None:
    from cryptorl_core.agent.market_tensors import MarketTensors
    from cryptorl_core.encoder.artifact import LoadedEncoder
    from cryptorl_core.encoder.config import MAEConfig
    from cryptorl_core.encoder.model import CryptoMAE

    base = frames["present"]
    model = fit_regime_model(base, HMMConfig.quick())
    torch.manual_seed(0)
    cfg = MAEConfig(d_model=8, n_heads=2, n_layers=1, dim_feedforward=16, decoder_hidden=8, dropout=0.0)
    encoder = LoadedEncoder.in_memory(CryptoMAE(len(feature_columns(base)), cfg), feature_columns(base))
    tensors = {name: MarketTensors.build(frame, model.context(frame), encoder, mode="live", device="cpu")
               for name, frame in frames.items()}
    ref = tensors["present"]
    assert ref.features.shape == (len(base), len(feature_columns(base)))
    for name, t in tensors.items():
        assert torch.equal(t.features, ref.features), name
        assert torch.equal(t.context, ref.context), name


def test_env_observation_has_no_true_regime(frames: dict[str, pd.DataFrame]) -> None:
    env = BatchCryptoEnv.from_segment_frame(frames["present"], "train", EnvConfig(n_envs=2, episode_length=8), seed=0)
    assert set(env.observation_space.spaces) == {"market", "position", "w_cost"}
    obs = env.reset()
    assert set(obs) == {"market", "position", "w_cost"}
    # Same observations and rewards whatever the column holds.
    steps = {}
    for name, frame in frames.items():
        e = BatchCryptoEnv.from_segment_frame(frame, "train", EnvConfig(n_envs=2, episode_length=8), seed=0)
        o = e.reset()
        o2, r, _, _ = e.step(np.full((2, 1), 0.5, dtype=np.float32))
        steps[name] = (o["market"], o2["market"], r)
    for name, (a, b, r) in steps.items():
        np.testing.assert_array_equal(a, steps["present"][0], err_msg=name)
        np.testing.assert_array_equal(b, steps["present"][1], err_msg=name)
        np.testing.assert_array_equal(r, steps["present"][2], err_msg=name)


def test_agent_side_code_never_names_the_true_regime() -> None:
    """Only the data layer, the schema, the regime-recovery report and the report's baselines
    read the column; the feature pipeline only carries it along as a reserved column."""
    offenders = []
    for package in AGENT_SIDE_PACKAGES:
        for path in (CORE / package).rglob("*.py"):
            text = path.read_text()
            if package == "features" and path.name == "pipeline.py":
                continue  # copies the reserved column through (checked above: never a feature)
            if "TRUE_REGIME_COL" in text or "true_regime" in text:
                offenders.append(str(path.relative_to(CORE)))
    assert offenders == []


def test_the_oracle_itself_reads_the_true_regime(frames: dict[str, pd.DataFrame]) -> None:
    """Positive control: the oracle line follows the column, and disappears without it."""
    present = segment_baseline_positions(frames["present"])
    permuted = segment_baseline_positions(frames["permuted"])
    assert "regime_oracle" not in segment_baseline_positions(frames["removed"])
    assert (present["regime_oracle"] != permuted["regime_oracle"]).any()
    for name in ("buy_and_hold", "sma_crossover", "momentum", "vol_target"):
        np.testing.assert_array_equal(present[name], permuted[name], err_msg=name)
