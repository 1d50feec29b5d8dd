"""Per-segment regime HMM: train-only fit, stable state labels, causal (filtered) context."""

from cryptorl_core.regime.config import N_STATES, HMMConfig
from cryptorl_core.regime.filtering import (
    forward_filter,
    normalised_entropy,
    stationary_distribution,
)
from cryptorl_core.regime.model import (
    RegimeFitError,
    RegimeFitWarning,
    RegimeModel,
    fit_regime_model,
    fit_window_inside,
    parameter_difference,
)
from cryptorl_core.regime.recovery import regime_recovery

__all__ = [
    "N_STATES",
    "HMMConfig",
    "RegimeFitError",
    "RegimeFitWarning",
    "RegimeModel",
    "fit_regime_model",
    "fit_window_inside",
    "forward_filter",
    "normalised_entropy",
    "parameter_difference",
    "regime_recovery",
    "stationary_distribution",
]
