"""Run queue that tags each run with its device before queueing it.

Dagster's ``tag_concurrency_limits`` count run *tags*, but the queue decides before any launcher
runs and backfill runs carry only backfill tags. This coordinator classifies the run at submit
time (see :mod:`cryptorl_dagster.launcher.routing`) and writes ``cryptorl/device: cuda|cpu``, so
``{key: cryptorl/device, value: cuda, limit: <GPU slots>}`` and ``{..., value: cpu, limit: N}``
hold for every run, backfills included. Optionally it also writes the ``dagster-k8s/config``
tag of GPU runs, so K8sRunLauncher requests ``nvidia.com/gpu`` for them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from dagster import (
    DagsterRun,
    DagsterRunStatus,
    Field,
    Permissive,
    QueuedRunCoordinator,
    SubmitRunContext,
)
from typing_extensions import Self

from cryptorl_dagster.launcher._dagster_internal import ConfigurableClassData
from cryptorl_dagster.launcher.k8s import K8S_CONFIG_TAG
from cryptorl_dagster.launcher.routing import CUDA, requested_device
from cryptorl_dagster.tags import DEVICE_TAG


class CryptoRLRunCoordinator(QueuedRunCoordinator):
    """``QueuedRunCoordinator`` that adds the ``cryptorl/device`` tag (and k8s GPU config).

    :param k8s_gpu_config: ``dagster-k8s/config`` value for GPU runs (None: no k8s tag).
    :param kwargs: the ``QueuedRunCoordinator`` settings.
    """

    def __init__(self, k8s_gpu_config: Mapping[str, Any] | None = None, **kwargs: Any):
        self.k8s_gpu_config = dict(k8s_gpu_config) if k8s_gpu_config else None
        super().__init__(**kwargs)

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {
            **QueuedRunCoordinator.config_type(),
            "k8s_gpu_config": Field(
                Permissive(),
                is_required=False,
                description="dagster-k8s/config run tag for GPU runs (container_config, ...).",
            ),
        }

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]
    ) -> Self:
        # Every QueuedRunCoordinator config key is also its __init__ keyword.
        return cls(inst_data=inst_data, **config_value)

    def routing_tags(self, run: DagsterRun) -> dict[str, str]:
        """Tags to add to ``run`` before queueing it (never overriding existing ones)."""
        device = requested_device(self._instance, run)
        tags = {DEVICE_TAG: device}
        if device == CUDA and self.k8s_gpu_config:
            tags[K8S_CONFIG_TAG] = json.dumps(self.k8s_gpu_config)
        return {key: value for key, value in tags.items() if key not in run.tags}

    def submit_run(self, context: SubmitRunContext) -> DagsterRun:
        run = context.dagster_run
        if run.status == DagsterRunStatus.NOT_STARTED:
            new_tags = self.routing_tags(run)
            if new_tags:
                self._instance.add_run_tags(run.run_id, new_tags)
                run = self._instance.get_run_by_id(run.run_id) or run
        return super().submit_run(SubmitRunContext(run, context.workspace))
