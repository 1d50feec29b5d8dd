"""A seed ensemble: the mean deterministic action of several trained policies.

Used to score saved checkpoints (``python -m cryptorl_core.experiment --rescore``), not by the
pipeline: on the eval windows it did no better than one seed (``docs/EXPERIMENTS.md``,
"Averaging the seeds' actions").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from cryptorl_core.backtest.runner import PredictsActions


class MeanActionPolicy:
    """The mean of several policies' actions, with the ``predict`` of a Stable-Baselines3 model.

    Raw actions are averaged before the env maps them to a position (gain, clip, sizing), so
    two seeds that disagree in sign cancel towards flat.

    :param policies: continuous-action policies of the same action space. A discrete policy
        (DQN's grid index) is refused: the mean of two indices is no action of either.
    """

    def __init__(self, policies: Sequence[PredictsActions]) -> None:
        if not policies:
            raise ValueError("a mean-action policy needs at least one policy")
        for index, policy in enumerate(policies):
            space = getattr(policy, "action_space", None)
            if space is not None and not isinstance(space, spaces.Box):
                raise ValueError(f"policy {index} has a {type(space).__name__} action space; "
                                 "only continuous (Box) actions can be averaged")
        self.policies = list(policies)
        self.action_space = getattr(self.policies[0], "action_space", None)

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[np.ndarray, None]:
        """The mean of each policy's ``predict`` (same arguments as SB3's)."""
        actions = [np.asarray(p.predict(observation, deterministic=deterministic)[0]) for p in self.policies]
        return np.mean(actions, axis=0), None
