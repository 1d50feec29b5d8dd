"""CryptoRLRunLauncher and CryptoRLRunCoordinator against a real (temporary) Dagster instance.

Runs are launched for real: each starts ``python -m dagster api execute_run`` in a subprocess
(a few seconds each on a small CPU), so the number of runs is kept small. The "CUDA python" is
this interpreter, and ``cuda_probe: present`` / ``absent`` declares the CUDA environment.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    RunsFilter,
)
from dagster._core.execution.backfill import PartitionBackfill
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.test_utils import instance_for_test, poll_for_finished_run
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext, WorkspaceRequestContext
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._daemon.backfill import execute_backfill_iteration
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import (
    QueuedRunCoordinatorDaemon,
)

from cryptorl_dagster.launcher import (
    WORKER_PID_TAG,
    CryptoRLRunCoordinator,
    CryptoRLRunLauncher,
    CudaProbe,
    requested_device,
)
from cryptorl_dagster.launcher._dagster_internal import WorkerStatus
from cryptorl_dagster.tags import DEVICE_TAG, LAUNCH_DECISION_TAG

TESTS_DIR = Path(__file__).resolve().parent
LAUNCHER_DIR = TESTS_DIR.parent / "cryptorl_dagster" / "launcher"
DEFS_FILE = TESTS_DIR / "helpers" / "launcher_defs.py"
RUN_TIMEOUT_S = 90.0

CUDA_MARK = "cuda-env-from-launcher"


def _load_defs_module() -> Any:
    spec = importlib.util.spec_from_file_location("cryptorl_test_launcher_defs", DEFS_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


DEFS = _load_defs_module().defs


def _launcher_config(**overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "cuda_python": sys.executable,  # the fake "CUDA venv"
        "cuda_visible_devices": "0",
        "cuda_env": {"CRYPTORL_TEST_CUDA_MARK": CUDA_MARK},
        "cpu_env": {"CUDA_VISIBLE_DEVICES": ""},
        "fallback": "cpu",
        "cuda_probe": "present",
    }
    config.update(overrides)
    return config


@contextmanager
def _instance_and_workspace(
    tmp_path: Path, storage: Mapping[str, Any] | None = None, **launcher_overrides: Any
) -> Iterator[tuple[DagsterInstance, WorkspaceProcessContext]]:
    """A temporary instance with our launcher and queue, and an in-process code location.

    :param storage: a ``storage:`` instance config (default: SQLite in the temp dir).
    """
    overrides: dict[str, Any] = {
        "run_launcher": {
            "module": "cryptorl_dagster.launcher",
            "class": "CryptoRLRunLauncher",
            "config": _launcher_config(**launcher_overrides),
        },
        "run_coordinator": {
            "module": "cryptorl_dagster.launcher",
            "class": "CryptoRLRunCoordinator",
            "config": {"dequeue_interval_seconds": 1},
        },
        "concurrency": {
            "runs": {
                "max_concurrent_runs": 10,
                "tag_concurrency_limits": [
                    {"key": DEVICE_TAG, "value": "cuda", "limit": 1},
                    {"key": DEVICE_TAG, "value": "cpu", "limit": 2},
                ],
            }
        },
        "telemetry": {"enabled": False},
    }
    if storage is not None:
        overrides["storage"] = storage
    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(
            executable_path=sys.executable,
            python_file=str(DEFS_FILE),
            attribute="defs",
            working_directory=str(TESTS_DIR),
        ),
        location_name="launcher_test",
    )
    home = tmp_path / "home"
    home.mkdir()
    with instance_for_test(overrides=overrides, temp_dir=str(home)) as instance:
        with WorkspaceProcessContext(
            instance, InProcessWorkspaceLoadTarget(origin)
        ) as process_context:
            try:
                yield instance, process_context
            finally:
                instance.run_launcher.join(timeout=60)


InstanceFactory = Callable[
    ..., AbstractContextManager[tuple[DagsterInstance, WorkspaceProcessContext]]
]


@pytest.fixture
def make_instance(tmp_path: Path) -> InstanceFactory:
    return lambda **kwargs: _instance_and_workspace(tmp_path, **kwargs)


def _create_run(
    instance: DagsterInstance,
    workspace: WorkspaceRequestContext,
    job_name: str,
    run_config: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
) -> DagsterRun:
    """Create a NOT_STARTED run with real origins and the job's tags, as the webserver would."""
    location = workspace.get_code_location("launcher_test")
    remote_job = location.get_repository("__repository__").get_full_job(job_name)
    return instance.create_run_for_job(
        job_def=DEFS.resolve_job_def(job_name),
        run_config=run_config,
        tags={**remote_job.run_tags, **(tags or {})},
        remote_job_origin=remote_job.get_remote_origin(),
        job_code_origin=remote_job.get_python_origin(),
    )


def _seen_env(instance: DagsterInstance, run_id: str) -> dict[str, Any]:
    """The environment the probe asset reported from inside its run worker."""
    records = instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
    assert len(records) == 1, f"expected one materialization in run {run_id}"
    materialization = records[0].get_dagster_event().step_materialization_data.materialization
    return materialization.metadata["env"].value


def _wait_finished(instance: DagsterInstance, run_id: str) -> DagsterRun:
    return poll_for_finished_run(instance, run_id, timeout=RUN_TIMEOUT_S)


def _poll(probe: Callable[[], Any], done: Callable[[Any], bool], timeout_s: float, interval_s: float = 0.2) -> Any:
    """``probe()`` every ``interval_s`` until ``done`` accepts its value or ``timeout_s`` has
    passed: the last value either way."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(interval_s)


def _wait_for_file(path: Path, timeout_s: float = RUN_TIMEOUT_S) -> None:
    assert _poll(path.exists, bool, timeout_s, interval_s=0.1), f"timed out waiting for {path}"


def _exited(pid: int) -> bool:
    """Whether ``pid`` is gone or a zombie (exited, not yet reaped)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().split(") ")[-1].startswith("Z")
    except FileNotFoundError:
        return True


def _pid_gone(pid: int, timeout_s: float = 30.0) -> bool:
    return _poll(lambda: _exited(pid), bool, timeout_s)


def _settled_health(instance: DagsterInstance, run: DagsterRun, timeout_s: float = 30.0) -> WorkerStatus:
    """The launcher's health verdict once the worker can be reaped. A worker whose main thread
    has exited reads as a zombie in /proc while its other threads still wind down, and until
    then ``waitpid`` (so ``Popen.poll``) still sees it running."""
    return _poll(lambda: instance.run_launcher.check_run_worker_health(run).status,
                 lambda status: status != WorkerStatus.RUNNING, timeout_s)


# -- decisions without a run worker ---------------------------------------------------------


def test_requested_device_reads_run_tags_then_plan_step_tags(make_instance: InstanceFactory):
    with make_instance() as (instance, process_context):
        workspace = process_context.create_request_context()
        tagged = _create_run(instance, workspace, "gpu_job")
        untagged = _create_run(instance, workspace, "gpu_untagged_job")
        cpu = _create_run(instance, workspace, "cpu_job")
        forced_cpu = _create_run(instance, workspace, "gpu_job", tags={DEVICE_TAG: "cpu"})

        assert tagged.tags.get(DEVICE_TAG) == "cuda"  # job tags reach the run
        assert DEVICE_TAG not in untagged.tags  # like a backfill run: only the step knows
        assert requested_device(instance, tagged) == "cuda"
        assert requested_device(instance, untagged) == "cuda"
        assert requested_device(instance, cpu) == "cpu"
        assert requested_device(instance, forced_cpu) == "cpu"


def test_cuda_probe_reports_missing_python_and_caches(tmp_path: Path):
    probe = CudaProbe("present")
    available, reason = probe.check(str(tmp_path / "no-venv" / "bin" / "python"))
    assert not available and "does not exist" in reason
    assert probe.check(sys.executable) == (True, "declared present (cuda_probe: present)")
    assert sys.executable in probe._cache
    with pytest.raises(ValueError, match="cuda_probe"):
        CudaProbe("bogus")
    with pytest.raises(ValueError, match="fallback"):
        CryptoRLRunLauncher(fallback="sometimes")


def test_private_dagster_names_only_in_the_internal_module():
    """The launcher's private Dagster surface stays in one file (issue 13, item 7)."""
    offenders = [
        f"{path.name}:{number}"
        for path in sorted(LAUNCHER_DIR.glob("*.py"))
        if path.name != "_dagster_internal.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "dagster._" in line
    ]
    assert offenders == []


# -- real run workers ------------------------------------------------------------------------


def test_gpu_run_gets_cuda_env_and_cpu_run_does_not(make_instance: InstanceFactory):
    with make_instance() as (instance, process_context):
        workspace = process_context.create_request_context()
        gpu_run = _create_run(instance, workspace, "gpu_untagged_job")
        cpu_run = _create_run(instance, workspace, "cpu_job")
        instance.launch_run(gpu_run.run_id, workspace)
        instance.launch_run(cpu_run.run_id, workspace)

        gpu_done = _wait_finished(instance, gpu_run.run_id)
        cpu_done = _wait_finished(instance, cpu_run.run_id)
        assert gpu_done.status == DagsterRunStatus.SUCCESS
        assert cpu_done.status == DagsterRunStatus.SUCCESS

        gpu_env = _seen_env(instance, gpu_run.run_id)
        assert gpu_env["CRYPTORL_DEVICE"] == "cuda"
        assert gpu_env["CUDA_VISIBLE_DEVICES"] == "0"
        assert gpu_env["CRYPTORL_TEST_CUDA_MARK"] == CUDA_MARK
        assert gpu_done.tags[DEVICE_TAG] == "cuda"  # promoted to a run tag for the UI
        assert gpu_done.tags[LAUNCH_DECISION_TAG] == "cuda"
        assert int(gpu_done.tags[WORKER_PID_TAG]) > 0

        cpu_env = _seen_env(instance, cpu_run.run_id)
        assert cpu_env["CRYPTORL_DEVICE"] == "cpu"
        assert cpu_env["CUDA_VISIBLE_DEVICES"] == ""
        assert cpu_env["CRYPTORL_TEST_CUDA_MARK"] is None
        assert cpu_done.tags[LAUNCH_DECISION_TAG] == "cpu"

        decision = [
            r
            for r in instance.all_logs(gpu_run.run_id, of_type=DagsterEventType.ENGINE_EVENT)
            if "CryptoRLRunLauncher" in (r.get_dagster_event().message or "")
        ]
        assert decision and "CRYPTORL_DEVICE='cuda'" in decision[0].get_dagster_event().message
        assert sys.executable in decision[0].get_dagster_event().message


def test_missing_cuda_falls_back_to_cpu_with_warning(make_instance: InstanceFactory):
    with make_instance(cuda_probe="absent", fallback="cpu") as (instance, process_context):
        workspace = process_context.create_request_context()
        run = _create_run(instance, workspace, "gpu_job")
        instance.launch_run(run.run_id, workspace)
        done = _wait_finished(instance, run.run_id)

        assert done.status == DagsterRunStatus.SUCCESS
        assert done.tags[LAUNCH_DECISION_TAG] == "cpu-fallback"
        env = _seen_env(instance, run.run_id)
        assert env["CRYPTORL_DEVICE"] == "cpu"
        assert env["CRYPTORL_TEST_CUDA_MARK"] is None
        warnings = [
            r
            for r in instance.all_logs(run.run_id, of_type=DagsterEventType.ENGINE_EVENT)
            if r.level == logging.WARNING
        ]
        assert len(warnings) == 1
        assert "falling back to CPU" in warnings[0].get_dagster_event().message


def test_missing_cuda_with_fail_policy_fails_run_at_once(make_instance: InstanceFactory):
    with make_instance(cuda_probe="absent", fallback="fail") as (instance, process_context):
        workspace = process_context.create_request_context()
        run = _create_run(instance, workspace, "gpu_job")
        instance.launch_run(run.run_id, workspace)

        failed = instance.get_run_by_id(run.run_id)
        assert failed is not None and failed.status == DagsterRunStatus.FAILURE
        assert WORKER_PID_TAG not in failed.tags  # no worker was started
        assert failed.tags[LAUNCH_DECISION_TAG] == "failed-no-cuda"
        failures = instance.all_logs(run.run_id, of_type=DagsterEventType.RUN_FAILURE)
        message = failures[0].get_dagster_event().message
        assert "CUDA environment is unavailable" in message and "'fail'" in message


def test_queue_limits_gpu_and_cpu_runs_separately(make_instance: InstanceFactory, tmp_path: Path):
    gate = tmp_path / "gate"
    with make_instance() as (instance, process_context):
        workspace = process_context.create_request_context()
        assert isinstance(instance.run_coordinator, CryptoRLRunCoordinator)

        def submit(job: str, asset: str) -> str:
            run_config = {"ops": {asset: {"config": {"gate_file": str(gate)}}}}
            run = _create_run(instance, workspace, job, run_config=run_config)
            instance.submit_run(run.run_id, workspace)
            return run.run_id

        gpu_ids = [submit("gated_gpu_job", "gated_gpu") for _ in range(2)]
        cpu_ids = [submit("gated_cpu_job", "gated_cpu") for _ in range(3)]
        # The coordinator tagged untagged runs from their plan, before they were queued.
        for run_id, device in [(i, "cuda") for i in gpu_ids] + [(i, "cpu") for i in cpu_ids]:
            run = instance.get_run_by_id(run_id)
            assert run.status == DagsterRunStatus.QUEUED
            assert run.tags[DEVICE_TAG] == device

        def launched(run_ids: list[str]) -> list[str]:
            return [
                i for i in run_ids if instance.get_run_by_id(i).status != DagsterRunStatus.QUEUED
            ]

        daemon = QueuedRunCoordinatorDaemon(interval_seconds=1)
        list(daemon.run_iteration(process_context))
        assert len(launched(gpu_ids)) == 1  # one GPU slot
        assert len(launched(cpu_ids)) == 2  # CPU limit
        # While they run (the gate is closed), nothing more is dequeued.
        list(daemon.run_iteration(process_context))
        assert len(launched(gpu_ids)) == 1 and len(launched(cpu_ids)) == 2

        gate.touch()
        for run_id in launched(gpu_ids) + launched(cpu_ids):
            assert _wait_finished(instance, run_id).status == DagsterRunStatus.SUCCESS
        for run_id in set(gpu_ids + cpu_ids) - set(launched(gpu_ids) + launched(cpu_ids)):
            assert instance.run_coordinator.cancel_run(run_id)


def test_backfill_runs_hold_one_gpu_slot(make_instance: InstanceFactory, tmp_path: Path):
    """A real asset backfill (one run per partition, only backfill tags) starts one GPU run at a
    time: the coordinator tags each run from its plan when the backfill daemon submits it."""
    gate = tmp_path / "gate"
    with make_instance() as (instance, process_context):
        workspace = process_context.create_request_context()
        asset = "gated_gpu_partitioned"
        backfill = PartitionBackfill.from_asset_partitions(
            backfill_id="gpubf",
            asset_graph=workspace.asset_graph,
            partition_names=["p1", "p2", "p3"],
            asset_selection=[AssetKey(asset)],
            backfill_timestamp=time.time(),
            tags={},
            dynamic_partitions_store=instance,
            all_partitions=False,
            title=None,
            description=None,
            run_config={"ops": {asset: {"config": {"gate_file": str(gate)}}}},
        )
        instance.add_backfill(backfill)
        backfill_runs = RunsFilter(tags={"dagster/backfill": "gpubf"})
        for _ in range(5):
            if len(instance.get_runs(backfill_runs)) == 3:
                break
            list(execute_backfill_iteration(process_context, logging.getLogger(__name__)))
        runs = instance.get_runs(backfill_runs)
        assert len(runs) == 3
        assert all(
            r.status == DagsterRunStatus.QUEUED and r.tags[DEVICE_TAG] == "cuda" for r in runs
        )

        def statuses() -> list[DagsterRunStatus]:
            return [r.status for r in instance.get_runs(backfill_runs)]

        daemon = QueuedRunCoordinatorDaemon(interval_seconds=1)
        for _ in range(2):  # the second pass sees the first run in progress
            list(daemon.run_iteration(process_context))
        assert statuses().count(DagsterRunStatus.QUEUED) == 2  # one GPU slot

        gate.touch()
        first = next(
            r for r in instance.get_runs(backfill_runs) if r.status != DagsterRunStatus.QUEUED
        )
        assert _wait_finished(instance, first.run_id).status == DagsterRunStatus.SUCCESS
        list(daemon.run_iteration(process_context))
        assert statuses().count(DagsterRunStatus.QUEUED) == 1  # the freed slot went to the next
        for run in instance.get_runs(backfill_runs):
            if run.status == DagsterRunStatus.QUEUED:
                assert instance.run_coordinator.cancel_run(run.run_id)
            else:
                assert _wait_finished(instance, run.run_id).status == DagsterRunStatus.SUCCESS


def test_terminate_interrupts_the_step_once_and_run_ends_canceled(
    make_instance: InstanceFactory, tmp_path: Path
):
    markers = tmp_path / "markers"
    markers.mkdir()
    run_config = {"ops": {"slow_training": {"config": {"marker_dir": str(markers)}}}}
    with make_instance() as (instance, process_context):
        workspace = process_context.create_request_context()
        run = _create_run(instance, workspace, "slow_job", run_config=run_config)
        instance.launch_run(run.run_id, workspace)
        _wait_for_file(markers / "started")
        step_pid = json.loads((markers / "started").read_text())["pid"]

        # Terminate from another instance object, as the webserver would: it has only the tags.
        other = DagsterInstance.from_ref(instance.get_ref())
        assert (
            other.run_launcher.check_run_worker_health(other.get_run_by_id(run.run_id)).status
            == WorkerStatus.RUNNING
        )
        assert other.run_coordinator.cancel_run(run.run_id)

        done = _wait_finished(instance, run.run_id)
        assert done.status == DagsterRunStatus.CANCELED
        checkpoint = json.loads((markers / "checkpoint").read_text())
        # The step subprocess saved under its guard after exactly one signal: Dagster's
        # interrupt, passed on by the worker (the launcher signals the worker alone).
        assert checkpoint == {"pid": step_pid, "signals": [signal.SIGINT]}
        worker = int(done.tags[WORKER_PID_TAG])
        assert _pid_gone(worker) and _pid_gone(step_pid)
        assert _settled_health(instance, done) in (WorkerStatus.SUCCESS, WorkerStatus.FAILED)
        assert not other.run_launcher.terminate(run.run_id)  # finished: nothing to do


# -- Postgres storage (the scale-out path), when a server and dagster-postgres are here -------


def _postgres_bin_dir() -> Path | None:
    """Folder with initdb and postgres: PATH first, then Debian's /usr/lib/postgresql/*/bin."""
    initdb = shutil.which("initdb")
    if initdb and shutil.which("postgres"):
        return Path(os.path.realpath(initdb)).parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return candidates[-1].parent if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def _postgres_server() -> Iterator[str]:
    """A throwaway Postgres server on loopback; yields its URL, or skips the test."""
    pytest.importorskip(
        "dagster_postgres", reason="dagster-postgres not installed (pip install -e '.[deploy]')"
    )
    psycopg2 = pytest.importorskip("psycopg2", reason="psycopg2 not installed")
    bindir = _postgres_bin_dir()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries (initdb/postgres) on this machine")
    # initdb and postgres refuse to run as root: drop to the 'postgres' user if we are root.
    user = None
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server")
    root = Path(tempfile.mkdtemp(prefix="cryptorl-pg-"))
    data, sockets = root / "data", root / "sock"
    sockets.mkdir()
    as_user: dict[str, Any] = {}
    if user is not None:
        os.chown(root, user.pw_uid, user.pw_gid)
        os.chown(sockets, user.pw_uid, user.pw_gid)
        as_user = {"user": user.pw_uid, "group": user.pw_gid}
    port = _free_port()
    server = None
    try:
        subprocess.run(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "dagster",
                "--auth=trust",
                "-E",
                "UTF8",
            ],
            check=True,
            capture_output=True,
            **as_user,
        )
        server = subprocess.Popen(
            [
                str(bindir / "postgres"),
                "-D",
                str(data),
                "-p",
                str(port),
                "-h",
                "127.0.0.1",
                "-k",
                str(sockets),
                "-c",
                "fsync=off",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            **as_user,
        )
        url = f"postgresql+psycopg2://dagster@127.0.0.1:{port}/postgres"
        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg2.connect(
                    host="127.0.0.1", port=port, user="dagster", dbname="postgres"
                ).close()
                break
            except psycopg2.OperationalError:
                assert server.poll() is None, "postgres exited at start-up"
                assert time.monotonic() < deadline, "postgres did not accept connections"
                time.sleep(0.3)
        yield url
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)


def test_concurrent_runs_record_all_events_in_postgres(make_instance: InstanceFactory):
    with _postgres_server() as url:
        storage = {"postgres": {"postgres_url": url}}
        with make_instance(storage=storage) as (instance, process_context):
            workspace = process_context.create_request_context()
            runs = [_create_run(instance, workspace, "cpu_job") for _ in range(3)]
            for run in runs:  # three workers writing to the same database at once
                instance.launch_run(run.run_id, workspace)
            for run in runs:
                assert _wait_finished(instance, run.run_id).status == DagsterRunStatus.SUCCESS
                assert _seen_env(instance, run.run_id)["CRYPTORL_DEVICE"] == "cpu"
                types = {
                    r.get_dagster_event().event_type
                    for r in instance.all_logs(run.run_id)
                    if r.is_dagster_event
                }
                assert {
                    DagsterEventType.RUN_START,
                    DagsterEventType.STEP_SUCCESS,
                    DagsterEventType.RUN_SUCCESS,
                } <= types
