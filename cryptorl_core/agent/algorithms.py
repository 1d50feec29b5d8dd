"""The one table of the agent's Stable-Baselines3 algorithms, and which one saved a model zip.

- :data:`ALGORITHMS`: algorithm name (``AgentConfig.algo``) to its SB3 class;
- :data:`POLICY_MODULES`: module prefix of a saved ``policy_class`` to the algorithm name;
- :func:`algorithm_of`: the class that saved a zip, read from its ``data`` (no model is loaded).
"""

from __future__ import annotations

import json
import os
import zipfile

from sb3_contrib import TQC
from stable_baselines3 import A2C, DQN, PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm

#: Algorithm name to the SB3 class that builds and loads it.
ALGORITHMS: dict[str, type[BaseAlgorithm]] = {"tqc": TQC, "sac": SAC, "ppo": PPO, "dqn": DQN, "a2c": A2C}
#: SB3 policy module prefix to the algorithm name whose class loads it.
POLICY_MODULES: dict[str, str] = {
    "sb3_contrib.tqc": "tqc",
    "stable_baselines3.sac": "sac",
    "stable_baselines3.ppo": "ppo",
    "stable_baselines3.dqn": "dqn",
}
#: PPO and A2C both save SB3's shared actor-critic policy (this module); PPO's data carry its
#: clip range, A2C's do not.
ACTOR_CRITIC_MODULE = "stable_baselines3.common.policies"


def algorithm_of(path: str | os.PathLike) -> type[BaseAlgorithm]:
    """The SB3 algorithm class that saved ``path`` (from the zip's ``policy_class``).

    :param path: an SB3 ``.zip``.
    :return: ``TQC``, ``SAC``, ``PPO``, ``DQN`` or ``A2C``.
    """
    with zipfile.ZipFile(path) as z:
        data = json.loads(z.read("data"))
    module = data["policy_class"]["__module__"]
    if module == ACTOR_CRITIC_MODULE:
        return ALGORITHMS["ppo"] if "clip_range" in data else ALGORITHMS["a2c"]
    for prefix, name in POLICY_MODULES.items():
        if module.startswith(prefix):
            return ALGORITHMS[name]
    raise ValueError(f"{path}: unsupported policy class module {module!r} (known: {sorted(POLICY_MODULES)})")
