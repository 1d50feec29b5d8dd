"""Tags that route runs: training assets carry the GPU tag, the launcher reads it."""

#: Step/run tag that marks work for the CUDA environment.
DEVICE_TAG = "cryptorl/device"
GPU_TAG_VALUE = "cuda"
GPU_TAGS = {DEVICE_TAG: GPU_TAG_VALUE}

#: Environment variable through which the launcher tells assets which torch device to use.
DEVICE_ENV_VAR = "CRYPTORL_DEVICE"

#: Run tag the launcher writes with its decision (cuda / cpu-fallback / cpu).
LAUNCH_DECISION_TAG = "cryptorl/launch"
