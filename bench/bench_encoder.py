"""Throughput of the MAE encoder: training windows/s (quick and full dimensions) and the
per-segment embedding cache (encode_all windows/s, batched vs one window at a time).

    python bench/bench_encoder.py                  # CPU
    python bench/bench_encoder.py --device cuda    # bf16 autocast + torch.compile as configured
    python bench/bench_encoder.py --segment quick  # also train one synthetic segment end to end

Prints ``name: value unit`` lines; ratios compare measurements taken in the same run.
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch

from cryptorl_core.device import resolve_device
from cryptorl_core.encoder import CryptoMAE, MAEConfig, cache_nbytes, encode_all, train_mae
from cryptorl_core.seeding import seed_everything

N_FEATURES = 57  # technical columns of the synthetic segment frame
SEGMENT_ROWS = 11_696  # rows of the last synthetic segment (train to test end)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_windows_per_s(config: MAEConfig, device: torch.device, steps: int, warmup: int) -> float:
    """Optimizer steps on random windows at the config's batch size (AMP/compile on CUDA only)."""
    model = CryptoMAE(N_FEATURES, config).to(device).train()
    use_amp = config.amp and device.type == "cuda"
    step_model = torch.compile(model) if config.compile and device.type == "cuda" else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
    x = torch.randn(config.batch_size, config.window, N_FEATURES, device=device)
    for i in range(warmup + steps):
        if i == warmup:
            _sync(device)
            start = time.perf_counter()
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_amp):
            loss, _, _ = step_model(x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    _sync(device)
    return steps * config.batch_size / (time.perf_counter() - start)


def encode_windows_per_s(model: CryptoMAE, rows: int, device: torch.device, batch_size: int,
                         dtype: torch.dtype) -> float:
    """``encode_all`` over ``rows`` rows (one window per row)."""
    data = torch.randn(rows, N_FEATURES)
    encode_all(model, data[: min(rows, 2 * batch_size)], batch_size, device, dtype)  # warm-up
    _sync(device)
    start = time.perf_counter()
    encode_all(model, data, batch_size, device, dtype)
    _sync(device)
    return rows / (time.perf_counter() - start)


def segment_seconds(profile: str, device: torch.device) -> tuple[float, int]:
    """Wall time of ``train_mae`` on the last synthetic segment with a profile."""
    from cryptorl_core.data.synthetic import generate_synthetic_market
    from cryptorl_core.features.config import FeatureConfig
    from cryptorl_core.features.pipeline import build_segment_frame
    from cryptorl_core.segments import walk_forward_segments

    market = generate_synthetic_market()
    segment = walk_forward_segments(market.start, market.end)[-1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame, _, _ = build_segment_frame(market.frame, segment, FeatureConfig())
    start = time.perf_counter()
    result = train_mae(frame, MAEConfig.profile(profile), None, device=device, progress=False)
    return time.perf_counter() - start, len(result.history)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--steps", type=int, default=0, help="timed training steps (0: 20 on CUDA, 5 on CPU)")
    parser.add_argument("--rows", type=int, default=0, help="encode_all rows (0: a full segment on CUDA, 2048 on CPU)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--segment", choices=("none", "quick", "full"), default="none",
                        help="also time train_mae on the last synthetic segment with this profile")
    args = parser.parse_args()

    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    seed_everything(0)
    cuda = device.type == "cuda"
    steps = args.steps or (20 if cuda else 5)
    rows = args.rows or (SEGMENT_ROWS if cuda else 2048)
    print(f"device: {device} ({torch.cuda.get_device_name(device) if cuda else f'{torch.get_num_threads()} threads'})")

    quick, full = MAEConfig.quick(), MAEConfig.full()
    rate_quick = train_windows_per_s(quick, device, steps, warmup=3)
    rate_full = train_windows_per_s(full, device, steps, warmup=3)
    print(f"train_quick: {rate_quick:.0f} windows/s (batch {quick.batch_size}, d_model {quick.d_model})")
    print(f"train_full: {rate_full:.0f} windows/s (batch {full.batch_size}, d_model {full.d_model}, "
          f"amp={full.amp and cuda}, compile={full.compile and cuda})")
    print(f"train_full_vs_quick: {rate_full / rate_quick:.3f} x")

    model = CryptoMAE(N_FEATURES, full).to(device)
    dtype = torch.bfloat16 if cuda else torch.float32
    batched = encode_windows_per_s(model, rows, device, batch_size=512, dtype=dtype)
    single = encode_windows_per_s(model, 64, device, batch_size=1, dtype=dtype)
    print(f"encode_all_full_batched: {batched:.0f} windows/s ({rows} rows, batch 512, {dtype})")
    print(f"encode_all_full_one_at_a_time: {single:.0f} windows/s (64 rows, batch 1)")
    print(f"encode_all_batched_vs_single: {batched / single:.1f} x")
    print(f"encode_all_full_segment_seconds: {SEGMENT_ROWS / batched:.2f} s (estimated, {SEGMENT_ROWS} rows)")
    mb = cache_nbytes(SEGMENT_ROWS, full.window, full.d_model, torch.bfloat16) / 1e6
    print(f"cache_full_segment_bf16: {mb:.0f} MB ({SEGMENT_ROWS} x {full.window} x {full.d_model} x 2 B)")

    if args.segment != "none":
        seconds, epochs = segment_seconds(args.segment, device)
        print(f"train_mae_segment_{args.segment}: {seconds:.1f} s ({epochs} epochs)")


if __name__ == "__main__":
    main()
