"""The local Dagster instance, found the way ``dagster dev`` finds it, with nothing to set."""

from __future__ import annotations

import dagster as dg
from dagster._core.instance.config import is_dagster_home_set
from dagster._core.instance.ref import InstanceRef

from cryptorl_core.settings import project_root, storage_root


def local_instance() -> dg.DagsterInstance:
    """``$DAGSTER_HOME``'s instance when it is set; else the repository's ``dagster.yaml``
    (the instance ``dagster dev`` in the repo root uses), whose storage lives under
    ``$CRYPTORL_STORAGE`` or ``<repo>/storage``."""
    if is_dagster_home_set():
        return dg.DagsterInstance.get()
    ref = InstanceRef.from_dir(str(storage_root()), config_dir=str(project_root()))
    return dg.DagsterInstance.from_ref(ref)
