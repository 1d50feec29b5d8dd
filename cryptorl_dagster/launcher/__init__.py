"""Run launching for CryptoRL: GPU routing, the run queue, the Kubernetes GPU mapping, and the
local instance storage under ``storage/``.

Referenced from ``dagster.yaml`` (``module: cryptorl_dagster.launcher``), so the webserver, the
daemon and the run workers all import it; it must stay light (no torch, no dagster_k8s).
"""

from cryptorl_dagster.launcher.coordinator import CryptoRLRunCoordinator
from cryptorl_dagster.launcher.cuda_probe import CudaProbe
from cryptorl_dagster.launcher.gpu_launcher import CryptoRLRunLauncher, LaunchPlan
from cryptorl_dagster.launcher.k8s import (
    K8S_CONFIG_KEYS,
    K8S_CONFIG_TAG,
    k8s_gpu_config,
    k8s_gpu_tags,
)
from cryptorl_dagster.launcher.routing import plan_has_gpu_step, requested_device
from cryptorl_dagster.launcher.storage_dirs import (
    CryptoRLSqliteStorage,
    SubdirArtifactStorage,
    SubdirComputeLogManager,
)
from cryptorl_dagster.launcher.worker import WORKER_HOST_TAG, WORKER_PID_TAG

__all__ = [
    "K8S_CONFIG_KEYS",
    "K8S_CONFIG_TAG",
    "WORKER_HOST_TAG",
    "WORKER_PID_TAG",
    "CryptoRLRunCoordinator",
    "CryptoRLSqliteStorage",
    "CryptoRLRunLauncher",
    "CudaProbe",
    "LaunchPlan",
    "SubdirArtifactStorage",
    "SubdirComputeLogManager",
    "k8s_gpu_config",
    "k8s_gpu_tags",
    "plan_has_gpu_step",
    "requested_device",
]
