"""``ConfigBase``: one implementation of profiles, copies, (de)serialisation and fingerprints for
every configuration dataclass."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from cryptorl_core.agent.config import AgentConfig
from cryptorl_core.backtest.config import BacktestConfig
from cryptorl_core.config_base import PROFILE_NAMES, ConfigBase, same_as
from cryptorl_core.encoder.config import MAEConfig
from cryptorl_core.env.config import EnvConfig
from cryptorl_core.policy_stats import CollapseRule
from cryptorl_core.profiles import PipelineConfig
from cryptorl_core.regime.config import HMMConfig

#: Fingerprints of the profiles: the encoder's from before the shared base class (its checkpoints
#: still resume); the agent's since the profiles' sizing and hold cost changed after backfill 14
#: (every field is in the fingerprint, so a stored run from before it starts afresh rather than
#: resume).
PINNED = {"agent_quick": "79a99db9d4ac6c5c", "agent_full": "a63ffca0937a0858", "mae_full": "9032264de52b0df6"}


def _json(payload: dict) -> dict:
    return json.loads(json.dumps(payload))


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_pipeline_round_trips_through_json_with_nested_configs_and_tuples(name: str) -> None:
    pipeline = PipelineConfig.profile(name)
    back = PipelineConfig.from_dict(_json(pipeline.as_dict()))
    assert back == pipeline and back.fingerprint() == pipeline.fingerprint()
    assert isinstance(back.agent.env, EnvConfig) and isinstance(back.agent.collapse, CollapseRule)
    assert isinstance(back.agent.net_arch, tuple) and isinstance(back.backtest.regime_rule_weights, tuple)
    assert isinstance(back.features.ffd_d_grid, tuple) and isinstance(back.hmm.extra_columns, tuple)


def test_as_dict_is_json_ready_and_from_dict_ignores_unknown_keys() -> None:
    config = AgentConfig.quick().replace(collapse=CollapseRule.off())
    d = config.as_dict()
    assert d["net_arch"] == [64, 64] and d["env"]["n_envs"] == 16 and d["collapse"] == CollapseRule.off().as_dict()
    assert json.loads(json.dumps(d)) == d
    assert AgentConfig.from_dict({**d, "from_a_newer_version": 1}) == config
    assert HMMConfig.from_dict({"n_restarts": 3}) == HMMConfig(n_restarts=3)  # missing keys default


def test_fingerprints_keep_their_values() -> None:
    assert AgentConfig.quick().fingerprint() == PINNED["agent_quick"]
    assert AgentConfig.full().fingerprint() == PINNED["agent_full"]
    assert MAEConfig.full().fingerprint() == PINNED["mae_full"]
    assert MAEConfig.quick().fingerprint() != MAEConfig.quick().replace(lr=1e-4).fingerprint()


def test_profile_dispatch_defaults_and_unknown_names() -> None:
    assert BacktestConfig.profile("seed001") == BacktestConfig.full() != BacktestConfig.quick()
    assert MAEConfig.profile("simple") == MAEConfig.full()
    assert HMMConfig.profile("quick") == HMMConfig()
    with pytest.raises(ValueError, match="unknown AgentConfig profile 'fast'"):
        AgentConfig.profile("fast")
    with pytest.raises(ValueError, match="EnvConfig profile 'seed000'"):  # the env declares quick and full
        EnvConfig.profile("seed000")
    assert EnvConfig.quick().with_overrides(n_envs=3) == EnvConfig.quick().replace(n_envs=3)
    with pytest.raises(ValueError, match="n_envs"):
        EnvConfig.quick().replace(n_envs=0)  # copies are validated again


def test_a_class_declares_only_known_profiles() -> None:
    with pytest.raises(TypeError, match="turbo"):
        @dataclass(frozen=True)
        class Bad(ConfigBase):
            PROFILES = ("quick", "turbo")

    @dataclass(frozen=True)
    class Small(ConfigBase):
        PROFILES = ("quick", "full")
        widths: tuple[int, ...] = (1, 2)
        rule: CollapseRule = field(default_factory=CollapseRule)

        @classmethod
        def full(cls) -> Small:
            return cls(widths=(8, 8))

        quick = same_as("full")

    assert Small.profile("quick") == Small.full() == Small.from_dict(_json(Small.full().as_dict()))
