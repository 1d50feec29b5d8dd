"""Feature computation over the full synthetic history (all 5 series), against a plain
pandas rolling mean over the same raw columns, measured in the same process.

Prints one ``name: value unit`` line per figure.
"""

from __future__ import annotations

import numpy as np
from timing import best_time

from cryptorl_core.data.synthetic import generate_synthetic_market
from cryptorl_core.features.config import FeatureConfig
from cryptorl_core.features.pipeline import build_segment_frame
from cryptorl_core.features.technical import compute_technical
from cryptorl_core.segments import walk_forward_segments

REPEATS = 5
ROLLING_WINDOW = 24


def main() -> None:
    market = generate_synthetic_market()
    frame = market.frame.drop(columns=["true_regime"])
    cfg = FeatureConfig()
    d = {"BTC": 0.4, "ETH": 0.4}
    numeric = frame.select_dtypes(np.number)
    t_features = best_time(lambda: compute_technical(frame, d, cfg), REPEATS)
    t_rolling = best_time(lambda: numeric.rolling(ROLLING_WINDOW).mean(), REPEATS)
    n_cols = compute_technical(frame, d, cfg).shape[1]
    seg = walk_forward_segments(market.start, market.end)[-1]
    t_segment = best_time(lambda: build_segment_frame(frame, seg, cfg), repeats=2)
    print(f"features_rows: {len(frame)} rows")
    print(f"features_columns: {n_cols} columns")
    print(f"features_full_history_time: {t_features * 1e3:.1f} ms")
    print(f"pandas_rolling_mean_{numeric.shape[1]}cols_time: {t_rolling * 1e3:.1f} ms")
    print(f"features_vs_plain_rolling_ratio: {t_features / t_rolling:.1f} x")
    print(f"features_throughput: {len(frame) * n_cols / t_features / 1e6:.1f} Mcells/s")
    print(f"segment_frame_with_ffd_search_time: {t_segment * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
