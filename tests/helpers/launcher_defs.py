"""Test-only code location for tests/test_launcher.py (and tests/test_deploy_config.py):
GPU-tagged and untagged assets.

The probe assets record the environment their run worker sees in materialization metadata, so
a test can prove from inside the run what the launcher gave it.
"""

import json
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from dagster import (
    AssetExecutionContext,
    Config,
    Definitions,
    MaterializeResult,
    MetadataValue,
    StaticPartitionsDefinition,
    asset,
    define_asset_job,
    in_process_executor,
)

from cryptorl_core.agent.resume import GracefulTermination
from cryptorl_dagster.tags import GPU_TAGS

#: Environment variables the probe assets report.
PROBED_VARS = ("CRYPTORL_DEVICE", "CUDA_VISIBLE_DEVICES", "CRYPTORL_TEST_CUDA_MARK")


def _seen_env() -> MaterializeResult:
    seen = {name: os.environ.get(name) for name in PROBED_VARS}
    seen["python"] = sys.executable
    return MaterializeResult(metadata={"env": MetadataValue.json(seen)})


@asset(op_tags=GPU_TAGS)
def gpu_probe() -> MaterializeResult:
    """GPU-tagged step: reports the environment it got."""
    return _seen_env()


@asset
def cpu_probe() -> MaterializeResult:
    """Untagged step: reports the environment it got."""
    return _seen_env()


class GateConfig(Config):
    """Where the test opens the gate, and how long to wait at most."""

    gate_file: str
    timeout_s: float = 60.0


def _wait_for_gate(config: GateConfig) -> None:
    deadline = time.monotonic() + config.timeout_s
    while not os.path.exists(config.gate_file) and time.monotonic() < deadline:
        time.sleep(0.2)


@asset(op_tags=GPU_TAGS)
def gated_gpu(config: GateConfig) -> None:
    """GPU-tagged step that stays in progress until the test opens the gate."""
    _wait_for_gate(config)


@asset
def gated_cpu(config: GateConfig) -> None:
    """Untagged step that stays in progress until the test opens the gate."""
    _wait_for_gate(config)


@asset(op_tags=GPU_TAGS, partitions_def=StaticPartitionsDefinition(["p1", "p2", "p3"]))
def gated_gpu_partitioned(config: GateConfig) -> None:
    """Partitioned GPU step for backfills (one run per partition, only backfill tags)."""
    _wait_for_gate(config)


class SlowConfig(Config):
    """Marker folder and the longest the asset may run."""

    marker_dir: str
    seconds: float = 60.0


class RecordingTermination(GracefulTermination):
    """The trainer's termination guard, also recording every signal it receives."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[int] = []

    def request(self, signum: int = signal.SIGTERM, frame: FrameType | None = None) -> None:
        self.seen.append(signum)
        super().request(signum, frame)


@asset(op_tags=GPU_TAGS)
def slow_training(context: AssetExecutionContext, config: SlowConfig) -> None:
    """Stands in for a training asset: under the trainer's own termination guard it polls the
    flag, and on a signal 'saves a checkpoint' (a marker naming the signals seen) and stops."""
    markers = Path(config.marker_dir)
    with RecordingTermination() as guard:
        (markers / "started").write_text(json.dumps({"pid": os.getpid()}))
        deadline = time.monotonic() + config.seconds
        while time.monotonic() < deadline and not guard.requested:
            time.sleep(0.1)
        if guard.requested:
            time.sleep(1.0)  # saving takes a moment: a second signal would arrive meanwhile
    if guard.requested:
        (markers / "checkpoint").write_text(json.dumps({"pid": os.getpid(), "signals": guard.seen}))
        raise RuntimeError(f"terminated by {signal.Signals(guard.signum).name} after saving a checkpoint")


defs = Definitions(
    assets=[gpu_probe, cpu_probe, gated_gpu, gated_cpu, gated_gpu_partitioned, slow_training],
    jobs=[
        # Job-level tags, as training jobs declare them.
        define_asset_job("gpu_job", [gpu_probe], tags=GPU_TAGS, executor_def=in_process_executor),
        # No run tags: like a backfill run, only the step's op tag says "GPU".
        define_asset_job("gpu_untagged_job", [gpu_probe], executor_def=in_process_executor),
        define_asset_job("cpu_job", [cpu_probe], executor_def=in_process_executor),
        define_asset_job("gated_gpu_job", [gated_gpu], executor_def=in_process_executor),
        define_asset_job("gated_cpu_job", [gated_cpu], executor_def=in_process_executor),
        # Default (multiprocess) executor: the step runs in a child of the run worker, as in
        # production, so the test covers the signal reaching a step subprocess.
        define_asset_job("slow_job", [slow_training]),
    ],
)
