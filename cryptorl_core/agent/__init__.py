"""The trading agent: a FiLM-conditioned TQC (SAC, PPO selectable) over the frozen encoder.

- :mod:`~cryptorl_core.agent.config`: :class:`AgentConfig` (``quick()`` / ``full()``);
- :mod:`~cryptorl_core.agent.market_tensors`: :class:`MarketTensors`, the device-resident
  embedding cache (or live encoder) and HMM context the extractor gathers from;
- :mod:`~cryptorl_core.agent.extractor`: :class:`FoundationFeatureExtractor`, :func:`attach_market`;
- :mod:`~cryptorl_core.agent.curriculum`: cost curriculum and w_cost curriculum;
- :mod:`~cryptorl_core.agent.evaluation`: rollouts, the collapse rule on eval, the segment evaluation
  callback with early stopping and the overfitting monitor;
- :mod:`~cryptorl_core.agent.callbacks`: entropy floor, metrics, resume checkpoints;
- :mod:`~cryptorl_core.agent.resume`: resume state and the save on SIGTERM or SIGINT;
- :mod:`~cryptorl_core.agent.algorithms`: :data:`ALGORITHMS` (name to SB3 class), :func:`algorithm_of`;
- :mod:`~cryptorl_core.agent.loading`: :func:`load_policy` (ready market tensors, or frame, HMM
  context and encoder to build them);
- :mod:`~cryptorl_core.agent.train`: :func:`segment_market` (the tensors a config trains on),
  :func:`train_policy`, :class:`PolicyArtifact`.
"""

from cryptorl_core.agent.algorithms import ALGORITHMS, algorithm_of
from cryptorl_core.agent.callbacks import (
    EntropyFloorCallback,
    MetricsCallback,
    ResumeCheckpointCallback,
)
from cryptorl_core.agent.config import ALGOS, AgentConfig
from cryptorl_core.agent.curriculum import (
    CurriculumCallback,
    WCostCurriculumCallback,
    curriculum_values,
    w_cost_distribution,
)
from cryptorl_core.agent.evaluation import (
    EarlyStoppingCallback,
    OverfitMonitorCallback,
    RolloutStats,
    SegmentEvalCallback,
    rollout_policy,
)
from cryptorl_core.agent.extractor import (
    ExtractorDimensionError,
    FoundationFeatureExtractor,
    MarketNotAttachedError,
    attach_market,
    foundation_extractors,
)
from cryptorl_core.agent.loading import load_policy, model_file
from cryptorl_core.agent.market_tensors import MarketTensors, hmm_context_array
from cryptorl_core.agent.resume import (
    GracefulTermination,
    TrainingInterrupted,
    latest_checkpoint,
    list_checkpoints,
    save_checkpoint,
)
from cryptorl_core.agent.train import (
    PolicyArtifact,
    PolicyCollapsedError,
    PolicyTrainResult,
    build_model,
    make_envs,
    policy_filename,
    segment_market,
    train_policy,
    training_env,
)

__all__ = [
    "ALGORITHMS", "ALGOS", "AgentConfig", "CurriculumCallback", "EarlyStoppingCallback",
    "EntropyFloorCallback", "ExtractorDimensionError", "FoundationFeatureExtractor",
    "GracefulTermination", "MarketNotAttachedError", "MarketTensors", "MetricsCallback",
    "OverfitMonitorCallback", "PolicyArtifact", "PolicyCollapsedError", "PolicyTrainResult",
    "ResumeCheckpointCallback", "RolloutStats", "SegmentEvalCallback", "TrainingInterrupted",
    "WCostCurriculumCallback", "algorithm_of", "attach_market", "build_model", "curriculum_values",
    "foundation_extractors", "hmm_context_array", "latest_checkpoint", "list_checkpoints",
    "load_policy", "make_envs", "model_file", "policy_filename", "rollout_policy", "save_checkpoint",
    "segment_market", "train_policy", "training_env", "w_cost_distribution",
]
