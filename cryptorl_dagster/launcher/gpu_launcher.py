"""A run launcher that starts each run worker itself, in the CUDA environment for GPU work.

Dagster's ``DefaultRunLauncher`` asks the code server to spawn the worker, with the code
server's interpreter and environment. This launcher spawns ``python -m dagster api execute_run``
(the command dagster-docker and dagster-k8s build) with an interpreter and environment chosen
per run:

- GPU work (``cryptorl/device: cuda`` on the run, or on any step to execute): ``cuda_python``,
  ``CUDA_VISIBLE_DEVICES``, ``cuda_env`` and ``CRYPTORL_DEVICE=cuda``;
- anything else: the code location's interpreter, ``cpu_env`` and ``CRYPTORL_DEVICE=cpu``.

When the CUDA environment is missing, ``fallback: cpu`` runs the work on the CPU with a warning
and a ``cryptorl/launch: cpu-fallback`` tag; ``fallback: fail`` fails the run at once.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dagster import (
    DagsterEvent,
    DagsterEventType,
    DagsterRun,
    Field,
    IntSource,
    Map,
    Noneable,
    StringSource,
)
from typing_extensions import Self

from cryptorl_dagster.launcher._dagster_internal import (
    CheckRunHealthResult,
    ConfigurableClass,
    ConfigurableClassData,
    EngineEventData,
    ExecuteRunArgs,
    JobPythonOrigin,
    LaunchRunContext,
    RunLauncher,
    WorkerStatus,
    get_python_environment_entry_point,
)
from cryptorl_dagster.launcher.cuda_probe import PROBES, CudaProbe
from cryptorl_dagster.launcher.routing import (
    CPU,
    CUDA,
    DECISION_CPU,
    DECISION_CPU_FALLBACK,
    DECISION_CUDA,
    DECISION_FAILED,
    requested_device,
)
from cryptorl_dagster.launcher.worker import (
    WORKER_HOST_TAG,
    WORKER_PID_TAG,
    hostname,
    is_worker_alive,
    on_this_host,
    signal_worker,
    worker_pid,
)
from cryptorl_dagster.tags import DEVICE_ENV_VAR, DEVICE_TAG, LAUNCH_DECISION_TAG

FALLBACK_POLICIES = ("cpu", "fail")


@dataclass(frozen=True)
class LaunchPlan:
    """What the launcher decided for one run: interpreter, device and environment overrides."""

    python: str
    requested: str
    device: str
    decision: str
    env_overrides: Mapping[str, str] = field(default_factory=dict)
    reason: str = ""


class CryptoRLRunLauncher(RunLauncher, ConfigurableClass):
    """Launch each run worker as a local subprocess, in the CUDA environment for GPU work.

    :param cuda_python: interpreter of the CUDA environment; None means this process's own.
    :param cuda_visible_devices: ``CUDA_VISIBLE_DEVICES`` for GPU runs; None leaves it inherited.
    :param cuda_env: extra environment variables for GPU runs.
    :param cpu_env: extra environment variables for CPU runs (e.g. ``CUDA_VISIBLE_DEVICES: ""``).
    :param fallback: ``cpu`` (run GPU work on the CPU, with a warning) or ``fail``.
    :param cuda_probe: how to check the CUDA environment, see :class:`CudaProbe`.
    :param probe_timeout_seconds: time limit of one probe.
    :param probe_cache_seconds: how long a probe answer is reused.
    :param inst_data: set by Dagster when the launcher comes from ``dagster.yaml``.
    """

    def __init__(
        self,
        cuda_python: str | None = None,
        cuda_visible_devices: str | None = None,
        cuda_env: Mapping[str, str] | None = None,
        cpu_env: Mapping[str, str] | None = None,
        fallback: str = "cpu",
        cuda_probe: str = "nvidia-smi",
        probe_timeout_seconds: int = 20,
        probe_cache_seconds: int = 600,
        inst_data: ConfigurableClassData | None = None,
    ):
        if fallback not in FALLBACK_POLICIES:
            raise ValueError(f"fallback must be one of {FALLBACK_POLICIES}, got {fallback!r}")
        self._inst_data = inst_data
        self.cuda_python = cuda_python or sys.executable
        self.cuda_visible_devices = cuda_visible_devices
        self.cuda_env = dict(cuda_env or {})
        self.cpu_env = dict(cpu_env or {})
        self.fallback = fallback
        self.probe = CudaProbe(cuda_probe, probe_timeout_seconds, probe_cache_seconds)
        # Workers launched by this process, kept to reap them and read their exit codes.
        self._workers: dict[str, subprocess.Popen[bytes]] = {}
        self._workers_lock = threading.Lock()
        super().__init__()

    # -- ConfigurableClass -------------------------------------------------------------------

    @property
    def inst_data(self) -> ConfigurableClassData | None:
        return self._inst_data

    @classmethod
    def config_type(cls) -> dict[str, Field]:
        return {
            "cuda_python": Field(
                Noneable(StringSource),
                is_required=False,
                description="Interpreter of the CUDA environment (default: the launching one).",
            ),
            "cuda_visible_devices": Field(
                Noneable(StringSource),
                is_required=False,
                description="CUDA_VISIBLE_DEVICES for GPU runs (default: inherited).",
            ),
            "cuda_env": Field(
                Map(str, StringSource), is_required=False, description="Extra env for GPU runs."
            ),
            "cpu_env": Field(
                Map(str, StringSource), is_required=False, description="Extra env for CPU runs."
            ),
            "fallback": Field(
                StringSource,
                default_value="cpu",
                description="When CUDA is absent: 'cpu' (run on CPU, warn) or 'fail'.",
            ),
            "cuda_probe": Field(
                StringSource,
                default_value="nvidia-smi",
                description=f"CUDA check, one of {', '.join(PROBES)}.",
            ),
            "probe_timeout_seconds": Field(IntSource, default_value=20),
            "probe_cache_seconds": Field(IntSource, default_value=600),
        }

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]
    ) -> Self:
        return cls(inst_data=inst_data, **config_value)

    # -- decisions ---------------------------------------------------------------------------

    def plan_launch(self, run: DagsterRun) -> LaunchPlan:
        """Choose interpreter, device and environment for ``run`` (no side effects but the probe).

        :param run: the run about to be launched.
        :return: the launch plan; ``decision`` is ``cuda``, ``cpu`` or ``cpu-fallback``.
        """
        requested = requested_device(self._instance, run)
        if requested == CPU:
            return self._cpu_plan(run, requested, DECISION_CPU, "run needs no GPU (tag or steps)")
        available, reason = self.probe.check(self.cuda_python)
        if not available:
            return self._cpu_plan(run, requested, DECISION_CPU_FALLBACK, reason)
        overrides = {**self.cuda_env, DEVICE_ENV_VAR: CUDA}
        if self.cuda_visible_devices is not None:
            overrides["CUDA_VISIBLE_DEVICES"] = self.cuda_visible_devices
        return LaunchPlan(self.cuda_python, requested, CUDA, DECISION_CUDA, overrides, reason)

    def _cpu_plan(self, run: DagsterRun, requested: str, decision: str, reason: str) -> LaunchPlan:
        overrides = {**self.cpu_env, DEVICE_ENV_VAR: CPU}
        return LaunchPlan(_origin_python(run), requested, CPU, decision, overrides, reason)

    # -- RunLauncher -------------------------------------------------------------------------

    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        self._reap_finished()
        plan = self.plan_launch(run)
        if plan.decision == DECISION_CPU_FALLBACK and self.fallback == "fail":
            self._fail_run(run, plan)
            return
        # Tag before spawning, so the UI shows the decision even if the worker dies at once.
        # cryptorl/device keeps the *requested* device: it is the run-queue key.
        self._instance.add_run_tags(
            run.run_id,
            {
                DEVICE_TAG: run.tags.get(DEVICE_TAG, plan.requested),
                LAUNCH_DECISION_TAG: plan.decision,
            },
        )
        proc = self._spawn_worker(run, plan)
        self._instance.add_run_tags(
            run.run_id, {WORKER_PID_TAG: str(proc.pid), WORKER_HOST_TAG: hostname()}
        )
        self._report_decision(run, plan, proc.pid)

    def _spawn_worker(self, run: DagsterRun, plan: LaunchPlan) -> subprocess.Popen[bytes]:
        """Start ``python -m dagster api execute_run`` for ``run`` in its own session."""
        args = ExecuteRunArgs(
            job_origin=_with_python(_job_origin(run), plan.python),
            run_id=run.run_id,
            instance_ref=self._instance.get_ref(),
            set_exit_code_on_failure=True,
        )
        env = {**os.environ, **plan.env_overrides}
        # A new session makes the pid a process-group id: terminate() signals the whole group.
        proc = subprocess.Popen(list(args.get_command_args()), env=env, start_new_session=True)
        with self._workers_lock:
            self._workers[run.run_id] = proc
        return proc

    def _fail_run(self, run: DagsterRun, plan: LaunchPlan) -> None:
        message = (
            f"GPU run not launched: the CUDA environment is unavailable ({plan.reason}) and the "
            f"launcher's fallback policy is 'fail'. Fix cuda_python / the GPU, or set "
            f"fallback: cpu in dagster.yaml."
        )
        self._instance.add_run_tags(
            run.run_id, {DEVICE_TAG: plan.requested, LAUNCH_DECISION_TAG: DECISION_FAILED}
        )
        self._instance.report_run_failed(run, message=message)

    def _report_decision(self, run: DagsterRun, plan: LaunchPlan, pid: int) -> None:
        """Engine event naming interpreter, device and env; a WARNING for a CPU fallback."""
        env_text = ", ".join(f"{k}={v!r}" for k, v in sorted(plan.env_overrides.items()))
        if plan.decision == DECISION_CPU_FALLBACK:
            message = (
                f"WARNING: GPU run falling back to CPU: CUDA environment unavailable "
                f"({plan.reason}). Worker pid {pid}, python {plan.python}, env: {env_text}."
            )
            level = logging.WARNING
        else:
            message = (
                f"Launched run worker (pid {pid}) on {plan.device} with python {plan.python}; "
                f"env: {env_text}."
            )
            level = logging.INFO
        metadata = {
            "decision": plan.decision,
            "device": plan.device,
            "python": plan.python,
            "pid": str(pid),
            "env": dict(plan.env_overrides),
            "reason": plan.reason,
        }
        event = DagsterEvent(
            event_type_value=DagsterEventType.ENGINE_EVENT.value,
            job_name=run.job_name,
            message=f"[{type(self).__name__}] {message}",
            event_specific_data=EngineEventData(metadata=metadata),
        )
        self._instance.report_dagster_event(event, run_id=run.run_id, log_level=level)

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        pid = worker_pid(run)
        if pid is None:
            return CheckRunHealthResult(WorkerStatus.UNKNOWN, "no worker pid recorded")
        with self._workers_lock:
            proc = self._workers.get(run.run_id)
        if proc is not None:
            code = proc.poll()
            if code is None:
                return CheckRunHealthResult(WorkerStatus.RUNNING, run_worker_id=str(pid))
            status = WorkerStatus.SUCCESS if code == 0 else WorkerStatus.FAILED
            return CheckRunHealthResult(status, f"worker {pid} exited with code {code}")
        if not on_this_host(run):
            return CheckRunHealthResult(
                WorkerStatus.UNKNOWN, f"worker runs on {run.tags.get(WORKER_HOST_TAG)!r}"
            )
        if is_worker_alive(pid, run.run_id):
            return CheckRunHealthResult(WorkerStatus.RUNNING, run_worker_id=str(pid))
        return CheckRunHealthResult(WorkerStatus.FAILED, f"worker process {pid} is gone")

    def terminate(self, run_id: str) -> bool:
        """Mark the run CANCELING, then SIGTERM the worker process.

        Dagster's worker maps SIGTERM to its interrupt handler; because the run is CANCELING
        it ends as CANCELED. Its multiprocess executor passes the interrupt on to each step
        subprocess as SIGINT (training assets save a checkpoint in their handler). The worker
        alone is signalled, so each step gets exactly one signal.
        """
        run = self._instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            return False
        pid = worker_pid(run)
        if pid is None or not on_this_host(run) or not is_worker_alive(pid, run_id):
            self._instance.report_engine_event(
                f"Cannot terminate: no live worker process on this host (pid {pid}).",
                run,
                cls=type(self),
            )
            return False
        self._instance.report_run_canceling(run)
        if not signal_worker(pid, signal.SIGTERM):
            return False
        self._instance.report_engine_event(f"Sent SIGTERM to run worker {pid}.", run, cls=type(self))
        return True

    def join(self, timeout: int = 30) -> None:
        """Wait for the workers this process launched (tests and clean shutdowns)."""
        deadline = time.monotonic() + timeout
        with self._workers_lock:
            workers = list(self._workers.values())
        for proc in workers:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        self._reap_finished()

    def _reap_finished(self) -> None:
        """Forget exited workers (poll() also reaps them, so no zombies pile up)."""
        with self._workers_lock:
            done = [run_id for run_id, proc in self._workers.items() if proc.poll() is not None]
            for run_id in done:
                del self._workers[run_id]


def _job_origin(run: DagsterRun) -> JobPythonOrigin:
    if run.job_code_origin is None:
        raise ValueError(f"Run {run.run_id} has no job_code_origin; cannot start its worker.")
    return run.job_code_origin


def _origin_python(run: DagsterRun) -> str:
    """The code location's interpreter (what the default launcher would use), else ours."""
    python = run.job_code_origin.executable_path if run.job_code_origin else None
    return python if python and os.path.isfile(python) else sys.executable


def _with_python(origin: JobPythonOrigin, python: str) -> JobPythonOrigin:
    """The same job origin, run by ``python`` (``get_command_args`` reads the entry point)."""
    repo = origin.repository_origin._replace(
        executable_path=python, entry_point=get_python_environment_entry_point(python)
    )
    return origin._replace(repository_origin=repo)
