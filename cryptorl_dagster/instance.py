"""The local Dagster instance, found the way ``dagster dev`` finds it, with nothing to set."""

from __future__ import annotations

import dagster as dg

# No public API builds an instance whose storage and config live in different folders.
from dagster._core.instance.ref import InstanceRef

from cryptorl_core import settings
from cryptorl_core.settings import project_root, storage_root


def local_instance() -> dg.DagsterInstance:
    """``$DAGSTER_HOME``'s instance when it is set; else the repository's ``dagster.yaml``
    (the instance ``dagster dev`` in the repo root uses), whose storage lives under
    ``$CRYPTORL_STORAGE`` or ``<repo>/storage``."""
    if settings.is_set("DAGSTER_HOME"):
        return dg.DagsterInstance.get()
    ref = InstanceRef.from_dir(str(storage_root()), config_dir=str(project_root()))
    return dg.DagsterInstance.from_ref(ref)
