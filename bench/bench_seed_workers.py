"""Best-of-N seeds: wall time of ``train_policy`` with the seeds in worker processes
(``seed_workers=N``) against one after another in this process (``seed_workers=1``), the
reference run, on the latest synthetic segment.

The quick profile's agent, shortened to ``--steps`` env transitions per seed (evaluations and
the final rollouts included, as in a backfill). Workers pay a process start and the imports;
the ratio approaches N as runs get longer and cores allow. The spawned processes' start-up is
reported alone too. Prints one ``name: value unit`` line per figure.

    python bench/bench_seed_workers.py [--seeds 2] [--steps 8000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
from bench_agent import segment_frame

from cryptorl_core.agent import AgentConfig, segment_market, train_policy
from cryptorl_core.agent.seed_workers import run_in_workers
from cryptorl_core.encoder import CryptoMAE, LoadedEncoder, MAEConfig
from cryptorl_core.regime import HMMConfig, fit_regime_model
from cryptorl_core.schema import feature_columns


def wall_seconds(frame, market, config: AgentConfig, out: Path) -> float:
    """Seconds of one ``train_policy`` call on the CPU."""
    t0 = time.perf_counter()
    train_policy(frame, market, config, out, device="cpu")
    return time.perf_counter() - t0


def wall_seconds_of_start(n: int) -> float:
    """Seconds to spawn ``n`` workers that import the agent package and return."""
    t0 = time.perf_counter()
    run_in_workers(_import_agent, [{} for _ in range(n)], n)
    return time.perf_counter() - t0


def _import_agent() -> None:
    import cryptorl_core.agent.train  # noqa: F401 - what a seed worker imports before training


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=2, help="seeds trained (and worker processes)")
    parser.add_argument("--steps", type=int, default=8_000, help="env transitions per seed")
    args = parser.parse_args()

    frame = segment_frame()
    context = fit_regime_model(frame, HMMConfig.quick()).context(frame)
    columns = feature_columns(frame)
    torch.manual_seed(0)
    encoder = LoadedEncoder.in_memory(CryptoMAE(len(columns), MAEConfig.quick()).eval(), columns)
    config = AgentConfig.quick().replace(total_timesteps=args.steps, n_seeds=args.seeds, fail_on_collapse=False,
                                         collapse_retries=0, patience=10**6)
    market = segment_market(frame, context, encoder, config, "cpu")

    with tempfile.TemporaryDirectory() as tmp:
        start_up = min(wall_seconds_of_start(args.seeds) for _ in range(2))
        sequential = wall_seconds(frame, market, config.replace(seed_workers=1), Path(tmp) / "sequential")
        workers = wall_seconds(frame, market, config.replace(seed_workers=args.seeds), Path(tmp) / "workers")

    print(f"cpu_count: {os.cpu_count()} cores")
    print(f"seeds: {args.seeds} seeds")
    print(f"steps_per_seed: {args.steps} steps")
    print(f"worker_start_up: {start_up:.1f} s")
    print(f"best_of_seeds_sequential: {sequential:.1f} s")
    print(f"best_of_seeds_in_workers: {workers:.1f} s")
    print(f"seed_workers_speedup: {sequential / workers:.2f} x")


if __name__ == "__main__":
    main()
