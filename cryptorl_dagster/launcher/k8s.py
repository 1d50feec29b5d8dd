"""GPU tag -> Kubernetes pod spec, for K8sRunLauncher (dagster-k8s) deployments.

K8sRunLauncher reads the JSON run tag ``dagster-k8s/config``. A GPU run needs a GPU limit, a
toleration for the GPU nodes' taint, and ``CRYPTORL_DEVICE=cuda`` (the local launcher's job).
Kept free of dagster_k8s imports: the webserver and tests load it without the ``deploy`` extra.
"""

from __future__ import annotations

import copy
from typing import Any

from cryptorl_dagster.tags import GPU_TAGS

K8S_CONFIG_TAG = "dagster-k8s/config"

#: Top-level keys K8sRunLauncher accepts in ``dagster-k8s/config``.
K8S_CONFIG_KEYS = frozenset(
    {
        "container_config",
        "pod_spec_config",
        "pod_template_spec_metadata",
        "job_config",
        "job_spec_config",
        "job_metadata",
        "merge_behavior",
    }
)

_GPU_K8S_CONFIG: dict[str, Any] = {
    "container_config": {
        "resources": {"limits": {"nvidia.com/gpu": 1}},
        "env": [{"name": "CRYPTORL_DEVICE", "value": "cuda"}],
    },
    "pod_spec_config": {
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    },
}


def k8s_gpu_config(gpus: int = 1) -> dict[str, Any]:
    """The ``dagster-k8s/config`` value of a GPU run, as a dict.

    :param gpus: number of ``nvidia.com/gpu`` to request.
    :return: a fresh dict (callers may mutate it).
    """
    config = copy.deepcopy(_GPU_K8S_CONFIG)
    config["container_config"]["resources"]["limits"]["nvidia.com/gpu"] = gpus
    return config


def k8s_gpu_tags(gpus: int = 1) -> dict[str, Any]:
    """Job tags for GPU work on Kubernetes: the device tag plus ``dagster-k8s/config``.

    ``define_asset_job(..., tags=k8s_gpu_tags())``; Dagster serialises the dict tag to JSON.
    Backfill runs do not carry job tags: ``CryptoRLRunCoordinator(k8s_gpu_config=...)`` adds it.
    """
    return {**GPU_TAGS, K8S_CONFIG_TAG: k8s_gpu_config(gpus)}
