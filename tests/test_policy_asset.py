"""The ``tqc_policy`` asset: materializes after the real upstream assets of the latest segment
(tiny configs: a tiny agent network through ``TinyNetworkProfile``), publishes the policy files
and reports the training in its metadata; a second materialization after a cancelled run resumes
from the checkpoint."""

from __future__ import annotations

import json

import dagster as dg
import numpy as np
import pytest
import torch
from helpers.agent import TINY_MAE as TINY_ENCODER
from helpers.agent import SendSignal, TinyNetworkProfile, tiny_encoder, tiny_network

from cryptorl_core.agent import AgentConfig, MarketTensors, PolicyArtifact, TrainingInterrupted
from cryptorl_core.agent import train as agent_train
from cryptorl_core.device import cpu_threads
from cryptorl_core.encoder import ENCODER_FILENAME, EncoderArtifact, save_encoder
from cryptorl_core.regime import HMMConfig, fit_regime_model
from cryptorl_dagster.assets.encoder import mae_encoder
from cryptorl_dagster.assets.features import features
from cryptorl_dagster.assets.market import raw_market_data
from cryptorl_dagster.assets.policy import PolicyRunConfig, agent_config_for, tqc_policy
from cryptorl_dagster.assets.regime import hmm_model
from cryptorl_dagster.resources import ArtifactStore, ProfileResource
from cryptorl_dagster.tags import GPU_TAGS

#: Tiny encoder training (see test_encoder_asset), through ``mae_encoder``'s run config.
TINY_MAE_RUN = {"epochs": 1, "max_train_windows": 128, "max_eval_windows": 64}
TINY_RUN = {"total_timesteps": 320, "n_envs": 4, "eval_freq": 160, "checkpoint_freq": 160}
ASSETS = [raw_market_data, features, hmm_model, mae_encoder, tqc_policy]


@pytest.fixture(autouse=True)
def tiny_upstream(monkeypatch: pytest.MonkeyPatch):
    """CPU, one torch thread."""
    monkeypatch.setenv("CRYPTORL_DEVICE", "cpu")
    with cpu_threads(1):
        yield


def _run_config(**extra) -> dict:
    return {"ops": {"mae_encoder": {"config": TINY_MAE_RUN}, "tqc_policy": {"config": {**TINY_RUN, **extra}}}}


def test_asset_is_partitioned_gpu_tagged_and_reads_its_upstreams() -> None:
    spec = tqc_policy.specs_by_key[dg.AssetKey("tqc_policy")]
    assert spec.group_name == "agent" and tqc_policy.partitions_def is not None
    assert GPU_TAGS.items() <= tqc_policy.op.tags.items()
    assert {dg.AssetKey(k) for k in ("features", "hmm_model", "mae_encoder")} <= set(tqc_policy.keys_by_input_name.values())


def test_profile_config_and_overrides() -> None:
    quick = ProfileResource(name="quick")
    base = AgentConfig.quick()
    assert agent_config_for(quick) == base
    assert agent_config_for(quick, PolicyRunConfig()) == base  # nothing set: the profile's values
    assert agent_config_for(ProfileResource(name="full")).features_dim == 512
    run = PolicyRunConfig(total_timesteps=320, n_envs=4, eval_freq=160, checkpoint_freq=160, algo="sac",
                          seed=7, n_seeds=3, seed_workers=3, prefer_live_on_eval=True, embedding=True,
                          counterfactual_fraction=0.25)
    expected = base.replace(total_timesteps=320, n_envs=4, eval_freq=160, checkpoint_freq=160, algo="sac",
                            seed=7, n_seeds=3, seed_workers=3, prefer_live_on_eval=True, embedding=True,
                            counterfactual_fraction=0.25,
                            env=base.env.with_overrides(n_envs=4))
    assert expected != base and agent_config_for(quick, run) == expected
    assert expected.env_config.n_envs == 4 and expected.learning_rate == base.learning_rate
    tiny = agent_config_for(TinyNetworkProfile(name="quick"), PolicyRunConfig())
    assert tiny == tiny_network(base)  # the test-only profile resource shrinks the network
    assert (tiny.tokens, tiny.features_dim, tiny.net_arch, tiny.batch_size) == (1, 16, (16, 16), 32)
    assert not tiny.fail_on_collapse and tiny.total_timesteps == base.total_timesteps


def test_asset_hands_the_overridden_config_and_its_inputs_to_the_trainer(segment_frame, latest_key, tmp_path,
                                                                         monkeypatch) -> None:
    """The typed upstream values (a ``RegimeModel``, an ``EncoderArtifact``) become the market
    tensors, and the run config's overrides reach the trainer (stopped before any training)."""
    regime = fit_regime_model(segment_frame, HMMConfig.quick())
    encoder = tiny_encoder(segment_frame)
    path = save_encoder(tmp_path / ENCODER_FILENAME, encoder.model, TINY_ENCODER, encoder.feature_columns, "test")
    artifact = EncoderArtifact(path=str(path), config=TINY_ENCODER.as_dict(), feature_columns=encoder.feature_columns,
                               norm_fingerprint="test")
    profile = TinyNetworkProfile(name="quick")
    run = PolicyRunConfig(total_timesteps=320, n_envs=4, algo="sac")

    class Stop(Exception):
        pass

    received = {}

    def capture(features, market, agent, **kwargs):
        received.update(market=market, agent=agent)
        raise Stop

    monkeypatch.setattr("cryptorl_dagster.assets.policy.train_policy", capture)
    with dg.build_asset_context(partition_key=latest_key) as context, pytest.raises(Stop):
        tqc_policy(context, config=run, features=segment_frame, hmm_model=regime, mae_encoder=artifact,
                   artifacts=ArtifactStore(base_dir=str(tmp_path / "artifacts")), profile=profile)
    assert received["agent"] == agent_config_for(profile, run)
    market = received["market"]
    assert isinstance(market, MarketTensors) and market.mode == "cache" and market.tokens == 1
    assert market.d_model == TINY_ENCODER.d_model and market.n_rows == len(segment_frame)
    np.testing.assert_allclose(market.context.numpy(), regime.context(segment_frame).to_numpy(), rtol=1e-6)
    assert not (tmp_path / "artifacts" / "tqc_policy" / latest_key).exists()  # nothing published


def test_tqc_policy_materializes_and_resumes(dagster_resources, latest_key, tmp_path, monkeypatch) -> None:
    instance = dg.DagsterInstance.ephemeral()
    resources = {**dagster_resources, "profile": TinyNetworkProfile(name="quick")}
    # First attempt is cancelled: SIGTERM mid-training (what Dagster's run cancel sends). The
    # trainer checkpoints and raises; nothing is published.
    real_train = agent_train.train_policy

    def cancelled(*args, **kwargs):
        return real_train(*args, extra_callbacks=[SendSignal(100)], **kwargs)

    monkeypatch.setattr("cryptorl_dagster.assets.policy.train_policy", cancelled)
    failed = dg.materialize(ASSETS, partition_key=latest_key, resources=resources, instance=instance,
                            run_config=_run_config(), raise_on_error=False)
    assert not failed.success
    errors = [ev.event_specific_data.error.to_string() for ev in failed.get_step_failure_events()]
    assert any(TrainingInterrupted.__name__ in e and "SIGTERM" in e for e in errors)
    published = tmp_path / "artifacts" / "tqc_policy" / latest_key
    assert not published.exists()
    monkeypatch.setattr("cryptorl_dagster.assets.policy.train_policy", real_train)

    # The re-run trains two seeds at once in worker processes: seed 0 resumes its checkpoint.
    result = dg.materialize(ASSETS, partition_key=latest_key, resources=resources, instance=instance,
                            run_config=_run_config(n_seeds=2, seed_workers=2))
    assert result.success
    artifact = result.output_for_node("tqc_policy")
    assert isinstance(artifact, PolicyArtifact) and artifact.algo == "tqc"
    assert {p.name for p in published.iterdir()} >= {"tqc.zip", "final_model.zip", "config.json",
                                                      "history.json", "training_curves.png"}
    saved = json.loads((published / "config.json").read_text())
    assert saved["config"]["total_timesteps"] == 320 and saved["metrics"]["num_timesteps"] == 320
    meta = result.asset_materializations_for_node("tqc_policy")[0].metadata
    assert meta["device"].value == "cpu" and meta["num_timesteps"].value == 320
    resumed = {r["seed"]: r["resumed_from_step"] for r in saved["metrics"]["seed_runs"]}
    assert 100 <= resumed[0] < 320 and resumed[1] == 0  # seed 0 continued from the SIGTERM checkpoint
    assert meta["resumed_from_step"].value == resumed[meta["seed"].value]
    assert meta["selection"].value.startswith("each seed's last model when it is live, else its checkpoint by this "
                                              "rule: checkpoints live on the eval window first")  # the quick profile's rule
    assert "(the end of Discipline)" in meta["selection"].value
    assert meta["training_curves"].value.startswith("![training curves](data:image/png;base64,")
    assert "kept_checkpoint" in meta and "stopped_early" in meta and "evaluations" in meta
    # Lineage beyond the config: what the kept seed was trained with (in its worker process).
    assert meta["training_environment"].value == saved["environment"]
    assert saved["environment"]["torch"] == torch.__version__ and saved["environment"]["cpu"]

    # The published policy loads against the segment's tensors (what backtest_report does).
    frame = result.output_for_node("features")
    encoder = result.output_for_node("mae_encoder").load("cpu")
    market = MarketTensors.build(frame, result.output_for_node("hmm_model").context(frame), encoder,
                                 tokens=artifact.tokens, device="cpu")
    assert artifact.load(market, device="cpu", final=True).num_timesteps == 320
    best = artifact.load(market, device="cpu")
    assert 0 < best.num_timesteps <= 320
