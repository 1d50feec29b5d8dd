"""Every private ``dagster._*`` name the launcher package uses, in one place.

The rest of ``cryptorl_dagster/launcher`` imports Dagster only from the public ``dagster``
namespace and from here (``tests/test_launcher.py`` checks it). Each name below has no public
export in Dagster 1.13's ``dagster/__init__.py``; the comment says why the launcher needs it.
The "extension" names are documented in Dagster's API reference ("Internals" page, marked
``@public`` in the source) but only under these ``_``-paths, the same ones dagster-docker and
dagster-k8s import. Dagster promises nothing for ``_``-modules and does move them (the serdes
core now lives in ``dagster_shared``; ``dagster._serdes`` only re-exports it), which is why
``pyproject.toml`` pins ``dagster>=1.13,<1.14``: re-check this file when raising the pin.
"""

# Run-launcher extension point (Internals docs). A launcher that starts its own worker process
# must subclass RunLauncher; launch_run gets a LaunchRunContext; check_run_worker_health returns
# a CheckRunHealthResult with a WorkerStatus (run monitoring reads both).
# Engine-event payload: the only way to attach metadata (device, python, env) to the launch
# decision event; instance.report_engine_event takes it too, but has no log level, and the CPU
# fallback must be a WARNING.
from dagster._core.events import EngineEventData
from dagster._core.launcher.base import (
    CheckRunHealthResult,
    LaunchRunContext,
    RunLauncher,
    WorkerStatus,
)

# The worker command. No public API starts `dagster api execute_run`: ExecuteRunArgs is its
# serialized argument (what dagster-docker/-k8s build); the job origin is rewritten to name the
# CUDA interpreter (JobPythonOrigin is the type of run.job_code_origin; the entry point helper
# is the `[python, "-m", "dagster"]` list get_command_args() reads).
from dagster._core.origin import JobPythonOrigin, get_python_environment_entry_point

# Instance storage classes subclassed by storage_dirs.py to root them under storage/ with no env
# var. Dagster exports only their names for dagster.yaml, not the classes.
from dagster._core.storage.local_compute_log_manager import LocalComputeLogManager
from dagster._core.storage.root import LocalArtifactStorage
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage
from dagster._grpc.types import ExecuteRunArgs

# dagster.yaml `module:/class:` plug-ins (Internals docs): config_type/from_config_value and the
# inst_data every configurable instance component carries.
from dagster._serdes import ConfigurableClass, ConfigurableClassData

__all__ = [
    "CheckRunHealthResult",
    "ConfigurableClass",
    "ConfigurableClassData",
    "DagsterSqliteStorage",
    "EngineEventData",
    "ExecuteRunArgs",
    "JobPythonOrigin",
    "LaunchRunContext",
    "LocalArtifactStorage",
    "LocalComputeLogManager",
    "RunLauncher",
    "WorkerStatus",
    "get_python_environment_entry_point",
]
