"""Agent training throughput: env transitions per second while learning (collection and
gradient steps together, no evaluation), on the latest synthetic segment.

1. The quick profile as configured (TQC, 16 envs, quick-size encoder cache).
2. The full profile's architecture (d_model 256, 64 tokens, features_dim 512, heads 512x512)
   with the embedding cache against the frozen encoder run in every forward pass (live),
   and their ratio. On CPU these use fewer envs and a smaller batch than the full profile
   (``--n-envs``, ``--batch-size``) so a run takes seconds, not hours.

Encoders are untrained (random weights): throughput does not depend on the weights.
Prints one ``name: value unit`` line per figure.

    python bench/bench_agent.py [--device cuda] [--steps 640]
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
import torch

from cryptorl_core.agent import AgentConfig, attach_market, build_model, make_envs, segment_market
from cryptorl_core.data.synthetic import generate_synthetic_market
from cryptorl_core.device import cpu_threads, resolve_device
from cryptorl_core.encoder import CryptoMAE, LoadedEncoder, MAEConfig
from cryptorl_core.features.config import FeatureConfig
from cryptorl_core.features.pipeline import build_segment_frame
from cryptorl_core.regime import HMMConfig, fit_regime_model
from cryptorl_core.schema import feature_columns
from cryptorl_core.segments import HOUR, WindowConfig, walk_forward_segments


def segment_frame() -> pd.DataFrame:
    market = generate_synthetic_market()
    seg = walk_forward_segments(market.start, market.end)[-1]
    f = market.frame
    start = seg.train_start - WindowConfig().warmup_hours * HOUR
    frame, _, _ = build_segment_frame(f.loc[(f.index >= start) & (f.index < seg.test_end)], seg, FeatureConfig())
    return frame


def steps_per_second(frame: pd.DataFrame, context: pd.DataFrame, encoder: LoadedEncoder, config: AgentConfig,
                     mode: str, device: torch.device, steps: int) -> float:
    """Env transitions per second of ``model.learn`` after a short warm-up (learning has started)."""
    market = segment_market(frame, context, encoder, config, device, mode)
    train_env, _, _ = make_envs(frame, config, device, seed=0)
    model = build_model(config, train_env, market, device, seed=0)
    attach_market(model, market)
    with cpu_threads(config.cpu_threads if device.type == "cpu" else None):
        model.learn(config.learning_starts + 2 * config.n_envs)  # fill past learning_starts, warm kernels
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        model.learn(steps, reset_num_timesteps=False)
        if device.type == "cuda":
            torch.cuda.synchronize()
    return steps / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--steps", type=int, default=640, help="env transitions timed per run")
    parser.add_argument("--n-envs", type=int, default=None, help="full-architecture envs (CPU 16, CUDA 1024)")
    parser.add_argument("--batch-size", type=int, default=None, help="full-architecture batch (CPU 64, CUDA 2048)")
    args = parser.parse_args()
    device = resolve_device(args.device)
    cuda = device.type == "cuda"

    frame = segment_frame()
    context = fit_regime_model(frame, HMMConfig.quick()).context(frame)
    columns = feature_columns(frame)
    torch.manual_seed(0)
    quick_encoder = LoadedEncoder.in_memory(CryptoMAE(len(columns), MAEConfig.quick()).eval(), columns)
    full_encoder = LoadedEncoder.in_memory(CryptoMAE(len(columns), MAEConfig.full()).eval(), columns)

    quick = AgentConfig.quick().replace(learning_starts=256, embedding=True)  # the encoder path
    sps_quick = steps_per_second(frame, context, quick_encoder, quick, "cache", device, args.steps)

    n_envs = args.n_envs or (1024 if cuda else 16)
    batch = args.batch_size or (2048 if cuda else 64)
    full = AgentConfig.full().replace(n_envs=n_envs, batch_size=batch, learning_starts=batch, gradient_steps=1, embedding=True,
                                      buffer_size=max(100_000, 4 * n_envs))
    steps = max(args.steps, 4 * n_envs)
    sps_cache = steps_per_second(frame, context, full_encoder, full, "cache", device, steps)
    sps_live = steps_per_second(frame, context, full_encoder, full, "live", device, steps)

    print(f"device: {device}")
    print(f"torch_threads: {torch.get_num_threads()} threads")
    print(f"quick_profile_train_env_steps_per_s: {sps_quick:.0f} steps/s")
    print(f"full_arch_n_envs: {n_envs} envs")
    print(f"full_arch_batch_size: {batch} transitions")
    print(f"full_arch_cache_train_env_steps_per_s: {sps_cache:.1f} steps/s")
    print(f"full_arch_live_encoder_train_env_steps_per_s: {sps_live:.1f} steps/s")
    print(f"full_arch_cache_vs_live_speedup: {sps_cache / sps_live:.1f} x")


if __name__ == "__main__":
    main()
