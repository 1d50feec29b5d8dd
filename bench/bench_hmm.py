"""Time the regime HMM of one synthetic segment: fit (with restarts) and causal filtering.

References measured in the same run: one single-restart fit, and hmmlearn's own
(smoothed, forward-backward) ``predict_proba`` on the same rows. Prints ``name: value unit``.

Usage: ``python bench/bench_hmm.py [--profile quick|full] [--repeats N]``
"""

from __future__ import annotations

import argparse
import warnings
from dataclasses import replace

from timing import best_time

from cryptorl_core.data.synthetic import generate_synthetic_market
from cryptorl_core.features.config import FeatureConfig
from cryptorl_core.features.pipeline import build_segment_frame
from cryptorl_core.regime import HMMConfig, fit_regime_model
from cryptorl_core.regime.model import input_matrix
from cryptorl_core.segments import walk_forward_segments


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", choices=("quick", "full"), default="quick")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore", FutureWarning)

    market = generate_synthetic_market()
    segment = walk_forward_segments(market.start, market.end)[-1]
    frame, _, _ = build_segment_frame(market.frame, segment, FeatureConfig())
    cfg: HMMConfig = getattr(HMMConfig, args.profile)()
    single = replace(cfg, n_restarts=1)

    model = fit_regime_model(frame, cfg)
    hmm = model.to_hmmlearn()
    x = input_matrix(frame, model.columns)

    fit_s = best_time(lambda: fit_regime_model(frame, cfg), args.repeats)
    fit1_s = best_time(lambda: fit_regime_model(frame, single), args.repeats)
    filter_s = best_time(lambda: model.context(frame), args.repeats)
    smoothed_s = best_time(lambda: hmm.predict_proba(x), args.repeats)

    print(f"segment: {segment.key}")
    print(f"rows: {len(frame)} rows")
    print(f"fit_rows: {model.fit_window['n_fit_rows']} rows")
    print(f"restarts: {cfg.n_restarts} count")
    print(f"fit_with_restarts: {fit_s * 1e3:.1f} ms")
    print(f"fit_single_restart_reference: {fit1_s * 1e3:.1f} ms")
    print(f"fit_ratio_vs_single_restart: {fit_s / fit1_s:.2f} x")
    print(f"filter_context: {filter_s * 1e3:.1f} ms")
    print(f"filter_per_row: {filter_s / len(frame) * 1e6:.2f} us")
    print(f"hmmlearn_predict_proba_reference: {smoothed_s * 1e3:.1f} ms")
    print(f"filter_ratio_vs_hmmlearn_predict_proba: {filter_s / smoothed_s:.2f} x")


if __name__ == "__main__":
    main()
