"""Decide which device a run needs: the run's tags first, then the GPU op tags of its plan.

Runs from an asset backfill carry only the backfill's tags, so the run tags alone cannot tell
a training run from an evaluation run; the step tags in the execution plan snapshot can.
"""

from __future__ import annotations

from dagster import DagsterInstance, DagsterRun

from cryptorl_dagster.tags import DEVICE_TAG, GPU_TAG_VALUE

#: Device values written to the ``cryptorl/device`` run tag.
CUDA = GPU_TAG_VALUE
CPU = "cpu"

#: Values of the ``cryptorl/launch`` decision tag.
DECISION_CUDA = "cuda"
DECISION_CPU = "cpu"
DECISION_CPU_FALLBACK = "cpu-fallback"
DECISION_FAILED = "failed-no-cuda"


def plan_has_gpu_step(instance: DagsterInstance, run: DagsterRun) -> bool:
    """Whether any step this run will execute carries the GPU op tag.

    :param instance: the instance holding the run's execution plan snapshot.
    :param run: the run to inspect.
    :return: True if a step to execute is tagged ``cryptorl/device: cuda``.
    """
    if not run.execution_plan_snapshot_id:
        return False
    snapshot = instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
    # An empty step_keys_to_execute means "all steps" in old snapshots.
    to_execute = set(snapshot.step_keys_to_execute or [step.key for step in snapshot.steps])
    return any(
        (step.tags or {}).get(DEVICE_TAG) == GPU_TAG_VALUE
        for step in snapshot.steps
        if step.key in to_execute
    )


def requested_device(instance: DagsterInstance, run: DagsterRun) -> str:
    """The device a run asks for: ``cuda`` or ``cpu``.

    An explicit ``cryptorl/device`` run tag wins (so a user can force a run onto the CPU);
    otherwise the run is GPU work if any step to execute carries the GPU op tag.

    :param instance: the instance holding the run.
    :param run: the run to classify.
    :return: :data:`CUDA` or :data:`CPU`.
    """
    tag = run.tags.get(DEVICE_TAG)
    if tag is not None:
        return CUDA if tag == GPU_TAG_VALUE else CPU
    return CUDA if plan_has_gpu_step(instance, run) else CPU
