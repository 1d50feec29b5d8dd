"""Throughput of BatchCryptoEnv against gym-anytrading's forex-v0 under SB3's DummyVecEnv.

A script, not a test. Prints ``name: value unit`` lines::

    .venv/bin/python bench/bench_env.py                          # CPU, n_envs 1, 64, 1024, 4096
    .venv/bin/python bench/bench_env.py --device cuda --n-envs 1024 4096 16384

Lines per ``n`` (default ``EnvConfig`` unless named):

- ``batch_env_n{n}_env_only``: ``env.step`` alone: random actions in (numpy, as SB3 gives
  them), observation dict, rewards, dones and infos out.
- ``batch_env_n{n}_env_step_info``: the same with ``EnvConfig(step_info=True)`` (a reward dict
  per env per step on the host).
- ``batch_env_n{n}_env_plus_gather``: ``env.step`` plus the agent's per-step observation cost:
  the env returns only row indices, so the agent's extractor gathers a per-row embedding cache
  ``(n_rows, 64 * 16)`` float32 at them on the env's device (4 KiB per env per step, memory-bound).

Each rate is the best of ``--repeats`` runs (the machine may be shared); ``_spread`` lines give
``(best - worst) / best`` of those runs. Speedups against gym-anytrading forex-v0 under
DummyVecEnv are printed for the env alone and for env + gather, at 1024 envs (or the largest n).

Torch threads (``--threads``, default 1): the env's ops on ~1000 floats are dispatch-bound, so
on a 2-core CPU 2 threads did not speed the env up (1.02e7 vs 1.04e7 env-steps/s at 1024
envs), while the 4 MiB embedding gather is bandwidth-bound and did gain (4.7e6 vs 3.3e6 for
env + gather). Set it for the whole training process, not per stage.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch

from cryptorl_core.env import BatchCryptoEnv, EnvConfig, gather_rows, resolve_device
from cryptorl_core.schema import HMM_COLUMNS, WINDOW


@dataclass
class BenchConfig:
    """Sizes of the benchmark.

    :param n_rows: rows of the synthetic random-walk segment.
    :param embed_dim: per-position width of the cached encoder embedding (cache row = ``WINDOW * embed_dim``).
    :param seconds: time budget of each measurement.
    :param warmup_steps: untimed steps before each measurement.
    :param forex_envs: envs of the gym-anytrading baseline under DummyVecEnv.
    :param n_action_sets: pre-drawn random action arrays cycled through (keeps RNG out of the timing).
    :param replay_transitions: transitions for the replay-buffer memory estimate.
    :param n_raw_features: technical + HMM columns of a raw-window observation (for comparison).
    """

    n_rows: int = 10_000
    embed_dim: int = 16
    seconds: float = 1.5
    warmup_steps: int = 5
    forex_envs: int = 16
    n_action_sets: int = 16
    replay_transitions: int = 2_500_000
    n_raw_features: int = 50 + len(HMM_COLUMNS)


def random_walk(n_rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic open/close prices: Gaussian log returns, small overnight gaps."""
    rng = np.random.default_rng(seed)
    gap, intrabar = rng.normal(0.0, 0.001, n_rows), rng.normal(0.0, 0.01, n_rows)
    log_close = np.log(30_000.0) + np.cumsum(gap + intrabar)
    return np.exp(log_close - intrabar), np.exp(log_close)


def time_loop(step: callable, seconds: float, warmup: int, sync: callable) -> tuple[int, float]:
    """Call ``step`` for about ``seconds`` after ``warmup`` calls; return (calls, elapsed)."""
    for _ in range(warmup):
        step()
    sync()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        calls += 1
    sync()
    return calls, time.perf_counter() - start


def bench_batch_env(
    n_envs: int, device: torch.device, cfg: BenchConfig, gather: bool, step_info: bool = False
) -> float:
    """Env-steps per second of BatchCryptoEnv.

    :param gather: also gather the embedding-cache rows of the observed indices (agent side).
    :param step_info: ``EnvConfig.step_info`` (per-step reward components in every info dict).
    """
    open_, close = random_walk(cfg.n_rows)
    env_cfg = EnvConfig(step_info=step_info)
    env = BatchCryptoEnv.from_arrays(
        open_, close, np.arange(cfg.n_rows), env_cfg, n_envs=n_envs, device=device, seed=0
    )
    cache = torch.randn(cfg.n_rows, WINDOW * cfg.embed_dim, device=device)
    rng = np.random.default_rng(0)
    actions = [
        rng.uniform(-1, 1, size=(n_envs, 1)).astype(np.float32) for _ in range(cfg.n_action_sets)
    ]
    env.reset()
    counter = [0]

    def step() -> None:
        obs, _, _, _ = env.step(actions[counter[0] % len(actions)])
        counter[0] += 1
        if gather:
            market = torch.as_tensor(obs["market"], device=device)
            gather_rows(cache, market)

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    calls, elapsed = time_loop(step, cfg.seconds, cfg.warmup_steps, sync)
    return calls * n_envs / elapsed


def bench_forex(cfg: BenchConfig) -> float:
    """Env-steps per second of gym-anytrading forex-v0 (window 64) under SB3 DummyVecEnv."""
    import gym_anytrading  # noqa: F401  (registers forex-v0)
    from gym_anytrading.datasets import FOREX_EURUSD_1H_ASK
    from stable_baselines3.common.vec_env import DummyVecEnv

    def make() -> gym.Env:
        return gym.make(
            "forex-v0", window_size=WINDOW, frame_bound=(WINDOW, len(FOREX_EURUSD_1H_ASK))
        )

    rng = np.random.default_rng(0)
    actions = [rng.integers(0, 2, size=cfg.forex_envs) for _ in range(cfg.n_action_sets)]
    counter = [0]

    def step() -> None:
        venv.step(actions[counter[0] % len(actions)])
        counter[0] += 1

    with warnings.catch_warnings():  # gymnasium's checker warns about forex-v0's reused obs
        warnings.simplefilter("ignore", UserWarning)
        venv = DummyVecEnv([make for _ in range(cfg.forex_envs)])
        venv.reset()
        calls, elapsed = time_loop(step, cfg.seconds, cfg.warmup_steps, lambda: None)
    return calls * cfg.forex_envs / elapsed


def replay_bytes_per_transition(env: BatchCryptoEnv) -> float:
    """Bytes one transition takes in an SB3 DictReplayBuffer for this env's spaces (measured)."""
    from stable_baselines3.common.buffers import DictReplayBuffer

    size = 1000
    buf = DictReplayBuffer(size, env.observation_space, env.action_space, device="cpu", n_envs=1)
    arrays = [
        *buf.observations.values(),
        *buf.next_observations.values(),
        buf.actions,
        buf.rewards,
        buf.dones,
    ]
    arrays.append(buf.timeouts)
    return sum(a.nbytes for a in arrays) / size


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--n-envs", type=int, nargs="+", default=[1, 64, 1024, 4096])
    parser.add_argument("--seconds", type=float, default=BenchConfig.seconds)
    parser.add_argument("--skip-forex", action="store_true")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (the env is dispatch-bound; see the module docstring)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs per rate; the best is printed")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = BenchConfig(seconds=args.seconds)
    device = resolve_device(args.device)

    print(f"device: {device} -")
    print(f"torch_threads: {torch.get_num_threads()} threads")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load_average_1min_before: {load:.2f} -")

    def best_of(measure: Callable[[], float], name: str) -> float:
        runs = [measure() for _ in range(args.repeats)]
        best = max(runs)
        print(f"{name}: {best:.4g} env-steps/s")
        print(f"{name}_spread: {100 * (best - min(runs)) / best:.0f} %")
        return best

    variants = {  # name: (gather, step_info)
        "_env_only": (False, False),
        "_env_step_info": (False, True),
        "_env_plus_gather": (True, False),
    }
    rates: dict[tuple[int, str], float] = {}
    for n in args.n_envs:
        for suffix, (gather, step_info) in variants.items():
            rates[n, suffix] = best_of(
                lambda: bench_batch_env(n, device, cfg, gather=gather, step_info=step_info),  # noqa: B023
                f"batch_env_n{n}{suffix}",
            )
    if not args.skip_forex:
        forex = best_of(lambda: bench_forex(cfg), f"forex_v0_dummyvecenv_n{cfg.forex_envs}")
        ref_n = 1024 if 1024 in args.n_envs else max(args.n_envs)
        for suffix in variants:
            print(f"speedup_n{ref_n}{suffix}_vs_forex: {rates[ref_n, suffix] / forex:.1f} x")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load_average_1min_after: {load:.2f} -")

    env = BatchCryptoEnv.from_arrays(*random_walk(200), np.arange(200), n_envs=1)
    per_transition = replay_bytes_per_transition(env)
    total = per_transition * cfg.replay_transitions
    # obs + next_obs float32 windows
    raw = 2 * WINDOW * cfg.n_raw_features * 4 * cfg.replay_transitions
    print(f"replay_bytes_per_transition: {per_transition:.0f} bytes")
    print(f"replay_memory_{cfg.replay_transitions}: {total / 2**30:.3f} GiB")
    print(f"replay_memory_raw_windows_{cfg.replay_transitions}: {raw / 2**30:.1f} GiB")


if __name__ == "__main__":
    main()
