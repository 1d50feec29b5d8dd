"""Instance configs: the local dagster.yaml loads, deploy/dagster.yaml is valid without a cluster.

With dagster-k8s installed, the GPU mapping and the K8sRunLauncher config are also checked with
dagster-k8s's own schemas; without it those checks skip and the structure checks still run.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster import DagsterInstance
from dagster._config import validate_config
from dagster._core.instance.config import dagster_instance_config_schema
from dagster._core.test_utils import environ, instance_for_test

from cryptorl_dagster.launcher import (
    K8S_CONFIG_KEYS,
    K8S_CONFIG_TAG,
    CryptoRLRunCoordinator,
    CryptoRLRunLauncher,
    SubdirArtifactStorage,
    SubdirComputeLogManager,
    k8s_gpu_config,
    k8s_gpu_tags,
)
from cryptorl_dagster.tags import DEVICE_TAG, GPU_TAGS

ROOT = Path(__file__).resolve().parents[1]
LOCAL_YAML = ROOT / "dagster.yaml"
DEPLOY_YAML = ROOT / "deploy" / "dagster.yaml"

#: K8sRunLauncher config keys (dagster-k8s 0.29), for the check without dagster-k8s installed.
K8S_LAUNCHER_KEYS = {
    "job_image",
    "image_pull_policy",
    "image_pull_secrets",
    "service_account_name",
    "env_config_maps",
    "env_secrets",
    "env_vars",
    "volume_mounts",
    "volumes",
    "labels",
    "resources",
    "scheduler_name",
    "security_context",
    "instance_config_map",
    "postgres_password_secret",
    "dagster_home",
    "load_incluster_config",
    "kubeconfig_file",
    "job_namespace",
    "fail_pod_on_run_failure",
    "run_k8s_config",
    "only_allow_user_defined_k8s_config_fields",
    "only_allow_user_defined_env_vars",
    "job_spec_config",
}


def _load(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf8") as f:
        return yaml.safe_load(f)


def _tag_limits(config: dict[str, Any]) -> dict[str, int]:
    limits = config["concurrency"]["runs"]["tag_concurrency_limits"]
    return {item["value"]: item["limit"] for item in limits if item["key"] == DEVICE_TAG}


@pytest.mark.parametrize("path", [LOCAL_YAML, DEPLOY_YAML], ids=["local", "deploy"])
def test_instance_yaml_matches_dagster_schema(path: Path):
    config = _load(path)
    result = validate_config(dagster_instance_config_schema(), config)
    assert result.success, [e.message for e in result.errors]
    limits = _tag_limits(config)
    assert limits["cuda"] >= 1 and limits["cpu"] >= 1
    assert config["run_coordinator"]["class"] == CryptoRLRunCoordinator.__name__
    coordinator_config = config["run_coordinator"].get("config", {})
    result = validate_config(CryptoRLRunCoordinator.config_type(), coordinator_config)
    assert result.success, [e.message for e in result.errors]


def test_local_yaml_puts_all_state_under_storage_env(tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(LOCAL_YAML.read_text())
    storage = tmp_path / "storage"
    with environ({"CRYPTORL_STORAGE": str(storage), "DAGSTER_HOME": str(home)}):
        instance = DagsterInstance.from_config(str(home))
        try:
            assert isinstance(instance.run_launcher, CryptoRLRunLauncher)
            assert isinstance(instance.run_coordinator, CryptoRLRunCoordinator)
            assert instance.run_launcher.fallback == "cpu"
            assert instance.run_launcher.cpu_env == {"CUDA_VISIBLE_DEVICES": ""}
            assert isinstance(instance.compute_log_manager, SubdirComputeLogManager)
            assert isinstance(instance._local_artifact_storage, SubdirArtifactStorage)
            assert instance.get_ref().storage_data.class_name == "CryptoRLSqliteStorage"
            assert instance.storage_directory() == str(storage / "dagster")
            assert instance.compute_log_manager._base_dir == str(storage / "logs")
            queue = instance.get_concurrency_config().run_queue_config
            assert queue is not None and queue.max_concurrent_runs <= 4  # SQLite: keep it low
            assert {"key": DEVICE_TAG, "value": "cuda", "limit": 1} in queue.tag_concurrency_limits
            assert not instance.telemetry_enabled
        finally:
            instance.dispose()
    assert (storage / "history" / "runs.db").exists()  # nothing outside $CRYPTORL_STORAGE
    assert sorted(p.name for p in home.iterdir()) == ["dagster.yaml"]


def test_deploy_gpu_mapping_is_the_helper_mapping_and_valid():
    config = _load(DEPLOY_YAML)
    mapping = config["run_coordinator"]["config"]["k8s_gpu_config"]
    assert mapping == k8s_gpu_config()
    assert set(mapping) <= K8S_CONFIG_KEYS
    assert mapping["container_config"]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert {"name": "CRYPTORL_DEVICE", "value": "cuda"} in mapping["container_config"]["env"]
    tags = k8s_gpu_tags(gpus=2)
    assert tags[DEVICE_TAG] == GPU_TAGS[DEVICE_TAG]
    assert tags[K8S_CONFIG_TAG]["container_config"]["resources"]["limits"]["nvidia.com/gpu"] == 2
    json.dumps(tags)  # a run tag value must serialise to JSON


def test_deploy_uses_postgres_and_k8s_launcher():
    config = _load(DEPLOY_YAML)
    assert set(config["storage"]) == {"postgres"}
    # SQLAlchemy 2.1 maps postgresql:// to psycopg 3; dagster-postgres ships psycopg2.
    assert config["storage"]["postgres"]["postgres_db"]["scheme"] == "postgresql+psycopg2"
    launcher = config["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_k8s", "K8sRunLauncher")
    assert set(launcher["config"]) <= K8S_LAUNCHER_KEYS
    assert set(launcher["config"]["run_k8s_config"]) <= K8S_CONFIG_KEYS


def test_coordinator_adds_k8s_gpu_tag_only_to_gpu_runs(tmp_path: Path):
    spec = importlib.util.spec_from_file_location(
        "cryptorl_deploy_defs", ROOT / "tests" / "helpers" / "launcher_defs.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    overrides = {
        "run_coordinator": {
            "module": "cryptorl_dagster.launcher",
            "class": "CryptoRLRunCoordinator",
            "config": {"k8s_gpu_config": k8s_gpu_config()},
        }
    }
    with instance_for_test(overrides=overrides) as instance:
        coordinator = instance.run_coordinator
        assert isinstance(coordinator, CryptoRLRunCoordinator)
        gpu_run = instance.create_run_for_job(module.defs.resolve_job_def("gpu_untagged_job"))
        cpu_run = instance.create_run_for_job(module.defs.resolve_job_def("cpu_job"))
        gpu_tags = coordinator.routing_tags(gpu_run)
        assert gpu_tags[DEVICE_TAG] == "cuda"
        assert json.loads(gpu_tags[K8S_CONFIG_TAG]) == k8s_gpu_config()
        assert coordinator.routing_tags(cpu_run) == {DEVICE_TAG: "cpu"}


def test_gpu_mapping_with_dagster_k8s_schema():
    pytest.importorskip(
        "dagster_k8s", reason="dagster-k8s not installed (pip install -e '.[deploy]')"
    )
    from dagster_k8s import K8sRunLauncher
    from dagster_k8s.job import get_user_defined_k8s_config

    user_config = get_user_defined_k8s_config({K8S_CONFIG_TAG: json.dumps(k8s_gpu_config())})
    assert user_config.container_config["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert user_config.pod_spec_config["tolerations"][0]["key"] == "nvidia.com/gpu"
    launcher_config = _load(DEPLOY_YAML)["run_launcher"]["config"]
    result = validate_config(K8sRunLauncher.config_type(), launcher_config)
    assert result.success, [e.message for e in result.errors]
