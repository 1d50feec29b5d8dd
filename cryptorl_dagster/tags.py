"""Tags that route runs: training assets carry the GPU tag, the launcher reads it."""

from cryptorl_core.settings import DEVICE_ENV

#: Step/run tag that marks work for the CUDA environment.
DEVICE_TAG = "cryptorl/device"
GPU_TAG_VALUE = "cuda"
GPU_TAGS = {DEVICE_TAG: GPU_TAG_VALUE}

#: Environment variable through which the launcher tells assets which torch device to use.
DEVICE_ENV_VAR = DEVICE_ENV

#: Run tag the launcher writes with its decision (cuda / cpu-fallback / cpu).
LAUNCH_DECISION_TAG = "cryptorl/launch"
