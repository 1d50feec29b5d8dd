"""The trading agent: a FiLM-conditioned TQC (SAC, PPO selectable) over the frozen encoder.

- :mod:`~cryptorl_core.agent.config`: :class:`AgentConfig` (``quick()`` / ``full()``);
- :mod:`~cryptorl_core.agent.market_tensors`: :class:`MarketTensors`, the device-resident
  embedding cache (or live encoder) and HMM context the extractor gathers from;
- :mod:`~cryptorl_core.agent.extractor`: :class:`FoundationFeatureExtractor`, :func:`attach_market`;
- :mod:`~cryptorl_core.agent.callbacks`: curriculum, w_cost curriculum, entropy floor,
  evaluation, early stopping, overfitting monitor, metrics, checkpoints;
- :mod:`~cryptorl_core.agent.checkpointing`: resume state and the SIGTERM save;
- :mod:`~cryptorl_core.agent.train`: :func:`train_policy`, :class:`PolicyArtifact`, :func:`load_policy`.
"""

from cryptorl_core.agent.callbacks import (
    CheckpointCallback,
    CurriculumCallback,
    EarlyStoppingCallback,
    EntropyFloorCallback,
    EvalCallback,
    MetricsCallback,
    OverfitMonitorCallback,
    RolloutStats,
    WCostCurriculumCallback,
    curriculum_values,
    rollout_policy,
    w_cost_distribution,
)
from cryptorl_core.agent.checkpointing import (
    GracefulTermination,
    TrainingInterrupted,
    latest_checkpoint,
    list_checkpoints,
    save_checkpoint,
)
from cryptorl_core.agent.config import ALGOS, AgentConfig
from cryptorl_core.agent.extractor import (
    ExtractorDimensionError,
    FoundationFeatureExtractor,
    MarketNotAttachedError,
    attach_market,
    foundation_extractors,
)
from cryptorl_core.agent.market_tensors import MarketTensors, hmm_context_array
from cryptorl_core.agent.train import (
    ALGORITHMS,
    PolicyArtifact,
    PolicyCollapsedError,
    PolicyTrainResult,
    build_model,
    load_policy,
    make_envs,
    policy_filename,
    train_policy,
    training_env,
)

__all__ = [
    "ALGORITHMS", "ALGOS", "AgentConfig", "CheckpointCallback", "CurriculumCallback",
    "EarlyStoppingCallback", "EntropyFloorCallback", "EvalCallback", "ExtractorDimensionError",
    "FoundationFeatureExtractor", "GracefulTermination", "MarketNotAttachedError", "MarketTensors",
    "MetricsCallback", "OverfitMonitorCallback", "PolicyArtifact", "PolicyCollapsedError", "PolicyTrainResult", "RolloutStats",
    "TrainingInterrupted", "WCostCurriculumCallback", "attach_market", "build_model",
    "curriculum_values", "foundation_extractors", "hmm_context_array", "latest_checkpoint",
    "list_checkpoints", "load_policy", "make_envs", "policy_filename", "rollout_policy",
    "save_checkpoint", "train_policy", "training_env", "w_cost_distribution",
]
