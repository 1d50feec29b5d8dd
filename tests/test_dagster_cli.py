"""Zero-configuration Dagster commands in the repository root.

Each command runs as a subprocess in the repo root with no ``DAGSTER_HOME`` (unless the case
is ``DAGSTER_HOME=$PWD``) and no ``CRYPTORL_*`` variable, so it reads ``./dagster.yaml`` the way
a person typing it would. Commands that write get ``CRYPTORL_STORAGE=<tmp>`` so the repo's
``storage/`` is left alone; the no-variable default (``<repo>/storage``) is checked without
writing anything.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
#: Start-up of `dagster dev` / `dg dev` on the 2-core machine takes 20-40 s.
DEV_TIMEOUT_S = 90
SHUTDOWN_TIMEOUT_S = 30


def clean_env(**extra: str) -> dict[str, str]:
    """The current environment without DAGSTER_HOME and every CRYPTORL_* variable."""
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME" and not k.startswith("CRYPTORL_")}
    env.update(extra)
    return env


def run(cmd: list[str], env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def runs_in(storage: Path) -> list[tuple[str, str]]:
    """(job name, status) of every run recorded in the sqlite run storage under ``storage``."""
    with sqlite3.connect(storage / "history" / "runs.db") as conn:
        return list(conn.execute("SELECT pipeline_name, status FROM runs"))


def test_no_variable_resolves_the_repo_instance_under_repo_storage():
    """With nothing set, Dagster's temporary home reads ./dagster.yaml (``config_dir`` = cwd):
    the project's queue, launcher and storage classes, all rooted at <repo>/storage."""
    probe = """
import json, os, tempfile
from dagster._core.instance.ref import InstanceRef
from cryptorl_dagster.launcher.storage_dirs import resolve_base_dir
with tempfile.TemporaryDirectory() as home:  # what `dagster dev` does with DAGSTER_HOME unset
    ref = InstanceRef.from_dir(home, config_dir=os.getcwd())
    print(json.dumps({
        "storage": ref.storage_data.class_name,
        "sqlite_base": resolve_base_dir(ref.storage_data.config_dict.get("base_dir")),
        "artifacts": ref.local_artifact_storage.storage_dir,
        "logs": ref.compute_logs_data.rehydrate()._base_dir,
        "coordinator": ref.run_coordinator_data.class_name,
        "launcher": ref.run_launcher_data.class_name,
    }))
"""
    proc = run([sys.executable, "-c", probe], clean_env(), timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    storage = REPO / "storage"
    assert got == {
        "storage": "CryptoRLSqliteStorage",
        "sqlite_base": str(storage),
        "artifacts": str(storage / "dagster"),
        "logs": str(storage / "logs"),
        "coordinator": "CryptoRLRunCoordinator",
        "launcher": "CryptoRLRunLauncher",
    }


def test_make_run_instance_without_dagster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``python -m cryptorl_dagster.cli run`` records into the repo's instance with nothing set
    (``local_instance``), from any working directory."""
    from cryptorl_dagster.instance import local_instance

    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("CRYPTORL_STORAGE", str(tmp_path / "storage"))
    monkeypatch.chdir(tmp_path)
    instance = local_instance()
    try:
        assert type(instance.run_launcher).__name__ == "CryptoRLRunLauncher"
        assert type(instance.run_coordinator).__name__ == "CryptoRLRunCoordinator"
        assert instance.storage_directory() == str(tmp_path / "storage" / "dagster")
    finally:
        instance.dispose()
    assert (tmp_path / "storage" / "history" / "runs.db").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["storage"]


def test_dagster_asset_materialize_with_dagster_home_repo(tmp_path: Path, latest_key: str):
    """``DAGSTER_HOME=$PWD dagster asset materialize -m cryptorl_dagster.definitions ...``"""
    storage = tmp_path / "storage"
    cmd = [str(BIN / "dagster"), "asset", "materialize", "-m", "cryptorl_dagster.definitions",
           "--select", "raw_market_data", "--partition", latest_key]
    proc = run(cmd, clean_env(DAGSTER_HOME=str(REPO), CRYPTORL_STORAGE=str(storage)))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (storage / "frames" / "raw_market_data" / f"{latest_key}.parquet").is_file()
    assert runs_in(storage) == [("__ASSET_JOB", "SUCCESS")]
    assert (storage / "logs").is_dir()  # compute logs under the storage root too


def test_dg_launch_without_dagster_home(tmp_path: Path, latest_key: str):
    """``dg launch --assets raw_market_data --partition <key>`` with no DAGSTER_HOME."""
    storage = tmp_path / "storage"
    before = set(REPO.glob(".tmp_dagster_home_*"))
    proc = run([str(BIN / "dg"), "launch", "--assets", "raw_market_data", "--partition", latest_key],
               clean_env(CRYPTORL_STORAGE=str(storage)))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "RUN_SUCCESS" in proc.stdout + proc.stderr
    assert (storage / "frames" / "raw_market_data" / f"{latest_key}.parquet").is_file()
    assert runs_in(storage) == [("__ASSET_JOB", "SUCCESS")]
    assert set(REPO.glob(".tmp_dagster_home_*")) <= before  # Dagster's temp home is gone


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["data"]


INSTANCE_QUERY = """{ instance { runLauncher { name } runQueuingSupported info
  runQueueConfig { maxConcurrentRuns } } }"""
LOCATIONS_QUERY = """{ workspaceOrError { ... on Workspace { locationEntries { name
  locationOrLoadError { __typename } } } } }"""


def _stop(proc: subprocess.Popen, log: Path) -> None:
    """Ctrl-C the dev process (it shuts its children down), then kill what is left."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=SHUTDOWN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # its own session: only what it started
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)
    # A killed `dagster dev` leaves its temporary home; remove the one it named.
    for name in re.findall(r"Using temporary directory (\S+) for storage", log.read_text()):
        if Path(name).parent == REPO and Path(name).name.startswith(".tmp_dagster_home_"):
            shutil.rmtree(name, ignore_errors=True)


def _restore_sigint() -> None:
    # A background job of a non-interactive shell ignores SIGINT, and so would the child.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("command", [["dagster", "dev"], ["dg", "dev"]], ids=["dagster-dev", "dg-dev"])
def test_dev_serves_the_repo_instance(tmp_path: Path, command: list[str]):
    """Plain ``dagster dev`` / ``dg dev`` in the repo root: the webserver answers, with the
    project's run queue and launcher, the `cryptorl` code location loaded, state in storage."""
    storage, port, log = tmp_path / "storage", _free_port(), tmp_path / "dev.log"
    cmd = [str(BIN / command[0]), *command[1:], "--host", "127.0.0.1", "--port", str(port)]
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=clean_env(CRYPTORL_STORAGE=str(storage)),
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=_restore_sigint)
    try:
        deadline, locations, instance = time.monotonic() + DEV_TIMEOUT_S, None, None
        while time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                entries = _graphql(port, LOCATIONS_QUERY)["workspaceOrError"]["locationEntries"]
                locations = {e["name"]: (e["locationOrLoadError"] or {}).get("__typename") for e in entries}
                if locations.get("cryptorl") in ("RepositoryLocation", "PythonError"):
                    instance = _graphql(port, INSTANCE_QUERY)["instance"]
                    break
            except (OSError, KeyError, TypeError, ValueError):
                pass
            time.sleep(2)
        assert instance is not None, f"no webserver after {DEV_TIMEOUT_S} s: {log.read_text()[-3000:]}"
        assert locations == {"cryptorl": "RepositoryLocation"}
        assert instance["runLauncher"]["name"] == "CryptoRLRunLauncher"
        assert instance["runQueuingSupported"] is True
        assert instance["runQueueConfig"]["maxConcurrentRuns"] == 3
        assert "class: CryptoRLRunCoordinator" in instance["info"]
        assert "class: SubdirArtifactStorage" in instance["info"]
        assert (storage / "history" / "runs.db").is_file()  # the instance's storage is ours
    finally:
        _stop(proc, log)


def test_cli_run_config_file_reaches_the_assets(tmp_path: Path, latest_key: str, monkeypatch: pytest.MonkeyPatch):
    """``cli run --config FILE`` hands the file's run config to the run (here the HMM's first
    restart seed), as ``dagster asset materialize --config`` would."""
    from cryptorl_dagster import cli
    from cryptorl_dagster.resources import ProfileResource

    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("CRYPTORL_STORAGE", str(tmp_path / "storage"))
    config = tmp_path / "seed7.yaml"
    config.write_text("ops:\n  hmm_model:\n    config:\n      seed: 7\n      n_restarts: 2\n")
    code = cli.main(["run", "--partition", latest_key, "--select", "raw_market_data,features,hmm_model",
                     "--config", str(config)])
    assert code == 0
    model = json.loads((tmp_path / "storage" / "artifacts" / "hmm_model" / latest_key / "model.json").read_text())
    profile_hmm = ProfileResource(name="quick").pipeline().hmm
    assert (model["config"]["seed"], model["config"]["n_restarts"]) == (7, 2) != (profile_hmm.seed, profile_hmm.n_restarts)


def test_cli_backfill_gives_each_segment_run_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``cli backfill --config FILE``: every segment's run gets the file's run config (with the
    quiet console logger); the cross-segment run, which trains nothing, gets the logger only."""
    from cryptorl_dagster import cli

    monkeypatch.setenv("CRYPTORL_STORAGE", str(tmp_path / "storage"))
    config = tmp_path / "seed2.yaml"
    config.write_text("ops: {tqc_policy: {config: {seed: 2}}}\n")
    seen: list[tuple[object, dict]] = []

    class Result:
        success = True

        def get_asset_materialization_events(self):
            return []

        def get_asset_check_evaluations(self):
            return []

    def fake_materialize(assets, partition_key=None, run_config=None, **_):
        seen.append((partition_key, run_config))
        return Result()

    monkeypatch.setattr(cli.dg, "materialize", fake_materialize)
    assert cli.main(["backfill", "--partitions", "2020-Q2,2020-Q3", "--config", str(config)]) == 0
    expected = {**cli.QUIET_LOGGERS, "ops": {"tqc_policy": {"config": {"seed": 2}}}}
    assert seen == [("2020-Q2", expected), ("2020-Q3", expected), (None, cli.QUIET_LOGGERS)]


@pytest.mark.parametrize("text", ["ops: [unclosed", "- just\n- a list\n"])
def test_cli_bad_run_config_file_is_named(tmp_path: Path, text: str, capsys: pytest.CaptureFixture):
    from cryptorl_dagster import cli

    config = tmp_path / "bad.yaml"
    config.write_text(text)
    assert cli.main(["backfill", "--config", str(config)]) == 2
    assert str(config) in capsys.readouterr().err
    assert cli.main(["run", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml" in capsys.readouterr().err


def test_cli_run_of_the_cross_segment_summary_alone_needs_no_partition(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch,
                                                                       capsys: pytest.CaptureFixture):
    """``cli run --select wfo_summary`` runs the unpartitioned summary (it used to pass the latest
    segment's key, which Dagster refuses for an unpartitioned selection); with no report yet
    the asset itself says so."""
    from cryptorl_dagster import cli

    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("CRYPTORL_STORAGE", str(tmp_path / "storage"))
    assert cli.main(["run", "--select", "wfo_summary"]) == 1
    out = capsys.readouterr().out
    assert "materializing the cross-segment assets" in out and "FAILED" in out
    assert "partition None" not in out and "(wfo_summary: the stitched out-of-sample curve)" in out
    assert [status for _, status in runs_in(tmp_path / "storage")] == ["FAILURE"]  # recorded, not raised
    # Read from the assets' partitions, in Dagster's selection syntax, not from a list of names.
    assert not cli.selects_partitioned(["hmm_wfo_metrics", "wfo_summary"])
    assert cli.selects_partitioned(["*wfo_summary"]) and cli.selects_partitioned(["raw_market_data"])
