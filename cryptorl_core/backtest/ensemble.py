"""A seed ensemble: the mean deterministic action of several trained policies.

Used to score saved checkpoints (``python -m cryptorl_core.experiment --rescore``), not by the
pipeline: on the eval windows it did no better than one seed (``docs/EXPERIMENTS.md``,
"Averaging the seeds' actions").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from cryptorl_core.backtest.runner import PredictsActions


class MeanActionPolicy:
    """The mean of several policies' actions, with the ``predict`` of a Stable-Baselines3 model.

    Raw actions are averaged before the env maps them to a position (gain, clip, sizing), so
    two seeds that disagree in sign cancel towards flat.

    :param policies: continuous-action policies of the same action space.
    """

    def __init__(self, policies: Sequence[PredictsActions]) -> None:
        if not policies:
            raise ValueError("a mean-action policy needs at least one policy")
        self.policies = list(policies)
        self.action_space = getattr(self.policies[0], "action_space", None)

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[np.ndarray, None]:
        """The mean of each policy's ``predict`` (same arguments as SB3's)."""
        actions = [np.asarray(p.predict(observation, deterministic=deterministic)[0]) for p in self.policies]
        return np.mean(actions, axis=0), None
