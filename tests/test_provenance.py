"""The training environment recorded with each policy (cryptorl_core.provenance)."""

from __future__ import annotations

import json
import sys

import numpy as np
import torch

from cryptorl_core.provenance import (
    NUMERIC_PACKAGES,
    cpu_model,
    package_versions,
    training_environment,
)


def test_cpu_model_reads_cpuinfo_and_falls_back(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9R14\nflags\t: fpu\n")
    assert cpu_model(info) == "AMD EPYC 9R14"
    assert cpu_model(tmp_path / "absent")  # platform.processor() or "unknown", never empty


def test_package_versions_are_the_installed_ones():
    versions = package_versions(("torch", "numpy", "no-such-distribution-cryptorl"))
    assert versions == {"torch": torch.__version__, "numpy": np.__version__,
                        "no-such-distribution-cryptorl": "not installed"}


def test_training_environment_is_flat_json_with_every_numeric_package():
    env = training_environment("cpu")
    assert json.loads(json.dumps(env)) == env and all(isinstance(v, str) for v in env.values())
    assert env["python"] == sys.version.split()[0] and "accelerator" not in env
    assert set(NUMERIC_PACKAGES) <= set(env) and env["stable-baselines3"] != "not installed"
